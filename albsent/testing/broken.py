"""A corpus of broken inputs, one per failure kind, with the quarantine reason each must get."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def _tone(sr: int = 16000, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


def make_broken_files(folder: str | Path) -> dict[str, str]:
    """Write broken files into `folder`; return {file name: expected reason}."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    expected = {}

    (d / "empty.wav").write_bytes(b"")
    expected["empty.wav"] = "empty_file"

    (d / "text.wav").write_text("this is not audio at all, just text\n" * 20)
    expected["text.wav"] = "not_audio"

    (d / "garbage.flac").write_bytes(np.random.default_rng(0).bytes(4096))
    expected["garbage.flac"] = "not_audio"

    sf.write(d / "good_src.wav", _tone(), 16000, subtype="PCM_16")
    full = (d / "good_src.wav").read_bytes()
    (d / "good_src.wav").unlink()
    (d / "truncated.wav").write_bytes(full[: len(full) // 2])  # header promises twice the data
    expected["truncated.wav"] = "truncated"

    (d / "header_only.wav").write_bytes(full[:44])
    expected["header_only.wav"] = "truncated"

    sf.write(d / "zero_frames.wav", np.zeros(0, np.float32), 16000)
    expected["zero_frames.wav"] = "empty_audio"

    x = _tone()
    x[100:200] = np.nan
    sf.write(d / "nan.wav", x, 16000, subtype="FLOAT")
    expected["nan.wav"] = "non_finite"

    x = _tone()
    x[500] = np.inf
    sf.write(d / "inf.wav", x, 16000, subtype="FLOAT")
    expected["inf.wav"] = "non_finite"

    sf.write(d / "too_short.wav", _tone(seconds=0.03), 16000)
    expected["too_short.wav"] = "too_short"

    sf.write(d / "silence.wav", np.zeros(16000, np.float32), 16000)
    expected["silence.wav"] = "silent"

    (d / "folder.wav").mkdir(exist_ok=True)
    expected["folder.wav"] = "not_a_file"

    sf.write(d / "ogg_src.ogg", _tone(), 16000)
    ogg = (d / "ogg_src.ogg").read_bytes()
    (d / "ogg_src.ogg").unlink()
    (d / "corrupt.ogg").write_bytes(ogg[:200] + np.random.default_rng(1).bytes(len(ogg) - 200))
    expected["corrupt.ogg"] = "undecodable"

    expected["missing.wav"] = "missing_file"  # listed in the manifest, absent on disk
    return expected
