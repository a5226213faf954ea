"""Decode one audio file into float32 mono samples, or raise AudioError with a reason code.

Reason codes (stored in the quarantine list): missing_file, not_a_file, empty_file,
not_audio, truncated, undecodable, empty_audio, non_finite, bad_sample_rate, too_long, read_error
(preprocess adds silent and too_short).

Bounds on what a file may decode to, so that a damaged or hostile header cannot make a small
file expand into gigabytes (an 844-byte WAV whose header says 1 Hz resamples to 25 MB at 16 kHz):
the source rate must lie in [MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ] and the audio must last at
most MAX_DURATION_S. Both are checked from the header, before the samples are read.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from albsent import storage
from albsent.errors import AudioError

MIN_SAMPLE_RATE_HZ = 1000
MAX_SAMPLE_RATE_HZ = 384000
MAX_DURATION_S = 3 * 3600.0  # longer than any utterance; a whole lecture or broadcast still fits
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".aifc", ".mp3", ".opus")


@dataclass
class Decoded:
    samples: np.ndarray  # (n,) float32 mono
    sample_rate_hz: int
    sha256: str  # of the file's bytes
    channels: int


def read_bytes(path: str) -> bytes:
    """The file's bytes: a local path, or a URI in an object store (retried on transient errors)."""
    if storage.is_uri(path):
        try:
            data = storage.read_bytes(path)
        except FileNotFoundError as exc:
            raise AudioError("missing_file", f"{path}: no such object") from exc
        except IsADirectoryError as exc:
            raise AudioError("not_a_file", f"{path}: expected an audio file, found a folder") from exc
        except OSError as exc:
            raise AudioError("read_error", f"{path}: cannot read ({str(exc).splitlines()[0]})") from exc
        if not data:
            raise AudioError("empty_file", f"{path}: file is empty (0 bytes)")
        return data
    if not os.path.exists(path):
        raise AudioError("missing_file", f"{path}: file does not exist")
    if not os.path.isfile(path):
        raise AudioError("not_a_file", f"{path}: expected an audio file, found a directory or special file")
    with open(path, "rb") as fh:
        data = fh.read()
    if not data:
        raise AudioError("empty_file", f"{path}: file is empty (0 bytes)")
    return data


def wav_data_shortfall(data: bytes) -> tuple[int, int] | None:
    """For a RIFF/WAVE file: (bytes the data chunk declares, bytes present) when fewer are
    present than declared, else None. libsndfile silently reads such files short."""
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if cid == b"data":
            present = len(data) - pos - 8
            streaming = size in (0, 0xFFFFFFFF)  # unknown length (pipes, RF64)
            return (size, present) if not streaming and present < size else None
        pos += 8 + size + (size & 1)
    return None


def check_bounds(frames: int, sample_rate_hz: int, path: str = "") -> None:
    """Raise AudioError (bad_sample_rate, too_long) for audio outside the bounds above."""
    if not MIN_SAMPLE_RATE_HZ <= sample_rate_hz <= MAX_SAMPLE_RATE_HZ:
        raise AudioError("bad_sample_rate", f"{path}: sample rate {sample_rate_hz} Hz, expected "
                                            f"{MIN_SAMPLE_RATE_HZ}-{MAX_SAMPLE_RATE_HZ} Hz (a damaged header?)")
    seconds = frames / sample_rate_hz
    if seconds > MAX_DURATION_S:
        raise AudioError("too_long", f"{path}: {seconds:.1f} s of audio, expected at most {MAX_DURATION_S:.0f} s "
                                     "per file (albsent.audio.io.MAX_DURATION_S); split the recording")


def decode(path: str) -> Decoded:
    """Read `path` (wav/flac/ogg/aiff, mp3 where libsndfile supports it) and downmix to mono."""
    data = read_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    try:
        with sf.SoundFile(io.BytesIO(data)) as fh:
            declared = fh.frames
            sr = fh.samplerate
            check_bounds(max(declared, 0), sr, path)
            audio = fh.read(dtype="float32", always_2d=True)  # (n, channels)
    except sf.LibsndfileError as exc:
        text = getattr(exc, "error_string", "") or str(exc)
        reason = "not_audio" if "unknown format" in text.lower() or "recognised" in text.lower() else "undecodable"
        raise AudioError(reason, f"{path}: cannot decode audio: {text}") from exc
    except (RuntimeError, ValueError, EOFError) as exc:
        raise AudioError("undecodable", f"{path}: cannot decode audio ({exc})") from exc
    short = wav_data_shortfall(data)
    if short:
        raise AudioError("truncated",
                         f"{path}: WAV data chunk declares {short[0]} bytes but only {short[1]} are present")
    if declared > 0 and audio.shape[0] < declared:
        raise AudioError(
            "truncated", f"{path}: header declares {declared} frames but only {audio.shape[0]} could be read"
        )
    check_bounds(audio.shape[0], sr, path)  # a header may not know the length (streamed files)
    if audio.shape[0] == 0:
        raise AudioError("empty_audio", f"{path}: contains no audio samples")
    if not np.isfinite(audio).all():
        bad = int((~np.isfinite(audio)).sum())
        raise AudioError("non_finite", f"{path}: {bad} samples are NaN or infinite")
    mono = audio.mean(axis=1, dtype=np.float64).astype(np.float32)
    return Decoded(mono, int(sr), digest, int(audio.shape[1]))
