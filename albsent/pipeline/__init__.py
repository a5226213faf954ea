"""The extraction pipeline. `worker` and `config` are Ray-free; `extract` builds the Ray Data graph."""
