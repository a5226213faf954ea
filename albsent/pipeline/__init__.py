"""The extraction pipeline: `extract` builds the Ray Data graph; `worker`, `stages`, `resume` and `groups`
hold its Ray-free pieces (the extract config and extractor building live in albsent/features/config.py)."""
