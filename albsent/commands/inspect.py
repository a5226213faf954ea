"""`albsent inspect STORE [--json]`."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("inspect", help="describe a feature store", description="Rows, feature columns and shapes, "
                       "quarantined inputs and metadata of a store (readable summary, or one JSON object with --json).")
    p.add_argument("store", metavar="STORE")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from albsent.store import Store
    from albsent.store.store import describe

    info = describe(Store(args.store))
    if args.json:
        print(json.dumps(info, default=str))
        return 0
    meta = info["metadata"]
    print(f"store    {info['store']}  ({info['parts']} parts, albsent {meta['albsent_version']}, "
          f"created {meta['created_utc']})")
    copies = f"   + {info['augmented_rows']} rows of augmented copies (train --augmented)" \
        if info["augmented_rows"] else ""
    print(f"rows     {info['rows']}   labels {info['labels']}{copies}")
    print(f"config   hash {meta['config_hash']}, {meta['sample_rate_hz']} Hz, features {', '.join(meta['extractors'])}")
    print("columns")
    for name, shape in info["features"].items():
        print(f"  {name:<28} {shape}".replace("None", "frames"))
    print(f"quarantined {len(info['quarantined'])}")
    for q in info["quarantined"][:20]:
        print(f"  {q['reason']:<14} {q['path']}")
    if len(info["quarantined"]) > 20:
        print(f"  ... {len(info['quarantined']) - 20} more (see --json)")
    return 0
