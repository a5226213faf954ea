"""Every private Ray API albsent uses, in one place (Ray 2.60). Each has no public equivalent
(checked against the ray 2.60 package) and a test in tests/test_ray_private.py that calls it
against a real cluster and fails loudly when a Ray upgrade removes or changes it:

- `node_addresses(address)`: the node manager addresses registered at a cluster's GCS, asked
  *before* this process joins it (`ray.nodes()` and `ray.util.state.list_nodes` need a connected
  driver or the dashboard; albsent's local clusters run without one). `ray._raylet.GcsClient`.
- `cluster_node_types()`: the node types a cluster's autoscaler reports it may add (the
  ClusterConfig in the GCS). `ray._private.state.state.get_cluster_config`; no public API exposes
  it (`ray.autoscaler.v2.sdk.get_cluster_status` lists nodes, not node types).
- `loopback_node_ip()`: keep a local node's IP on loopback while it starts. `ray.init` has no
  public bind-address option; `_node_ip_address="127.0.0.1"` alone is swapped for the routable IP
  unless `ray._private.ray_constants.ENABLE_RAY_CLUSTER` is false (albsent/runner/session.py).

A missing or changed API raises RayPrivateAPIError (never a silent fallback), naming what to fix.
"""

from __future__ import annotations

import contextlib


class RayPrivateAPIError(RuntimeError):
    """A private Ray API albsent relies on is missing or changed (a Ray upgrade): fix albsent/runner/ray_private.py."""


def _missing(what: str, exc: Exception) -> RayPrivateAPIError:
    import ray

    return RayPrivateAPIError(f"ray {ray.__version__} no longer provides {what} ({exc!r}); albsent/runner/"
                              "ray_private.py needs updating for this Ray version (tests/test_ray_private.py)")


def node_addresses(address: str, timeout_s: float = 10) -> list[str]:
    """The node manager address of every node registered at the GCS `address` (host:port),
    without joining the cluster. Connection errors propagate as Ray raises them."""
    try:
        from ray._raylet import GcsClient
    except ImportError as exc:
        raise _missing("ray._raylet.GcsClient", exc) from exc
    infos = GcsClient(address=address).get_all_node_info(timeout=timeout_s)
    try:
        return [str(i.node_manager_address) for i in infos.values()]
    except AttributeError as exc:
        raise _missing("GcsNodeInfo.node_manager_address", exc) from exc


def cluster_node_types() -> list[tuple[dict[str, float], int]]:
    """(resources, max_count) of each node type the connected cluster's autoscaler reports
    ([] when none is reported). Needs `ray.init` first."""
    try:
        from ray._private.state import state

        config = state.get_cluster_config()
    except (ImportError, AttributeError) as exc:
        raise _missing("ray._private.state.state.get_cluster_config()", exc) from exc
    if config is None:
        return []
    try:
        return [({k: float(v) for k, v in g.resources.items()}, int(g.max_count)) for g in config.node_group_configs]
    except AttributeError as exc:
        raise _missing("ClusterConfig.node_group_configs (resources, max_count)", exc) from exc


@contextlib.contextmanager
def loopback_node_ip():
    """While Ray starts a local node here, keep its node IP on loopback (albsent/runner/session.py).
    Ray read RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it was imported, so this process needs the flag
    itself."""
    try:
        from ray._private import ray_constants

        old = ray_constants.ENABLE_RAY_CLUSTER
    except (ImportError, AttributeError) as exc:
        raise _missing("ray._private.ray_constants.ENABLE_RAY_CLUSTER", exc) from exc
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old
