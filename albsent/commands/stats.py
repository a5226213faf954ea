"""`albsent stats INPUT_OR_STORE --out DIR`."""

from __future__ import annotations

from albsent.app.args import common_config_args, ray_args


def add_parser(sub) -> None:
    p = sub.add_parser("stats", help="per-class durations, segment heterogeneity, ZCR/flatness figures",
                       description="Descriptive statistics as in the Albanian paper (Tables 1-2, Figs 2-5). "
                                   "Given a manifest or audio folder instead of a store, it first extracts "
                                   "MFCC + short-term features (1.5 s segments by default) into DIR/store.")
    p.add_argument("input", metavar="INPUT_OR_STORE")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--column", default="mfcc_mean", help="pooled feature column for heterogeneity (default mfcc_mean)")
    common_config_args(p)
    ray_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from albsent.app.run_stats import run_stats
    from albsent.config import load
    from albsent.features.config import ExtractConfig

    def make_config():  # only for an INPUT that is not a store yet: extracted into DIR/store first
        return load(ExtractConfig, args.config, args.sets,
                    {"audio": {"segment_s": 1.5}, **({"ray": {"address": args.address}} if args.address else {})})

    print(run_stats(args.input, args.out, args.column, make_config, progress=not getattr(args, "quiet", False)))
    return 0
