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
    return _wav_shortfall(lambda pos, n: data[pos : pos + n], len(data))


def _wav_shortfall(read_at, size: int) -> tuple[int, int] | None:
    """wav_data_shortfall over `read_at(pos, n) -> bytes` of a file of `size` bytes (only the
    chunk headers are read)."""
    head = read_at(0, 12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= size:
        chunk = read_at(pos, 8)
        cid, length = chunk[:4], int.from_bytes(chunk[4:8], "little")
        if cid == b"data":
            present = size - pos - 8
            streaming = length in (0, 0xFFFFFFFF)  # unknown length (pipes, RF64)
            return (length, present) if not streaming and present < length else None
        pos += 8 + length + (length & 1)
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


IN_MEMORY_BYTES = 64 * 2**20  # local files up to this size are read once into memory (hash and decode agree)
BLOCK_FRAMES = 2**20  # frames decoded at a time from a larger file


def decode(path: str) -> Decoded:
    """Read `path` (wav/flac/ogg/aiff, mp3 where libsndfile supports it) and downmix to mono.

    Memory stays near the size of the mono float32 result: a local file over IN_MEMORY_BYTES is
    hashed in chunks and decoded in blocks of BLOCK_FRAMES, each downmixed as it is read (a
    2-hour recording held its bytes, every channel as float32 and a float64 downmix at once
    before). Its size and mtime are checked before and after, so the hash describes the samples."""
    if not storage.is_uri(path):
        st = _stat(path)
        if st.st_size > IN_MEMORY_BYTES:
            return _decode_file(path, st)
    data = read_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    mono, sr, channels = _samples(io.BytesIO(data), path, lambda: wav_data_shortfall(data))
    return Decoded(mono, sr, digest, channels)


def _stat(path: str) -> os.stat_result:
    if not os.path.exists(path):
        raise AudioError("missing_file", f"{path}: file does not exist")
    if not os.path.isfile(path):
        raise AudioError("not_a_file", f"{path}: expected an audio file, found a directory or special file")
    return os.stat(path)


def _decode_file(path: str, st: os.stat_result) -> Decoded:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)

            def read_at(pos: int, n: int) -> bytes:
                fh.seek(pos)
                return fh.read(n)

            mono, sr, channels = _samples(path, path, lambda: _wav_shortfall(read_at, st.st_size))
    except OSError as exc:
        raise AudioError("read_error", f"{path}: cannot read ({exc})") from exc
    now = os.stat(path)
    if (now.st_size, now.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
        raise AudioError("read_error", f"{path}: the file changed while it was being read; extract it again")
    return Decoded(mono, sr, h.hexdigest(), channels)


def _samples(source, path: str, shortfall) -> tuple[np.ndarray, int, int]:
    """(mono float32 samples, sample rate, channels) of `source` (a path or a file object),
    decoded block by block; `shortfall()` is wav_data_shortfall for this file."""
    try:
        with sf.SoundFile(source) as fh:
            declared, sr, channels = fh.frames, fh.samplerate, fh.channels
            check_bounds(max(declared, 0), sr, path)
            out = np.empty(declared, dtype=np.float32) if declared > 0 else None  # filled block by block
            blocks, n, bad = [], 0, 0
            while True:
                block = fh.read(BLOCK_FRAMES, dtype="float32", always_2d=True)  # (frames, channels)
                k = block.shape[0]
                if not k:
                    break
                bad += int(k * block.shape[1] - np.isfinite(block).sum())
                mono = block.mean(axis=1, dtype=np.float64).astype(np.float32)
                del block
                if out is not None and n + k <= declared:
                    out[n : n + k] = mono
                else:  # more frames than the header said, or a length it did not know
                    if out is not None:
                        blocks, out = [out[:n]], None
                    blocks.append(mono)
                n += k
                check_bounds(n, sr, path)  # a header may not know the length (streamed files)
    except sf.LibsndfileError as exc:
        text = getattr(exc, "error_string", "") or str(exc)
        reason = "not_audio" if "unknown format" in text.lower() or "recognised" in text.lower() else "undecodable"
        raise AudioError(reason, f"{path}: cannot decode audio: {text}") from exc
    except (RuntimeError, ValueError, EOFError) as exc:
        raise AudioError("undecodable", f"{path}: cannot decode audio ({exc})") from exc
    _check_decoded(path, declared, n, bad, shortfall)
    mono = out[:n] if out is not None else blocks[0] if len(blocks) == 1 else _join(blocks, n)
    return mono, int(sr), int(channels)


def _check_decoded(path: str, declared: int, n: int, bad: int, shortfall) -> None:
    """The decoded file's faults, in the order a user should fix them: missing data, no samples, NaN/inf."""
    short = shortfall()
    if short:
        raise AudioError("truncated",
                         f"{path}: WAV data chunk declares {short[0]} bytes but only {short[1]} are present")
    if declared > 0 and n < declared:
        raise AudioError("truncated", f"{path}: header declares {declared} frames but only {n} could be read")
    if n == 0:
        raise AudioError("empty_audio", f"{path}: contains no audio samples")
    if bad:
        raise AudioError("non_finite", f"{path}: {bad} samples are NaN or infinite")


def _join(blocks: list[np.ndarray], n: int) -> np.ndarray:
    """Concatenate blocks into one array, freeing each as it is copied (peak: result + one block)."""
    out = np.empty(n, dtype=np.float32)
    pos = 0
    while blocks:
        b = blocks.pop(0)
        out[pos : pos + b.size] = b
        pos += b.size
    return out
