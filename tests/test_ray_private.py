"""Each private Ray API albsent uses (albsent/runner/ray_private.py), called against a real
cluster: a Ray upgrade that removes or changes one fails here, loudly, instead of albsent
silently falling back. (The loopback-only guarantee end to end: tests/test_security.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from albsent.runner import ray_private

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.ray
def test_node_addresses_of_a_cluster_before_joining_it(ray_local):
    gcs = ray_local.get_runtime_context().gcs_address
    addresses = ray_private.node_addresses(gcs)
    assert addresses and all(isinstance(a, str) for a in addresses)
    assert all(a.startswith("127.") for a in addresses)  # the test cluster runs on loopback


@pytest.mark.ray
def test_cluster_node_types_read_the_autoscaler_config(ray_local):
    from ray._raylet import GCS_AUTOSCALER_CLUSTER_CONFIG_KEY as KEY
    from ray._raylet import GCS_AUTOSCALER_STATE_NAMESPACE as NS
    from ray.core.generated import autoscaler_pb2
    from ray.experimental.internal_kv import _internal_kv_del, _internal_kv_put

    assert ray_private.cluster_node_types() == []  # nothing reported
    config = autoscaler_pb2.ClusterConfig()
    config.node_group_configs.add(name="big", resources={"CPU": 64, "big": 1}, min_count=0, max_count=2)
    config.node_group_configs.add(name="off", resources={"GPU": 8}, min_count=0, max_count=0)
    _internal_kv_put(KEY, config.SerializeToString(), namespace=NS)
    try:
        assert ray_private.cluster_node_types() == [({"CPU": 64.0, "big": 1.0}, 2), ({"GPU": 8.0}, 0)]
    finally:
        _internal_kv_del(KEY, namespace=NS)


CHILD = r"""
import ray
from ray._private import ray_constants, services
from albsent.runner.ray_private import loopback_node_ip
before = ray_constants.ENABLE_RAY_CLUSTER
with loopback_node_ip():
    inside = services.resolve_ip_for_localhost("127.0.0.1")
print(inside, ray_constants.ENABLE_RAY_CLUSTER == before)
"""


def test_loopback_node_ip_keeps_a_local_node_on_loopback():
    """What ray.init(_node_ip_address="127.0.0.1") resolves to inside the block (in a fresh
    process: a connected driver would answer with its own node's address)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"} | {"PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["127.0.0.1", "True"]


def test_a_missing_private_api_is_an_error_not_a_fallback(monkeypatch):
    from ray._private import ray_constants

    monkeypatch.delattr(ray_constants, "ENABLE_RAY_CLUSTER")
    with pytest.raises(ray_private.RayPrivateAPIError, match="ENABLE_RAY_CLUSTER.*ray_private.py needs updating"):
        with ray_private.loopback_node_ip():
            pass
