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
--pipeline measures instead the pipeline efficiency of `albsent extract` for the first family:
its steady-state rate end to end (decode tasks -> model actor -> write tasks, FLAC at 44.1 kHz
so decoding is a real share) over the model stage alone on pre-decoded audio with the same
threads, fixed costs (cluster start, actor start and model load) reported apart; both
model_pipeline modes (staged, single) in the same run.
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


def pipeline(model_dir: str, root: Path, n: int, seconds: float, sr_in: int, device: str, threads: int,
             batch_size: int, modes: list[str]) -> None:
    """Pipeline efficiency: `albsent extract` (the model on one actor of `threads` CPUs, or a GPU)
    vs the model stage alone in this process on pre-decoded audio with the same threads.

    The corpus is `n` clips at `sr_in` Hz as FLAC, so decoding and resampling to 16 kHz are a
    real share of the work. End to end is run on n/2 and on n clips on one running cluster: the
    marginal rate (audio of the second half / extra time) is the steady state, and the rest of
    the n/2 run is the fixed cost (actor start, model load, first blocks), reported apart, as is
    the cluster's start."""
    import pandas as pd
    import ray
    import soundfile as sf
    import torch

    from albsent.audio.io import decode
    from albsent.audio.preprocess import AudioConfig, preprocess
    from albsent.config import build
    from albsent.features.config import ExtractConfig
    from albsent.features.ssl import SslConfig, SslExtractor
    from albsent.pipeline.extract import extract
    from albsent.runner.session import ray_session
    from albsent.testing.synth import voice

    rng = np.random.default_rng(0)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        clip = voice(rng, seconds, sr_in, rng.uniform(100, 250), 0.1, 0.02, 4.0)
        sf.write(root / "wav" / f"{i:05d}.flac", clip, sr_in)
    paths = [str(root / "wav" / f"{i:05d}.flac") for i in range(n)]
    for k in (n // 2, n):
        pd.DataFrame({"path": paths[:k]}).to_csv(root / f"m{k}.csv", index=False)

    audio = AudioConfig()
    t = time.perf_counter()
    clips = [preprocess(decode(p).samples, sr_in, audio, p)[1][0].samples for p in paths]
    decode_s = time.perf_counter() - t
    audio_s = sum(c.size for c in clips) / 16000
    half_s = sum(c.size for c in clips[: n // 2]) / 16000
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    ext = SslExtractor(SslConfig(models=[model_dir], device=device), 16000)
    ext.load()
    ext.extract(clips[:2])  # warm-up
    best = np.inf
    for _ in range(2):
        t = time.perf_counter()
        for i in range(0, n, batch_size):
            ext.extract(clips[i : i + batch_size])
        best = min(best, time.perf_counter() - t)
    torch.set_num_threads(old)
    model_rate = audio_s / best
    print(f"pipeline: {n} FLAC clips of {seconds:.1f} s at {sr_in} Hz ({audio_s:.0f} s of audio); decode + "
          f"preprocess in this process: {audio_s / decode_s:.0f} audio s/s per core "
          f"({decode_s / (decode_s + best):.0%} of decode + model work); model stage alone ({threads} thread(s), "
          f"batches of {batch_size} clips): {model_rate:.1f} audio s/s", flush=True)

    t = time.perf_counter()
    with ray_session(num_cpus=os.cpu_count()):
        start_s = time.perf_counter() - t
        for mode in modes:
            config = build(ExtractConfig, {
                "features": ["ssl"], "ssl": {"models": [model_dir], "device": device}, "unlabeled": True,
                "num_actors": 1, "num_cpus_per_task": threads, "batch_size": batch_size, "model_pipeline": mode})
            wall, busy = {}, {}
            for k in (n // 2, n):
                t = time.perf_counter()
                s = extract(str(root / f"m{k}.csv"), str(root / f"store-{mode}-{k}"), config, progress=False)
                wall[k], busy[k] = time.perf_counter() - t, s.extract_s
                assert s.stored == k, s
            marginal = (audio_s - half_s) / (wall[n] - wall[n // 2])
            fixed = wall[n // 2] - half_s / marginal
            # the model actor's busy share of the second half's wall time: 1.0 = never waits
            busy_share = (busy[n] - busy[n // 2]) / (wall[n] - wall[n // 2])
            print(f"  {mode:<7} end to end {wall[n]:.1f} s for {n} clips ({audio_s / wall[n]:.1f} audio s/s with "
                  f"fixed costs); steady state {marginal:.1f} audio s/s = {marginal / model_rate:.2f} of the model "
                  f"stage alone in this process; model busy {busy_share:.2f} of the steady-state wall time "
                  f"(model {audio_s / busy[n]:.1f} audio s/s in its actor); fixed costs {fixed:.1f} s per run "
                  f"(actor start, model load), cluster start {start_s:.1f} s", flush=True)
    del ray


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
    ap.add_argument("--pipeline", action="store_true",
                    help="only the pipeline efficiency of `albsent extract` (see pipeline())")
    ap.add_argument("--size", default="base", choices=["tiny", "small", "base"], help="model size for --pipeline")
    ap.add_argument("--pipeline-clips", type=int, default=160)
    ap.add_argument("--pipeline-modes", default="staged,single")
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
    if args.pipeline:
        with tempfile.TemporaryDirectory() as tmp:
            fam = args.families.split(",")[0]
            model_dir = str(save_model(Path(tmp) / fam, fam, "group", size=args.size, do_normalize=False))
            pipeline(model_dir, Path(tmp) / "pipe", args.pipeline_clips, args.max_s, 44100, device,
                     args.threads or 1, 16, args.pipeline_modes.split(","))
        return
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


if __name__ == "__main__":
    main()
