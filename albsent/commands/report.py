"""`albsent report RUN... [--out FILE]`."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="markdown table comparing training runs",
                       description="Compare runs of `albsent train` (accuracy, macro-F1, balanced accuracy and "
                                   "per-class F1; mean ± std over folds for --folds runs), like the Albanian "
                                   "paper's Tables 3-5.")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run folder of `albsent train`/`probe`, or a SWEEP_DIR of `albsent sweep`")
    p.add_argument("--out", metavar="FILE", help="also write the table to FILE")
    p.set_defaults(func=run)


def run(args) -> int:
    from albsent.app.run_report import run_report

    print(run_report(args.runs, args.out))
    return 0
