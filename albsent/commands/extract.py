"""`albsent extract INPUT --out STORE`."""

from __future__ import annotations

import json

from albsent.cli import common_config_args, ray_args


def add_parser(sub) -> None:
    p = sub.add_parser("extract", help="audio corpus -> Parquet feature store (Ray Data)",
                       description="Extract features from a manifest CSV (path,label[,speaker,split,...]) or a folder "
                                   "of audio into a resumable, self-describing Parquet store.")
    p.add_argument("input", metavar="INPUT", help="manifest CSV or folder of audio (searched recursively)")
    p.add_argument("--out", required=True, metavar="STORE", help="store directory (local path or URI)")
    p.add_argument("--features", help="comma-separated extractors (default: mfcc,shortterm)")
    p.add_argument("--labels-from", choices=["none", "parent"], help="folder input: label = parent folder name")
    p.add_argument("--allow-root", action="append", default=[], metavar="DIR",
                   help="also allow manifest paths under DIR (repeatable)")
    p.add_argument("--segment", type=float, metavar="SECONDS", help="cut utterances into windows of this length")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    common_config_args(p)
    ray_args(p)
    p.set_defaults(func=run)


def flags_to_config(args) -> dict:
    extra: dict = {}
    if args.features:
        extra["features"] = args.features
    if args.labels_from:
        extra["labels_from"] = args.labels_from
    if args.allow_root:
        extra["allowed_roots"] = args.allow_root
    if args.segment is not None:
        extra.setdefault("audio", {})["segment_s"] = args.segment
    if args.address:
        extra["ray"] = {"address": args.address}
    return extra


def load_config(args):
    from albsent.config import load
    from albsent.pipeline.config import ExtractConfig

    return load(ExtractConfig, args.config, args.sets, flags_to_config(args))


def run(args) -> int:
    from dataclasses import asdict

    from albsent.pipeline.extract import extract

    config = load_config(args)
    summary = extract(args.input, args.out, config, progress=not args.quiet)
    if args.json:
        print(json.dumps(asdict(summary)))
    else:
        print(
            f"{args.out}: {summary.stored} stored ({summary.rows} rows, {summary.audio_s / 3600:.3f} h), "
            f"{summary.quarantined} quarantined {summary.reasons or ''}, {summary.skipped} already done"
        )
    return 0
