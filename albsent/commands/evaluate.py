"""`albsent evaluate RUN INPUT --out DIR`: score a trained run on another labelled corpus."""

from __future__ import annotations

import json

from albsent.app.args import common_config_args, label_map_of, ray_args


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score a trained run on another labelled corpus (cross-corpus)",
                       description="Score RUN on INPUT: a feature store extracted with the run's config (used as "
                                   "it is; another config is refused with the differences), or a labelled manifest "
                                   "CSV / audio folder, extracted with the run's recorded extract config into "
                                   "DIR/store on Ray (files that cannot be decoded are listed in metrics.json and "
                                   "the rest scored). DIR gets metrics.json (pooled and per speaker), "
                                   "predictions.csv and confusion_matrix.png, as a training run's evaluation.")
    p.add_argument("run", metavar="RUN", help="folder written by `albsent train --out`")
    p.add_argument("input", metavar="INPUT", help="feature store, manifest CSV (path,label[,speaker]) or audio folder")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write (new or empty)")
    p.add_argument("--labels-from", choices=["none", "parent"], help="folder INPUT: label = parent folder name")
    p.add_argument("--label-map", action="append", default=[], metavar="FROM=TO",
                   help="INPUT's label FROM is the run's class TO (repeatable; also --set label_map.FROM=TO)")
    p.add_argument("--allow-root", action="append", default=[], metavar="DIR",
                   help="also allow manifest paths under DIR (repeatable)")
    p.add_argument("--json", action="store_true", help="print metrics.json instead of a summary")
    common_config_args(p)
    ray_args(p)
    p.set_defaults(func=run)


def flags_to_config(args) -> dict:
    extra: dict = {}
    if args.labels_from:
        extra["labels_from"] = args.labels_from
    if args.allow_root:
        extra["allowed_roots"] = args.allow_root
    if args.label_map:
        extra["label_map"] = label_map_of(args.label_map)
    return extra


def run(args) -> int:
    from albsent.app.run_evaluate import run_evaluate
    from albsent.config import load
    from albsent.report.tables import format_metrics
    from albsent.train.evaluate import EvaluateConfig

    config = load(EvaluateConfig, args.config, args.sets, flags_to_config(args))
    metrics = run_evaluate(args.run, args.input, args.out, config, address=args.address, progress=not args.quiet)
    if args.json:
        print(json.dumps(metrics, indent=1, default=float))
        return 0
    print(format_metrics(metrics, f"{args.run} on {args.input} -> {args.out}"))
    q = metrics["quarantined"]
    if q["count"]:
        print(f"{q['count']} file(s) not scored: " + "; ".join(f"{f['path']} ({f['reason']})" for f in q["files"][:5]))
    return 0
