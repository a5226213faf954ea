"""`albsent predict RUN AUDIO_OR_DIR... [--json] [--segments [SECONDS]]`."""

from __future__ import annotations

import json
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="label new audio with a trained run",
                       description="Decode, preprocess and extract features exactly as the run's store did (its "
                                   "recorded extract config), then print each file's label and class probabilities. "
                                   "A --folds run averages its fold models. A file that cannot be used gets an error "
                                   "line and the rest continue; the exit status is 1 if any file failed.")
    p.add_argument("run", metavar="RUN", help="folder written by `albsent train --out`")
    p.add_argument("inputs", nargs="+", metavar="AUDIO_OR_DIR",
                   help="audio files, folders (searched recursively), or a manifest CSV (path[,speaker])")
    p.add_argument("--speaker", metavar="NAME",
                   help="all inputs are one speaker: a model trained with per-speaker normalisation z-scores "
                        "them with their own statistics (a manifest's speaker column does this per speaker). "
                        "Without a speaker, such a model uses the training corpus' statistics (less accurate)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--segments", nargs="?", const=2.0, type=float, metavar="SECONDS",
                   help="also print a per-window timeline (windows of the store's segment length, or SECONDS "
                        "(default 2.0) for a store of whole utterances)")
    p.set_defaults(func=run)


def run(args) -> int:
    from dataclasses import asdict

    from albsent.train.predict import Predictor

    predictor = Predictor(args.run)
    failed = 0
    for pred in predictor.predict(args.inputs, args.segments, args.speaker):
        if pred.error:
            failed += 1
            print(f"albsent predict: error: {pred.error}", file=sys.stderr)
            if args.json:
                print(json.dumps({"path": pred.path, "error": pred.error}), flush=True)
            continue
        if not args.segments:
            pred.segments = []
        if args.json:
            print(json.dumps(asdict(pred)), flush=True)
            continue
        probs = "  ".join(f"{k}={v:.3f}" for k, v in pred.probs.items())
        print(f"{pred.path}\t{pred.label}\t{probs}", flush=True)
        for s in pred.segments:
            sp = "  ".join(f"{k}={v:.3f}" for k, v in s["probs"].items())
            print(f"  {s['start_s']:7.2f}-{s['end_s']:7.2f} s\t{s['label']}\t{sp}")
    return 1 if failed else 0
