"""`albsent extract INPUT --out STORE`."""

from __future__ import annotations

import json

from albsent.app.args import common_config_args, ray_args


def add_parser(sub) -> None:
    p = sub.add_parser("extract", help="audio corpus -> Parquet feature store (Ray Data)",
                       description="Extract features from a manifest CSV (path,label[,speaker,split,...]) or a folder "
                                   "of audio into a resumable, self-describing Parquet store.")
    p.add_argument("input", metavar="INPUT", help="manifest CSV or folder of audio (searched recursively)")
    p.add_argument("--out", required=True, metavar="STORE", help="store directory (local path or URI)")
    p.add_argument("--features", help="comma-separated extractors (default: mfcc,shortterm): mfcc, shortterm, level "
                                      "(recording level before normalisation), ssl, "
                                      "egemaps and compare (openSMILE eGeMAPSv02 / ComParE_2016, pip install "
                                      "'albsent[opensmile]'; openSMILE's licence allows research and other "
                                      "non-commercial use only). For `albsent train`'s automatic selection: "
                                      "mfcc,shortterm,egemaps,compare,level")
    p.add_argument("--labels-from", choices=["none", "parent"], help="folder input: label = parent folder name")
    p.add_argument("--allow-root", action="append", default=[], metavar="DIR",
                   help="also allow manifest paths under DIR (repeatable)")
    p.add_argument("--segment", type=float, metavar="SECONDS", help="cut utterances into windows of this length")
    p.add_argument("--ssl-model", action="append", default=[], metavar="MODEL",
                   help="SSL model for the 'ssl' extractor: hub id (facebook/hubert-base-ls960, "
                        "facebook/wav2vec2-base, microsoft/wavlm-base-plus, ...) or a save_pretrained folder, "
                        "optionally ALIAS=MODEL; repeatable or comma-separated. Adds 'ssl' to the features.")
    p.add_argument("--augment", metavar="SPEC",
                   help="store augmented copies of every clip for `albsent train --augmented` (training folds "
                        "only): 'default' (speed=0.9/1.1,pitch=2,gain=6,snr=10-20,copies=1: each transform "
                        "applied with p=0.5, at least one per copy) or comma-separated KEY=VALUE of copies, seed, "
                        "p, speed=A/B, pitch=SEMITONES (+-), gain=DB (+-), snr=LOW-HIGH (white noise); needs "
                        "pip install 'albsent[augment]'")
    p.add_argument("--dry-run", action="store_true",
                   help="print the planned work (clips, hours, store size, time from a measured sample) and exit")
    p.add_argument("--retry-quarantined", action="store_true",
                   help="extract quarantined inputs again (a quarantined file whose size or mtime changed is "
                        "retried without this flag)")
    p.add_argument("--prune", action="store_true",
                   help="remove from the store the inputs INPUT no longer lists (renamed, moved or deleted from "
                        "the manifest); without it they are kept and reported")
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
    if args.augment:
        from albsent.audio.augment import parse_spec
        from albsent.config import to_dict

        extra["augment"] = to_dict(parse_spec(args.augment))
    models = [m.strip() for item in args.ssl_model for m in item.split(",") if m.strip()]
    if models:
        extra["ssl"] = {"models": models}
    return extra


def load_config(args):
    from albsent.config import build, load, to_dict
    from albsent.features.config import ExtractConfig

    config = load(ExtractConfig, args.config, args.sets, flags_to_config(args))
    if args.ssl_model and "ssl" not in config.features:
        # --ssl-model adds 'ssl' to whatever feature list the config, --features or --set gave
        config = build(ExtractConfig, to_dict(config) | {"features": [*config.features, "ssl"]})
    return config


def run(args) -> int:
    from dataclasses import asdict

    from albsent.app.run_extract import dry_run, run_extract

    config = load_config(args)
    if args.dry_run:
        from albsent.pipeline.plan import format_plan

        p = dry_run(args.input, args.out, config)
        print(json.dumps(p, default=str) if args.json else format_plan(p))
        return 0
    summary = run_extract(args.input, args.out, config, progress=not args.quiet,
                          retry_quarantined=args.retry_quarantined, prune=args.prune)
    if args.json:
        print(json.dumps(asdict(summary)))
    else:
        print(format_summary(args.out, summary))
    return 0


def format_summary(out: str, s) -> str:
    """One line: what this run did, and what it found already done (and updated) in the store."""
    reasons = f" {s.reasons}" if s.reasons else ""
    redo = [f"{n} {what}" for n, what in ((s.changed, "changed on disk (old rows replaced)"),
                                          (s.retried, "retried from quarantine")) if n]
    relabel = f", {s.relabelled} of them relabelled" if s.relabelled else ""
    groups = f"; feature group(s) {', '.join(s.groups_added)} added to {s.group_rows} stored rows" \
        if s.groups_added else ""
    kept = [f"{n} {what}" for n, what in (
        (s.unavailable, "stored input(s) unavailable (file missing or unreadable: rows kept, not redone)"),
        (s.stale, "input(s) in the store but not in INPUT (kept; --prune removes them)"),
        (s.pruned, "input(s) not in INPUT removed (--prune)")) if n]
    return (f"{out}: {s.stored} stored ({s.rows} rows, {s.audio_s / 3600:.3f} h), {s.quarantined} quarantined{reasons}"
            f"{''.join(', ' + r for r in redo)}; {s.skipped} already done{relabel}{groups}"
            f"{''.join('; ' + k for k in kept)}")
