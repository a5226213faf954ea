"""CPU cost of MFCC + short-term extraction, for the scale plan in cluster/README.md.

One process does ExtractBlock's per-clip work (decode, preprocess with trimming, the configured
extractors) over a manifest -- the plain loop of bench/extract_cpu.py -- and reports
audio-seconds per CPU-second (`time.process_time`, which other load on a shared machine
disturbs far less than wall time).

    OMP_NUM_THREADS=1 .venv/bin/python cluster/measure_cpu_cost.py [MANIFEST] [--config FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from extract_cpu import plain_loop  # noqa: E402

from albsent.config import load  # noqa: E402
from albsent.features.config import ExtractConfig  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("manifest", nargs="?", default="../shared/data/emodb/manifest_sentiment.csv")
ap.add_argument("--config", help="ExtractConfig YAML (default: ExtractConfig())")
args = ap.parse_args()
r = plain_loop(Path(args.manifest), load(ExtractConfig, args.config))
print(json.dumps({"clips": r["clips"], "raw_audio_s": round(r["raw_audio_s"], 1),
                  "trimmed_audio_s": round(r["audio_s"], 1),
                  "cpu_s": round(r["cpu_s"], 1), "wall_s": round(r["wall_s"], 1),
                  "raw_audio_s_per_cpu_s": round(r["raw_audio_s"] / r["cpu_s"], 1),
                  "loadavg": [round(x, 1) for x in os.getloadavg()]}))
