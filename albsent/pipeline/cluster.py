"""Connect to an existing Ray cluster, or start (and later stop) a local one."""

from __future__ import annotations

import contextlib
import logging
import os

from albsent.runtime import worker_env

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
        with environ(worker_env()):  # inherited by the raylet, hence by every worker it starts
            ray.init(num_cpus=num_cpus, include_dashboard=False, _temp_dir=temp_dir, _node_ip_address="127.0.0.1",
                     **kwargs)
    try:
        yield
    finally:
        ray.shutdown()


@contextlib.contextmanager
def environ(values: dict[str, str]):
    """Set environment variables for the duration of the block (processes started inside it
    inherit them), then restore the previous values."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _DropProgressBarNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Progress bars disabled")


def quiet_data_context():
    """Our own progress bar and summary replace Ray Data's per-operator bars and INFO lines."""
    from ray.data import DataContext

    data_log = logging.getLogger("ray.data")
    data_log.setLevel(max(data_log.level, logging.WARNING))
    if not any(isinstance(f, _DropProgressBarNotice) for f in data_log.filters):
        for handler_owner in (data_log, logging.getLogger("ray")):
            for h in handler_owner.handlers:
                h.addFilter(_DropProgressBarNotice())
        data_log.addFilter(_DropProgressBarNotice())
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    return ctx
