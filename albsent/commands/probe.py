"""`albsent probe --pretrained AE_RUN --store LABELED_STORE --attach POINT --out RUN`."""

from __future__ import annotations

import argparse
import json

from albsent.app.args import common_config_args, tracking_args, tracking_of

EPILOG = """The pretrained autoencoder is frozen; a linear classifier reads the attachment point POINT
(averaged over each utterance's windows), trained on a stratified labeled subset of the training
speakers (--train-fraction of all rows, default 0.1) in each of K speaker-independent folds. The
same subset trains a baseline linear classifier on the raw features (per-utterance mean + std).
Outputs in RUN: metrics.json (probe at the top level, baseline under "baseline"), config.yaml.
Compare runs with: albsent report RUN...
Example: albsent probe --pretrained runs/ae_mlstm --store st --attach layer1.final --folds 5 --out runs/probe_mlstm"""


def add_parser(sub) -> None:
    p = sub.add_parser("probe", help="linear probe on a frozen pretrained autoencoder vs a raw-feature baseline",
                       description="Train a linear classifier on a frozen autoencoder's attachment point.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pretrained", required=True, metavar="AE_RUN", help="folder written by `albsent pretrain`")
    p.add_argument("--store", required=True, metavar="STORE", help="labelled store with the same frame features")
    p.add_argument("--attach", metavar="POINT",
                   help="attachment point (default: probe.attach saved with AE_RUN, else the model's first; "
                        "list: albsent pretrain --list-attach MODEL)")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder to write")
    p.add_argument("--train-fraction", type=float, metavar="F", help="labeled subset, share of all rows (default 0.1)")
    p.add_argument("--folds", type=int, metavar="K", help="speaker-independent folds (default 5)")
    p.add_argument("--iterations", type=int,
                   help="classifier iterations (default: AE_RUN's probe.iterations, else 2000)")
    p.add_argument("--lr", type=float, help="classifier learning rate (default: AE_RUN's probe.lr, else 1e-2)")
    p.add_argument("--seed", type=int)
    p.add_argument("--json", action="store_true", help="print metrics.json instead of a summary")
    common_config_args(p)
    tracking_args(p)
    p.set_defaults(func=run)


def flags_to_config(args) -> dict:
    names = {"attach": "attach", "train_fraction": "train_fraction", "folds": "folds", "iterations": "iterations",
             "lr": "lr", "seed": "seed"}
    return {key: getattr(args, attr) for attr, key in names.items() if getattr(args, attr) is not None}


def summary(metrics: dict) -> str:
    p, b = metrics["probe"], metrics["baseline"]
    f = metrics.get("folds", 0)
    cell = lambda m, k: f"{m[k]:.3f} ± {m[k + '_std']:.3f}"  # noqa: E731
    return (f"probe {metrics['model']} ({p['dim']} dims), {p['labeled_per_fold'][0]} labeled rows per fold, "
            f"{f} folds by {p['group_by']}\n"
            f"              macro-F1         accuracy         balanced acc.\n"
            f"probe         {cell(metrics, 'macro_f1')}    {cell(metrics, 'accuracy')}    "
            f"{cell(metrics, 'balanced_accuracy')}\n"
            f"baseline      {cell(b, 'macro_f1')}    {cell(b, 'accuracy')}    {cell(b, 'balanced_accuracy')}")


def config_data(args) -> dict:
    """The probe keys the command line gives: --config (its `probe` section, or the whole file if it
    is a probe config), then flags, then --set (`lr=..` or `probe.lr=..`)."""
    from albsent.config import merge, parse_overrides, read_yaml

    data: dict = {}
    if args.config:
        raw = read_yaml(args.config)
        raw.pop("tracking", None)  # albsent.tracking's section (args.tracking_of reads it)
        data = raw["probe"] if "probe" in raw else {} if {"model", "window", "features"} & set(raw) else raw
    data = merge(data, flags_to_config(args))
    sets = [s[len("probe."):] if s.startswith("probe.") else s for s in args.sets]
    return merge(data, parse_overrides(sets))


def run(args) -> int:
    from albsent.app.run_probe import run_probe

    metrics = run_probe(args.pretrained, args.store, args.out, config_data(args), tracking=tracking_of(args))
    print(json.dumps(metrics, indent=1, default=float) if args.json else summary(metrics))
    return 0
