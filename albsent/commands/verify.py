"""`albsent verify STORE [--manifest INPUT] [--json] [--repair]`."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("verify", help="check a store's parts against its metadata (and a manifest)",
                       description="Check the metadata against itself (its hash, its columns) and against the parts; "
                                   "read every part with its page checksums verified; check its columns by name and "
                                   "type against the metadata, finite feature values, footer statistics against the "
                                   "values, no duplicate row ids, no input both stored and quarantined, no stray file "
                                   "readers would take for rows, and with --manifest that every input is accounted for "
                                   "and every stored input still listed. Exit 0 when the store is sound, 1 when a "
                                   "problem remains.")
    p.add_argument("store", metavar="STORE")
    p.add_argument("--manifest", metavar="INPUT", help="manifest CSV or audio folder the store was extracted from")
    p.add_argument("--allow-root", action="append", default=[], metavar="DIR",
                   help="as for extract: also allow manifest paths under DIR")
    p.add_argument("--repair", action="store_true",
                   help="move broken parts and stray files to STORE/_broken/ (then `albsent extract` with the same "
                        "input redoes exactly their inputs), drop duplicate rows, rewrite wrong statistics, rebuild "
                        "lost or damaged metadata from the parts; never deletes what readers can read")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from albsent.app.run_verify import run_verify
    from albsent.store.verify import format_report

    report = run_verify(args.store, args.manifest, args.allow_root, repair=args.repair)
    print(json.dumps(report.to_dict()) if args.json else format_report(report))
    return 0 if report.ok else 1
