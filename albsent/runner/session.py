"""Connect to an existing Ray cluster, or start (and later stop) a local one (`ray_session`);
quiet Ray Data's own progress output (`quiet_data_context`).

A local cluster listens on loopback only (its auth is off: whoever reaches a port can run code).
Ray 2.60 chooses every bind address from the node IP. With a routable node IP (measured):
- the gRPC servers of gcs_server, the raylet (node manager, object manager) and every core worker
  (driver, workers, dashboard agent) listen on "::" (all interfaces);
- the Prometheus endpoints (dashboard agent's metrics export port, the autoscaler monitor's 44217,
  the dashboard's 44227) listen on 0.0.0.0;
- the dashboard agent's HTTP server (52365) and the runtime env agent listen on the node IP.
With a loopback node IP all of them listen on 127.0.0.1 (or ::ffff:127.0.0.1 / ::1). But
`ray.init(_node_ip_address="127.0.0.1")` alone keeps the routable IP: `resolve_ip_for_localhost`
swaps loopback for it unless `ray_constants.ENABLE_RAY_CLUSTER` is false (the switch
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER, read when Ray is imported; false by default on macOS and Windows,
where Ray then runs on loopback). `ray_session` turns it off while it starts the cluster: in this
process (`loopback_node_ip`, albsent/runner/ray_private.py) and, through the environment, in every
process the cluster starts.
tests/test_security.py lists the listening sockets of every process of such a cluster. A cluster
albsent joins (`address`) keeps its own settings.
"""

from __future__ import annotations

import contextlib
import logging
import os

from albsent.errors import ConfigError
from albsent.runner.ray_private import RayPrivateAPIError, loopback_node_ip, node_addresses
from albsent.runtime import worker_env

log = logging.getLogger(__name__)
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # children: node IP = loopback (module docstring)


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
    try:
        if address:
            log.info("connecting to Ray cluster at %s", address)
            loopback = on_loopback(address)  # (asks the cluster's GCS)
            with (environ(LOOPBACK_ENV) if loopback else contextlib.nullcontext()), \
                    (loopback_node_ip() if loopback else contextlib.nullcontext()):
                ray.init(address=address, **kwargs)
        else:
            log.info("starting a local Ray cluster (%s CPUs)", num_cpus or os.cpu_count())
            # the environment is inherited by the raylet, hence by every worker and agent it starts
            with environ({**worker_env(), **LOOPBACK_ENV}), loopback_node_ip():
                ray.init(num_cpus=num_cpus, include_dashboard=False, _temp_dir=temp_dir,
                         _node_ip_address="127.0.0.1", **kwargs)
    except Exception as exc:  # Ray's start-up failures (timeouts under load, refused ports) come in many types
        with contextlib.suppress(Exception):
            ray.shutdown()
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if address:
            raise ConfigError(f"cannot join the Ray cluster at {address} ({first}); check that it runs (`ray status "
                              f"--address {address}`) and that this host can reach it") from exc
        raise ConfigError(f"could not start a local Ray cluster ({first}); the machine may be busy: try again, or "
                          "start one with `ray start --head` and pass --address") from exc
    try:
        yield
    finally:
        ray.shutdown()


def on_loopback(address: str) -> bool:
    """Whether the cluster at `address` (host:port) registered its nodes on loopback, as albsent's
    own local clusters do: a driver joining it must then take a loopback node IP too, or Ray
    waits for ever for a raylet at the host's address."""
    if address == "auto" or "://" in address:
        return False
    try:
        addresses = node_addresses(address)  # (asks the cluster's GCS)
    except RayPrivateAPIError:
        raise  # a Ray upgrade: say so, never guess
    except Exception:  # not reachable / another Ray: let ray.init say what is wrong
        return False
    return any(a.startswith("127.") for a in addresses)


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
