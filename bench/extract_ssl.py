"""SSL extraction speed: albsent's `ssl` extractor vs a naive loop, in the same run.

    .venv/bin/python bench/extract_ssl.py [--families hubert,wav2vec2,wavlm] [--clips 6] [--repeats 2]
        [--min-s 2 --max-s 4] [--segment-s 0] [--device auto] [--pipeline]

Per family, a base-size model (the released base architecture, 12 layers x 768, random
weights: speed does not depend on the weights) is saved with save_pretrained and loaded
through albsent's normal path. On the same seeded clips it times
  naive       one clip at a time through the HF model in float32 with output_hidden_states,
              mean over frames per layer (what a first script would do);
  albsent     SslExtractor.extract on all clips at once (zero-padded batches of --batch-seconds
              of audio on a GPU, equal-length batches on a CPU), with dtype float32 and bfloat16;
              `auto` names the one that the extractor's dtype "auto" picks on this device.
Model loading is excluded from every figure; runs are interleaved (naive, fp32, bf16, repeated
--repeats times, best taken) so load from other processes hits them alike. It also reports
how far albsent's pooled means are from the naive ones (float32: rounding; bf16: quantisation).
--pipeline also times `albsent extract` end to end (Ray actor pool, Parquet store) for the
first family, including Ray start-up and model loading.
Speed is audio seconds per second, of wall time and of this process's CPU time (user + sys):
on a shared machine the CPU-time figure is the stable one (run with --threads 1 so no CPU time
goes to threads spinning at barriers). CUDA is used when present (--device auto); then only
wall time is meaningful.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def make_clips(n: int, lo: float, hi: float, seed: int, segment_s: float) -> list[np.ndarray]:
    from albsent.testing.synth import voice

    rng = np.random.default_rng(seed)
    clips = [voice(rng, rng.uniform(lo, hi), 16000, rng.uniform(100, 250), 0.1, 0.02, 4.0) for _ in range(n)]
    if segment_s > 0:  # fixed windows, as `audio.segment_s` stores them
        w = int(segment_s * 16000)
        clips = [c[i : i + w] for c in clips for i in range(0, c.size - w + 1, w)]
    return clips


class Timer:
    """Wall and process CPU seconds of a block."""

    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c


def naive(model_dir: str, clips: list[np.ndarray], device: str, normalize: bool) -> tuple[Timer, list[np.ndarray]]:
    """One clip at a time, float32: returns (timer, per-clip (layers, hidden) means)."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_dir).to(device).eval()
    out = []
    with Timer() as t, torch.inference_mode():
        for c in clips:
            x = (c - c.mean()) / np.sqrt(c.var() + 1e-7) if normalize else c
            hs = model(torch.from_numpy(x.astype(np.float32))[None].to(device), output_hidden_states=True).hidden_states
            out.append(torch.stack(hs)[:, 0].mean(1).float().cpu().numpy())
        if device == "cuda":
            torch.cuda.synchronize()
    return t, out


def albsent_run(model_dir: str, clips: list[np.ndarray], dtype: str, device: str,
                batch_s: float) -> tuple[Timer, list[np.ndarray], str]:
    import torch

    from albsent.features.ssl import SslConfig, SslExtractor

    ext = SslExtractor(SslConfig(models=[f"m={model_dir}"], dtype=dtype, device=device, batch_seconds=batch_s), 16000)
    ext.load()
    with Timer() as t:
        rows = ext.extract(clips)
        if device == "cuda":
            torch.cuda.synchronize()
    return t, [r["ssl_m_mean"] for r in rows], ext._models[0].dtype


def pipeline(model_dir: str, clips: list[np.ndarray], root: Path, device: str) -> float:
    import pandas as pd
    import soundfile as sf

    from albsent.features.ssl import SslConfig
    from albsent.pipeline.config import AudioConfig, ExtractConfig
    from albsent.pipeline.extract import extract

    (root / "wav").mkdir(parents=True, exist_ok=True)
    for i, c in enumerate(clips):
        sf.write(root / "wav" / f"{i}.wav", c, 16000, subtype="FLOAT")
    pd.DataFrame({"path": [f"wav/{i}.wav" for i in range(len(clips))]}).to_csv(root / "m.csv", index=False)
    cpus = os.cpu_count() or 1
    config = ExtractConfig(
        features=["ssl"], ssl=SslConfig(models=[model_dir], device=device), unlabeled=True,
        num_actors=1 if device == "cuda" else cpus, num_cpus_per_task=1.0,  # CPU: one single-threaded actor per core
        audio=AudioConfig(trim_silence=False, normalize="none"), batch_size=max(1, len(clips) // cpus),
    )
    t = time.perf_counter()
    s = extract(str(root / "m.csv"), str(root / "store"), config, progress=False)
    assert s.stored == len(clips), s
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", default="hubert,wav2vec2,wavlm")
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--min-s", type=float, default=2.0)
    ap.add_argument("--max-s", type=float, default=4.0)
    ap.add_argument("--segment-s", type=float, default=0.0, help="cut clips into equal windows (bucketed batches)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--batch-seconds", type=float, default=60.0,
                    help="ssl.batch_seconds: padded audio per forward pass")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--pipeline", action="store_true", help="also time `albsent extract` end to end (Ray)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    from albsent.features.ssl_model import load_spec
    from albsent.testing.tiny_ssl import save_model

    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    clips = make_clips(args.clips, args.min_s, args.max_s, args.seed, args.segment_s)
    audio_s = sum(c.size for c in clips) / 16000
    print(f"device {device} ({torch.get_num_threads()} threads"
          f"{', ' + torch.cuda.get_device_name() if device == 'cuda' else ''}); "
          f"{len(clips)} clips, {audio_s:.1f} s of audio; figures in audio s per s, best of {args.repeats}")
    print("rates: audio s per wall s (= x real time) / per CPU s; speedup = albsent auto vs naive (wall / CPU)")
    print(f"{'family':<9} {'naive fp32':>15} {'albsent fp32':>15} {'albsent bf16':>15} {'auto':>9} {'speedup':>13} "
          f"{'|fp32-naive|':>12} {'bf16-naive rel':>14}")
    from albsent.features.ssl import SslConfig, SslExtractor

    with tempfile.TemporaryDirectory() as tmp:
        for fam in args.families.split(","):
            model_dir = str(save_model(Path(tmp) / fam, fam, "group", size="base", do_normalize=fam == "wav2vec2"))
            normalize = load_spec(model_dir).normalize
            auto = SslExtractor(SslConfig(models=[model_dir], device=device), 16000).resolved_dtype(fam, device)
            auto = {"float32": "fp32", "bfloat16": "bf16"}[auto]
            wall = {"naive": np.inf, "fp32": np.inf, "bf16": np.inf}
            cpu, res = dict(wall), {}
            runs = {
                "naive": lambda: (*naive(model_dir, clips, device, normalize), "float32"),
                "fp32": lambda: albsent_run(model_dir, clips, "float32", device, args.batch_seconds),
                "bf16": lambda: albsent_run(model_dir, clips, "bfloat16", device, args.batch_seconds),
            }
            for _ in range(args.repeats):  # interleaved: naive, fp32, bf16, naive, ...
                for key, run in runs.items():
                    t, out, dt = run()
                    wall[key], cpu[key], res[key] = min(wall[key], t.wall), min(cpu[key], t.cpu), (out, dt)
            (ref, _), (f32, _), (b16, _) = res["naive"], res["fp32"], res["bf16"]
            d32 = max(float(np.abs(a - b).max()) for a, b in zip(f32, ref))
            rel = max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(b16, ref))
            rw = {k: audio_s / v for k, v in wall.items()}
            rc = {k: audio_s / v for k, v in cpu.items()}
            print(f"{fam:<9} {rw['naive']:>7.1f} / {rc['naive']:<6.1f} {rw['fp32']:>7.1f} / {rc['fp32']:<6.1f} "
                  f"{rw['bf16']:>7.1f} / {rc['bf16']:<6.1f} {auto:>9} "
                  f"{rw[auto] / rw['naive']:>5.2f}x / {rc[auto] / rc['naive']:.2f}x "
                  f"{d32:>12.1e} {rel:>14.1e}", flush=True)
            if args.pipeline and fam == args.families.split(",")[0]:
                t = pipeline(model_dir, clips, Path(tmp) / "pipe", device)
                print(f"  albsent extract end to end ({fam}, Ray start + model load + Parquet): "
                      f"{t:.1f} s = {audio_s / t:.2f} audio s/s", flush=True)


if __name__ == "__main__":
    main()
