"""`albsent extract --dry-run`: the planned work before anything runs.

Clips and hours of audio (soundfile headers; a seeded sample of them when there are many),
the estimated store size per column (pooled values vs frame sequences, and what every layer's
frames would cost for SSL models), and the estimated time from extracting a short sample in
this process without Ray, with the thread count one Ray worker gets (num_cpus_per_task).
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import soundfile as sf

from albsent.audio.io import decode
from albsent.audio.manifest import plan_inputs
from albsent.audio.preprocess import preprocess, segment_bounds
from albsent.features.config import ExtractConfig, build_extractors
from albsent.runtime import torch_threads

log = logging.getLogger(__name__)
BASE_ROW_BYTES = 300  # ids, key, path, label, sha256, durations: typical uncompressed size


def _row_samples(duration_s: float, config: ExtractConfig) -> list[int]:
    """Samples of each stored row of a clip (segments when audio.segment_s > 0)."""
    a, sr = config.audio, config.audio.sample_rate_hz
    n = int(round(duration_s * sr))
    if a.segment_s <= 0:
        return [n]
    return [b - s for s, b in segment_bounds(n, sr, a.segment_s, a.segment_hop_s)]


def _frames_fn(ext):
    """Frame count of a row of n samples for a sequence column of `ext`."""
    if hasattr(ext, "num_frames"):
        return ext.num_frames
    return lambda n: 1 + n // ext.hop_length  # FrameExtractor: 1 + samples // hop


def estimate_bytes(durations_s: list[float], config: ExtractConfig, extractors: list) -> tuple[dict, dict, int]:
    """Uncompressed bytes per column over clips of the given durations, the bytes of every
    layer's frame sequences per SSL model (float16) for comparison, and the row count."""
    rows = [n for d in durations_s for n in _row_samples(d, config)]
    cols: dict[str, int] = {}
    all_frames: dict[str, int] = {}
    for ext in extractors:
        frames = _frames_fn(ext)
        total_frames = sum(frames(n) for n in rows)
        for c in ext.columns():
            item = np.dtype(c.dtype).itemsize * int(np.prod([d for d in c.shape if d is not None]))
            cols[c.name] = item * (total_frames if c.shape[0] is None else len(rows))
        for s in getattr(ext, "specs", []):
            all_frames[s.alias] = sum(s.num_frames(n) for n in rows) * s.num_layers * s.hidden_size * 2
    return cols, all_frames, len(rows)


def probe_durations(paths: list[str], limit: int, seed: int = 0) -> tuple[list[float], list[int], int]:
    """Header durations and file sizes of up to `limit` paths (a seeded sample), and the count
    of unreadable ones (they would be quarantined)."""
    idx = (np.arange(len(paths)) if len(paths) <= limit
           else np.random.default_rng(seed).choice(len(paths), limit, replace=False))
    durs, sizes, bad = [], [], 0
    for i in idx:
        try:
            durs.append(float(sf.info(paths[i]).duration))
            sizes.append(os.path.getsize(paths[i]))
        except Exception:
            bad += 1
    return durs, sizes, bad


def measure(paths: list[str], config: ExtractConfig, extractors: list, sample_s: float) -> dict:
    """Extract clips (in the given order) until `sample_s` seconds of audio are done, timing
    model loading and each extractor separately. Threads = num_cpus_per_task, like one worker."""
    with torch_threads(max(1, int(config.num_cpus_per_task))):
        load_s = {}
        for ext in extractors:
            if hasattr(ext, "load"):
                t = time.perf_counter()
                ext.load()
                ext.extract([np.zeros(config.audio.sample_rate_hz, np.float32) + 1e-3])  # warm-up, not timed
                load_s[ext.name] = time.perf_counter() - t
        spent = {e.name: 0.0 for e in extractors}
        audio_s, clips = 0.0, 0
        for path in paths:
            if audio_s >= sample_s:
                break
            try:
                dec = decode(path)
                utt, segs = preprocess(dec.samples, dec.sample_rate_hz, config.audio, path)
            except Exception as exc:
                log.info("dry-run sample: skipping %s (%s)", path, exc)
                continue
            for ext in extractors:
                t = time.perf_counter()
                ext.extract([s.samples for s in segs])
                spent[ext.name] += time.perf_counter() - t
            audio_s += utt.size / config.audio.sample_rate_hz
            clips += 1
    return {"clips": clips, "audio_s": audio_s, "load_s": load_s, "extract_s": spent}


def plan(input_path: str, config: ExtractConfig, sample_s: float = 10.0, probe_limit: int = 2000,
         seed: int = 0) -> dict:
    items = plan_inputs(input_path, config.labels_from, config.label_map, config.allowed_roots, config.unlabeled)
    extractors = build_extractors(config)
    paths = items["path"].tolist()
    durs, sizes, bad = probe_durations(paths, probe_limit, seed)
    copies = 1 + config.augment.copies  # each augmented copy is about another clip of the same length
    scale = copies * len(paths) / max(len(durs), 1)
    cols, all_frames, rows = estimate_bytes(durs, config, extractors)
    order = list(np.random.default_rng(seed).permutation(len(paths)))
    sample = measure([paths[i] for i in order], config, extractors, sample_s)
    audio_s = sum(durs) * scale / copies  # the corpus' audio; the featurised audio is `copies` times that
    per_audio_s = sum(sample["extract_s"].values()) / sample["audio_s"] if sample["audio_s"] else float("nan")
    actor = any(e.needs_actor for e in extractors)
    slots = max(1, int((config.ray.num_cpus or os.cpu_count() or 1) // config.num_cpus_per_task))
    workers = (config.num_actors or 1) if actor else min(config.num_actors or slots, slots)
    store_bytes = int(sum(cols.values()) * scale + BASE_ROW_BYTES * rows * scale)
    wav_bytes = int(sum(sizes) * scale / copies)
    return {
        "inputs": len(paths), "probed": len(durs), "unreadable_probed": bad, "audio_h": audio_s / 3600,
        "mean_clip_s": float(np.mean(durs)) if durs else 0.0, "rows": int(rows * scale), "wav_bytes": wav_bytes,
        "columns": {k: int(v * scale) for k, v in cols.items()}, "store_bytes": store_bytes,
        "ssl_all_layer_frames_bytes": {k: int(v * scale) for k, v in all_frames.items()},
        "sample": sample, "seconds_per_audio_second": per_audio_s, "workers": workers,
        "estimate_one_worker_s": per_audio_s * audio_s * copies,
        "estimate_s": per_audio_s * audio_s * copies / workers,
        "features": list(config.features), "augmented_copies_per_clip": copies - 1,
    }


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return str(n)


def _dur(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def format_plan(p: dict) -> str:
    wav = max(p["wav_bytes"], 1)
    probed = "" if p["probed"] == p["inputs"] else f" (durations from a sample of {p['probed']} headers)"
    lines = [
        f"plan     {p['inputs']} clips, {p['audio_h']:.3f} h of audio (mean {p['mean_clip_s']:.2f} s){probed}, "
        f"{p['rows']} rows",
        f"         features {', '.join(p['features'])}; wav files {_size(p['wav_bytes'])}"
        + (f"; {p['augmented_copies_per_clip']} augmented copies per clip (in the rows, size and time)"
           if p.get("augmented_copies_per_clip") else ""),
        f"store    ~{_size(p['store_bytes'])} uncompressed ({p['store_bytes'] / wav:.1f}x the wav size)",
    ]
    for name, b in p["columns"].items():
        lines.append(f"  {name:<28} {_size(b):>10}  ({b / wav:.2f}x wav)")
    for alias, b in p["ssl_all_layer_frames_bytes"].items():
        lines.append(f"  (ssl {alias}: frame sequences of all layers would be {_size(b)} in float16, "
                     f"{b / wav:.1f}x wav; 2x that in float32)")
    s = p["sample"]
    if s["audio_s"]:
        parts = ", ".join(f"{k} {v / s['audio_s']:.3f} s/s" for k, v in s["extract_s"].items())
        loads = ", ".join(f"{k} {v:.1f} s" for k, v in s["load_s"].items())
        lines += [
            f"sample   {s['clips']} clips, {s['audio_s']:.1f} s of audio measured here: {parts} (compute s per audio s)"
            + (f"; model load + warm-up {loads} per worker" if loads else ""),
            f"time     ~{_dur(p['estimate_one_worker_s'])} on one worker, "
            f"~{_dur(p['estimate_s'])} on {p['workers']} workers (excluding start-up)",
        ]
    else:
        lines.append("time     no clip of the sample could be read; no estimate")
    return "\n".join(lines)
