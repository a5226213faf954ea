"""The extraction pipeline: `extract` orchestrates (plan, resume, store decisions; no Ray), `execute`
runs the Ray Data graph; `worker`, `stages`, `resume` and `groups` hold its Ray-free pieces (the
extract config and extractor building live in albsent/features/config.py)."""
