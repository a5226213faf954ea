"""F0 (pYIN): `albsent.features.pitch.pyin` against `librosa.pyin` on the same signals, one thread.

Both run on every `--every`-th EMO-DB clip (resampled to 16 kHz; `--emodb` folder, skipped when
absent) plus synthetic voices, with the short-term extractor's settings (65-500 Hz, 1024-sample
frames, 10 ms hop). Reports time per audio-second for each, the speedup, and whether the outputs
agree: identical F0 path and voicing flags, largest voicing-probability difference.

    .venv/bin/python bench/pitch.py [--every 5] [--synthetic 6] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core each, as in a Ray worker
    os.environ.setdefault(var, "1")

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from albsent.features.pitch import pyin  # noqa: E402
from albsent.testing.synth import voice  # noqa: E402

SR = 16000
KW = dict(fmin=65.0, fmax=500.0, sr=SR, frame_length=1024, hop_length=160, center=True)
EMODB = Path(__file__).resolve().parents[2] / "shared" / "data" / "emodb"


def signals(emodb: Path, every: int, synthetic: int) -> dict[str, np.ndarray]:
    out = {}
    for path in sorted(emodb.glob("wav/*.wav"))[::every] if every else []:
        y, sr = sf.read(path, dtype="float32")
        out[path.name] = librosa.resample(y, orig_sr=sr, target_sr=SR)
    rng = np.random.default_rng(0)
    for i in range(synthetic):
        out[f"voice{i}"] = voice(rng, 2.0, SR, 100 + 30 * i, 0.1, 0.02, 4.0).astype(np.float32)
    return out


def best_time(fn, y, repeats: int) -> tuple[float, tuple]:
    best, out = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(y, **KW)
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--emodb", type=Path, default=EMODB)
    ap.add_argument("--every", type=int, default=5, help="every n-th EMO-DB clip (0: none)")
    ap.add_argument("--synthetic", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3, help="timing: best of this many runs per signal")
    args = ap.parse_args()
    sigs = signals(args.emodb, args.every, args.synthetic)
    if not sigs:
        sys.exit("no signals: EMO-DB absent and --synthetic 0")
    y0 = next(iter(sigs.values()))
    pyin(y0, **KW), librosa.pyin(y0, **KW)  # compile / warm caches outside the timing
    t_albsent = t_librosa = audio_s = 0.0
    identical, prob_diff = 0, 0.0
    for y in sigs.values():
        ta, (f0a, va, pa) = best_time(pyin, y, args.repeats)
        tl, (f0l, vl, pl) = best_time(librosa.pyin, y, args.repeats)
        t_albsent, t_librosa, audio_s = t_albsent + ta, t_librosa + tl, audio_s + y.size / SR
        identical += bool(np.array_equal(f0a, f0l, equal_nan=True) and np.array_equal(va, vl))
        prob_diff = max(prob_diff, float(np.max(np.abs(pa - pl))))
    print(json.dumps({
        "signals": len(sigs), "audio_s": round(audio_s, 1),
        "albsent_ms_per_audio_s": round(1000 * t_albsent / audio_s, 2),
        "librosa_ms_per_audio_s": round(1000 * t_librosa / audio_s, 2),
        "speedup": round(t_librosa / t_albsent, 1),
        "identical_f0_and_voicing": f"{identical}/{len(sigs)}", "max_voicing_prob_diff": prob_diff,
    }, indent=2))


if __name__ == "__main__":
    main()
