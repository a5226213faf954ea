"""`albsent report RUN... [--out FILE] [--html FILE [--store STORE]]`."""

from __future__ import annotations

from albsent.errors import InputError


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="markdown table (and an HTML page) comparing training runs",
                       description="Compare runs of `albsent train` (accuracy, macro-F1, balanced accuracy and "
                                   "per-class F1; mean ± std over folds for --folds runs), like the Albanian "
                                   "paper's Tables 3-5. --html adds one self-contained HTML page with each run's "
                                   "figures, the automatic selection, sweep plots and (--store) corpus statistics.")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run folder of `albsent train`/`probe`, or a SWEEP_DIR of `albsent sweep`")
    p.add_argument("--out", metavar="FILE", help="also write the table to FILE")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report (images embedded) to FILE")
    p.add_argument("--store", metavar="STORE", help="with --html: add this store's corpus statistics")
    p.set_defaults(func=run)


def run(args) -> int:
    from albsent.app.run_report import run_report

    if args.store and not args.html:
        raise InputError("--store: corpus statistics are part of the HTML report; give --html FILE too")
    print(run_report(args.runs, args.out, args.html, args.store))
    if args.html:
        print(f"\nHTML report: {args.html}")
    return 0
