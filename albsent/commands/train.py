"""`albsent train --store STORE --out RUN` (automatic recipe selection by nested speaker-independent
CV), or `albsent train --store STORE --features SPEC --model NAME --out RUN` (one recipe)."""

from __future__ import annotations

import argparse
import json

from albsent.app.args import common_config_args, ray_args, tracking_args, tracking_of

SPEC_HELP = """Without --model, --features or --config, or with --auto: automatic selection. Nested
cross-validation over speakers: for each outer fold, every candidate recipe (each feature group
the store has and fusions of them, x global or per-speaker z-score, x logistic regression /
RBF SVM and their C) is scored by inner CV on that fold's training speakers only; the 20 best
recipes, averaged, are scored on the fold's test speakers (fewer speakers than folds: leave one
speaker out). The final model (RUN/ensemble.json) is chosen the same way on all speakers and
refitted on all of them. Runs on Ray (--address joins a
cluster). RUN holds metrics.json (pooled and per fold), selection.csv (every candidate's inner
score per fold), recipes.json, predictions.csv. Extract with --features mfcc,shortterm,egemaps,compare,level
for the best results (egemaps/compare: openSMILE, research and non-commercial licence).

feature SPEC (what the model reads):
  mfcc | shortterm          pooled NAME_mean + NAME_std (mfcc.mean / mfcc.std: one of them)
  mfcc+shortterm            pooled parts concatenated
  mfcc:seq, mfcc+shortterm:seq
                            frame sequences (frames, dim), concatenated per frame (sequence models)
  ssl:ALIAS:9               layer 9 of the pooled SSL column ssl_ALIAS_mean (layers, hidden)
  ssl:ALIAS:6,9,12          several layers concatenated
  ssl:ALIAS:all             all layers, mixed by a learned softmax-weighted layer sum
  ssl:ALIAS:seq:9           frame sequence of layer 9 (column ssl_ALIAS_l9)
  mfcc+ssl:ALIAS:12         pooled parts may mix extractors
  egemaps.func              openSMILE functionals (also compare.func)
  mfcc.rich, mfcc.mean,std,p50
                            statistics over frames: mean, std, func, pNN, range, slope, skew,
                            kurt, vmean, vstd (voiced frames), rich (all of them)

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
    p.add_argument("--speaker-norm", action="store_true", default=None,
                   help="z-score each speaker's rows with that speaker's own statistics (no labels needed)")
    p.add_argument("--augmented", nargs="?", const="on", choices=["on", "both"],
                   help="train also on the store's augmented copies of the training rows (extract --augment); "
                        "copies are never in validation or test parts, nor in --auto's inner test folds. With "
                        "--auto, 'both' lets the selection choose per recipe (twice the candidates)")
    p.add_argument("--auto", action="store_true",
                   help="automatic recipe selection (the default without --model/--features/--config)")
    p.add_argument("--inner-folds", type=int, metavar="K", help="--auto: inner folds per outer fold (default 5)")
    p.add_argument("--ensemble-size", type=int, metavar="N",
                   help="--auto: at most N ensemble picks (1: single best recipe)")
    p.add_argument("--stores", nargs="+", metavar="STORE",
                   help="--loco: the corpora, one feature store each (extracted with the same config)")
    p.add_argument("--loco", action="store_true",
                   help="leave one corpus out: for each of --stores, train on the others (this recipe, or the "
                        "automatic selection on them only) and score it as `albsent evaluate` does; RUN gets one "
                        "folder per held-out corpus and a summary metrics.json")
    p.add_argument("--label-map", action="append", default=[], metavar="FROM=TO",
                   help="--loco: a corpus label FROM is the class TO in every corpus (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out (otherwise refused)")
    p.add_argument("--json", action="store_true", help="print metrics.json instead of a summary")
    ray_args(p)
    common_config_args(p)
    tracking_args(p)
    p.set_defaults(func=run)


def flags_to_config(args) -> dict:
    extra: dict = {}
    for key in ("store", "features", "model", "epochs", "seed"):
        if getattr(args, key) is not None:
            extra[key] = getattr(args, key)
    for key in ("class_weighted", "speaker_norm"):
        if getattr(args, key):
            extra[key] = True
    if args.augmented:
        extra["augmented"] = one_recipe_augmented(args.augmented)
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


def one_recipe_augmented(flag: str) -> bool:
    if flag == "both":
        from albsent.errors import ConfigError

        raise ConfigError("--augmented both lets --auto choose; one recipe trains with (--augmented) or without")
    return True


def auto_flags(args) -> dict:
    extra: dict = {}
    for key in ("store", "seed", "inner_folds", "ensemble_size"):
        if getattr(args, key) is not None:
            extra[key] = getattr(args, key)
    if args.folds is not None:
        extra["folds"] = args.folds
    if args.augmented:
        extra["augmented"] = [False, True] if args.augmented == "both" else [True]
    if args.split in ("speaker", "utterance"):
        extra["group_by"] = args.split
    return extra


def check_auto_flags(args) -> None:
    from albsent.errors import ConfigError

    for flag in ("epochs", "class_weighted", "speaker_norm"):
        if getattr(args, flag):
            raise ConfigError(f"--{flag.replace('_', '-')} sets one recipe; "
                              "--auto searches recipes (use --model for one)")
    if args.split == "column":
        raise ConfigError("--split column gives one fixed split; "
                          "--auto needs grouped folds (--split speaker or utterance)")


def run_auto(args) -> int:
    from albsent.app.run_auto import run_auto as auto
    from albsent.config import load
    from albsent.report.tables import format_metrics
    from albsent.train.select import AutoConfig

    check_auto_flags(args)
    config = load(AutoConfig, args.config, args.sets, auto_flags(args))
    metrics = auto(config, args.out, args.overwrite, address=args.address, tracking=tracking_of(args))
    if args.json:
        print(json.dumps(metrics, indent=1, default=float))
    else:
        print(format_metrics(metrics, f"auto ({metrics['candidates']} candidate recipes) -> {args.out}"))
        final = metrics["selection"]["all"]["members"]
        print("final model: " + "; ".join(f"{m['recipe']} (weight {m['weight']:.2f})" for m in final))
        print(f"protocol: {metrics['protocol']}")
    return 0


def run_loco(args) -> int:
    from albsent.app.args import label_map_of
    from albsent.app.run_loco import run_loco as loco
    from albsent.config import load
    from albsent.errors import ConfigError
    from albsent.train import TrainConfig
    from albsent.train.select import AutoConfig

    if args.store:
        raise ConfigError("--loco takes its corpora from --stores A B ...; --store names one store")
    auto = args.auto or (args.model is None and args.features is None and args.config is None)
    if auto:
        check_auto_flags(args)
    config = load(AutoConfig, args.config, args.sets, auto_flags(args)) if auto else \
        load(TrainConfig, args.config, args.sets, flags_to_config(args))
    label_map = label_map_of(args.label_map) or None
    summary = loco(config, args.stores or [], args.out, label_map, args.overwrite, args.address)
    if args.json:
        print(json.dumps(summary, indent=1, default=float))
        return 0
    for name, m in summary["held_out"].items():
        print(f"held out {name}: macro-F1 {m['macro_f1']:.3f}  accuracy {m['accuracy']:.3f}  "
              f"balanced accuracy {m['balanced_accuracy']:.3f}  ({m['n']} utterances)")
    print(f"mean macro-F1 {summary['mean_macro_f1']:.3f}; pooled over every held-out utterance: "
          f"macro-F1 {summary['macro_f1']:.3f} -> {args.out}")
    return 0


def run(args) -> int:
    if args.loco:
        return run_loco(args)
    if args.stores:
        from albsent.errors import ConfigError

        raise ConfigError("--stores is for --loco (leave one corpus out); train on one store with --store")
    if args.auto or (args.model is None and args.features is None and args.config is None):
        return run_auto(args)
    from albsent.app.run_train import train_one
    from albsent.config import load
    from albsent.report.tables import format_metrics
    from albsent.train import TrainConfig

    config = load(TrainConfig, args.config, args.sets, flags_to_config(args))
    metrics = train_one(config, args.out, args.overwrite, tracking=tracking_of(args))
    if args.json:
        print(json.dumps({k: v for k, v in metrics.items() if k != "history"}, indent=1))
    else:
        print(format_metrics(metrics, f"{config.model} on {config.features} -> {args.out}"))
    return 0
