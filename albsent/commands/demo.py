"""`albsent demo [--input MANIFEST] [--out DIR]`."""

from __future__ import annotations

from pathlib import Path

from albsent.app.args import ray_args


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on a synthetic Albanian corpus (or --input)",
                       description="With no arguments: synthesise a small SYNTHETIC Albanian corpus offline "
                                   "(eSpeak NG, voice sq; positive / neutral / negative sentences with distinct "
                                   "prosody, 3 speaker variants), then extract -> stats -> train -> report on a "
                                   "local Ray cluster started for the run.")
    p.add_argument("--input", metavar="MANIFEST", help="run on this real corpus instead of the synthetic one")
    p.add_argument("--out", default="albsent-demo", metavar="DIR", help="output folder (default ./albsent-demo)")
    ray_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from albsent.app.run_demo import run_demo

    if args.input is None:
        print("albsent demo: using a SYNTHETIC Albanian corpus (eSpeak NG voice 'sq'), not real speech.")
    result = run_demo(args.out, args.input, args.address, progress=not getattr(args, "quiet", False))
    s = result["extract"]
    print(f"\nstore: {result['store']}  ({s.stored} clips stored, {s.quarantined} quarantined)")
    print((Path(args.out) / "stats" / "stats.md").read_text())
    print("## Classifiers (grouped K-fold, mean ± std)\n")
    print(result["table"])
    print(f"\nruns, figures and metrics.json: {Path(args.out) / 'runs'};  report: {Path(args.out) / 'report.md'}")
    print(f"HTML report (open it in a browser): {result['html']}")
    return 0
