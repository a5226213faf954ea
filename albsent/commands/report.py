"""`albsent report RUN... [--out FILE]`."""

from __future__ import annotations

from pathlib import Path


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
    from albsent.report.tables import compare_runs

    sweeps = [r for r in args.runs if (Path(r) / "sweep.json").is_file()]  # SWEEP_DIR: summary + its final run
    head = ""
    if sweeps:
        from albsent.sweep.results import summarize

        head = "\n\n".join(summarize(s) for s in sweeps) + "\n\n"
    runs = [str(Path(r) / "final") if r in sweeps else r for r in args.runs]
    runs = [r for r in runs if r in args.runs or (Path(r) / "metrics.json").is_file()]
    table = head + (compare_runs(runs) if runs else "")
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")
    return 0
