"""`albsent train --store STORE --features SPEC --model NAME --out RUN`."""

from __future__ import annotations

import argparse
import json

from albsent.cli import common_config_args

SPEC_HELP = """feature SPEC (what the model reads):
  mfcc | shortterm          pooled NAME_mean + NAME_std (mfcc.mean / mfcc.std: one of them)
  mfcc+shortterm            pooled parts concatenated
  mfcc:seq, mfcc+shortterm:seq
                            frame sequences (frames, dim), concatenated per frame (sequence models)
  ssl:ALIAS:9               layer 9 of the pooled SSL column ssl_ALIAS_mean (layers, hidden)
  ssl:ALIAS:6,9,12          several layers concatenated
  ssl:ALIAS:all             all layers, mixed by a learned softmax-weighted layer sum
  ssl:ALIAS:seq:9           frame sequence of layer 9 (column ssl_ALIAS_l9)
  mfcc+ssl:ALIAS:12         pooled parts may mix extractors

models: {models}

Outputs in RUN: metrics.json, predictions.csv, confusion_matrix.png, loss_curve.png, config.yaml,
model.safetensors + model.json (with --folds K: one model per RUN/fold-k/, metrics mean ± std).
Every split is audited for leakage (speaker/utterance groups and audio sha256); a leak is an error.
Example: albsent train --store st --features mfcc --model mlp --class-weighted --folds 5 --out runs/mfcc_mlp"""


class _ModelsEpilog(argparse.RawDescriptionHelpFormatter):
    """Fills {models} when help is printed: listing models imports torch (~1 s), which no other
    use of the parser (e.g. `albsent extract`) should pay."""

    def add_text(self, text):
        if text and "{models}" in text:
            from albsent.models import MODELS

            text = text.format(models=", ".join(f"{n} ({e.input_kind})" for n, e in sorted(MODELS.items())))
        super().add_text(text)


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train and evaluate a classifier on a feature store",
                       description="Train a classifier on a feature store with grouped (speaker-independent by "
                                   "default) stratified splits, early stopping and a leakage audit.",
                       epilog=SPEC_HELP, formatter_class=_ModelsEpilog)
    p.add_argument("--store", metavar="STORE", help="feature store (albsent extract --out)")
    p.add_argument("--features", metavar="SPEC", help="feature spec (default mfcc; see below)")
    p.add_argument("--model", metavar="NAME", help="a model listed below (default mlp)")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder to write")
    p.add_argument("--split", choices=["auto", "speaker", "utterance", "column"],
                   help="grouping: speaker-independent (auto when the store has speakers), by utterance, "
                        "or the store's split column (train/val/test)")
    p.add_argument("--folds", type=int, metavar="K", help="grouped stratified K-fold; reports mean ± std")
    p.add_argument("--class-weighted", action="store_true", default=None, help="class-weighted cross-entropy")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--json", action="store_true", help="print metrics.json instead of a summary")
    common_config_args(p)
    p.set_defaults(func=run)


def flags_to_config(args) -> dict:
    extra: dict = {}
    for key in ("store", "features", "model", "epochs", "seed"):
        if getattr(args, key) is not None:
            extra[key] = getattr(args, key)
    if args.class_weighted:
        extra["class_weighted"] = True
    split: dict = {}
    if args.split == "column":
        split["from_column"] = True
    elif args.split:
        split["group_by"] = args.split
    if args.folds is not None:
        split["folds"] = args.folds
    if split:
        extra["split"] = split
    return extra


def run(args) -> int:
    from albsent.config import load
    from albsent.train import TrainConfig, run_training
    from albsent.report.tables import format_metrics

    config = load(TrainConfig, args.config, args.sets, flags_to_config(args))
    metrics = run_training(config, args.out)
    if args.json:
        print(json.dumps({k: v for k, v in metrics.items() if k != "history"}, indent=1))
    else:
        print(format_metrics(metrics, f"{config.model} on {config.features} -> {args.out}"))
    return 0
