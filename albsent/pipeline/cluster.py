"""Connect to an existing Ray cluster, or start (and later stop) a local one."""

from __future__ import annotations

import contextlib
import logging
import os

log = logging.getLogger(__name__)


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None, temp_dir: str | None = None):
    """`address` (or RAY_ADDRESS) joins that cluster; otherwise a local cluster is started here
    and shut down on exit. An already-initialised Ray (tests, Tune trials, jobs) is reused as is."""
    import ray

    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs = dict(logging_level=logging.WARNING, log_to_driver=True, configure_logging=True)
    if address:
        log.info("connecting to Ray cluster at %s", address)
        ray.init(address=address, **kwargs)
    else:
        log.info("starting a local Ray cluster (%s CPUs)", num_cpus or os.cpu_count())
        ray.init(num_cpus=num_cpus, include_dashboard=False, _temp_dir=temp_dir, _node_ip_address="127.0.0.1", **kwargs)
    try:
        yield
    finally:
        ray.shutdown()


def quiet_data_context():
    """Our own progress bar replaces Ray Data's per-operator bars."""
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    return ctx
