"""CPU cost of MFCC + short-term extraction, for the scale plan in cluster/README.md.

One process does ExtractBlock's per-clip work (decode, preprocess with trimming, the configured
extractors) over a manifest and reports audio-seconds per CPU-second (`time.process_time`,
which other load on a shared machine disturbs far less than wall time).

    OMP_NUM_THREADS=1 .venv/bin/python cluster/measure_cpu_cost.py [MANIFEST] [--config FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from albsent.audio.io import decode
from albsent.audio.manifest import plan_inputs
from albsent.audio.preprocess import preprocess
from albsent.config import load
from albsent.pipeline.config import ExtractConfig, build_extractors

ap = argparse.ArgumentParser()
ap.add_argument("manifest", nargs="?", default="../shared/data/emodb/manifest_sentiment.csv")
ap.add_argument("--config", help="ExtractConfig YAML (default: ExtractConfig())")
args = ap.parse_args()
cfg = load(ExtractConfig, args.config)
extractors = build_extractors(cfg)
items = plan_inputs(args.manifest)
d = decode(items["path"][0])
for e in extractors:  # warm-up outside the timing (numba compiles once per process, as in Ray workers)
    e.extract([preprocess(d.samples, d.sample_rate_hz, cfg.audio)[0]])
raw_s = audio_s = 0.0
c0, w0 = time.process_time(), time.perf_counter()
for path in items["path"]:
    d = decode(path)
    raw_s += d.samples.size / d.sample_rate_hz
    utt, segs = preprocess(d.samples, d.sample_rate_hz, cfg.audio, path)
    audio_s += utt.size / cfg.audio.sample_rate_hz
    for e in extractors:
        e.extract([s.samples for s in segs])
cpu, wall = time.process_time() - c0, time.perf_counter() - w0
print(json.dumps({"clips": len(items), "raw_audio_s": round(raw_s, 1), "trimmed_audio_s": round(audio_s, 1),
                  "cpu_s": round(cpu, 1), "wall_s": round(wall, 1), "raw_audio_s_per_cpu_s": round(raw_s / cpu, 1),
                  "loadavg": [round(x, 1) for x in os.getloadavg()]}))
