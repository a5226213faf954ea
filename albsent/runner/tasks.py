"""Plain functions mapped over Ray tasks: `ray_mapper()` is the `mapper(fn, items)` that
albsent.train.select takes, so the same Ray-free code runs on one core or a cluster (the automatic
selection's independent pieces: score one recipe on one unit's inner folds; refit one ensemble
member). Each Data argument goes into the object store once and every task reads it from there
(zero-copy numpy on the same node). albsent/app/run_auto.py opens the session around it.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def _call(fn, *args):
    return fn(*args)


def ray_mapper(cpus_per_task: float = 1.0):
    """mapper(fn, items) -> results in order, each call a Ray task; Data arguments are passed by
    reference (ray.put once per object)."""
    import ray

    from albsent.dataset.data import Data

    run = ray.remote(num_cpus=cpus_per_task, max_retries=2)(_call)
    refs: dict[int, object] = {}

    def ref(arg):
        if isinstance(arg, Data):
            if id(arg) not in refs:
                refs[id(arg)] = (ray.put(arg), arg)  # keep arg alive so its id stays unique
            return refs[id(arg)][0]
        return arg

    def mapper(fn, items: list[tuple]) -> list:
        pending = [run.remote(fn, *[ref(a) for a in args]) for args in items]
        order = {r: i for i, r in enumerate(pending)}
        out, left, t0, last = [None] * len(pending), list(pending), time.perf_counter(), 0.0
        while left:
            done, left = ray.wait(left, num_returns=min(len(left), max(1, len(pending) // 20)), timeout=30)
            for r in done:
                out[order[r]] = ray.get(r)
            if time.perf_counter() - last > 10 or not left:
                last = time.perf_counter()
                log.info("auto: %s %d/%d tasks done (%.0f s)", fn.__name__, len(pending) - len(left), len(pending),
                         last - t0)
        return out

    return mapper
