"""A local cluster albsent starts listens on loopback only; a resource request no node can hold
fails at once; a sweep folder someone else wrote is not resumed (albsent.runner)."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from albsent.errors import ConfigError
from albsent.runner.resources import check_resources
from albsent.storage import check_owned

ROOT = Path(__file__).resolve().parents[1]

# Starts a local cluster through ray_session, runs one task (so a worker exists), says so in a
# file and keeps the cluster up until its stdin closes.
SESSION_CHILD = r"""
import sys
import ray
from albsent.runner.session import ray_session
with ray_session(num_cpus=1, temp_dir=sys.argv[1]):
    ray.get(ray.remote(lambda: 0).remote())
    open(sys.argv[2], "w").write("ready")
    sys.stdin.read()
"""


def cluster_processes(driver_pid: int, marker: str) -> list:
    """The driver, its descendants, and any process whose command line names the cluster's temp dir."""
    import psutil

    procs = {}
    try:
        driver = psutil.Process(driver_pid)
        procs = {p.pid: p for p in [driver, *driver.children(recursive=True)]}
    except psutil.NoSuchProcess:
        pass
    for p in psutil.process_iter(["cmdline"], ad_value=None):
        if any(marker in arg for arg in p.info["cmdline"] or []):
            procs.setdefault(p.pid, p)
    return list(procs.values())


def listening(procs: list) -> set[tuple[str, str, int]]:
    """(process name, ip, port) of every listening TCP socket of `procs`."""
    import psutil

    found = set()
    for p in procs:
        try:
            name, conns = p.name(), p.net_connections(kind="inet")
        except psutil.Error:  # ended meanwhile
            continue
        found |= {(name, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}
    return found


def is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    return (getattr(addr, "ipv4_mapped", None) or addr).is_loopback


@pytest.mark.ray
@pytest.mark.slow
def test_local_cluster_listens_on_loopback_only(tmp_path):
    ray_tmp = tempfile.mkdtemp(prefix="albsec-", dir="/tmp")  # unix socket paths must stay < 107 bytes
    ready = tmp_path / "ready"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    env.update(RAY_ADDRESS="", RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    with open(tmp_path / "stderr", "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", SESSION_CHILD, ray_tmp, str(ready)], cwd=ROOT, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err, text=True)
    sockets: set = set()
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            sockets |= listening(cluster_processes(proc.pid, ray_tmp))
            time.sleep(0.3)
        assert ready.exists(), f"the cluster did not start: {(tmp_path / 'stderr').read_text()[-2000:]}"
        for _ in range(8):  # a port opened late (measured: all are open when the first task has run)
            sockets |= listening(cluster_processes(proc.pid, ray_tmp))
            time.sleep(0.4)
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        for p in cluster_processes(proc.pid, ray_tmp):  # leftovers of our own cluster only
            p.kill()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    names = {name for name, _, _ in sockets}
    assert {"gcs_server", "raylet"} <= names, f"too few processes seen: {sorted(sockets)}"
    exposed = sorted(s for s in sockets if not is_loopback(s[1]))
    assert not exposed, f"listening beyond loopback: {exposed}"


@pytest.mark.ray
def test_a_request_no_node_can_hold_is_refused(ray_local):
    with pytest.raises(ConfigError, match=r"num_cpus_per_task.*CPU=64.*closest node has CPU=2"):
        check_resources({"CPU": 64}, "num_cpus_per_task")
    with pytest.raises(ConfigError, match=r"resources.*big=1"):
        check_resources({"num_cpus": 1, "big": 1}, "resources")
    check_resources({"num_cpus": 2, "num_gpus": 0}, "num_cpus_per_task")  # fits the 2-CPU node
    check_resources({}, "resources")


@pytest.mark.ray
def test_a_node_type_the_autoscaler_may_add_counts(ray_local, monkeypatch):
    from ray._raylet import GCS_AUTOSCALER_CLUSTER_CONFIG_KEY as KEY
    from ray._raylet import GCS_AUTOSCALER_STATE_NAMESPACE as NS
    from ray.core.generated import autoscaler_pb2
    from ray.experimental.internal_kv import _internal_kv_del, _internal_kv_put

    config = autoscaler_pb2.ClusterConfig()
    config.node_group_configs.add(name="big", resources={"CPU": 64, "big": 1}, min_count=0, max_count=2)
    _internal_kv_put(KEY, config.SerializeToString(), namespace=NS)
    try:
        check_resources({"CPU": 64, "big": 1}, "num_cpus_per_task")
        with pytest.raises(ConfigError):
            check_resources({"CPU": 65}, "num_cpus_per_task")
    finally:
        _internal_kv_del(KEY, namespace=NS)
    with pytest.raises(ConfigError):
        check_resources({"big": 1}, "resources")
    monkeypatch.setenv("ALBSENT_CHECK_RESOURCES", "0")  # the escape hatch
    check_resources({"big": 1}, "resources")


def test_a_sweep_folder_someone_else_owns_is_not_resumed(tmp_path, monkeypatch):
    folder = tmp_path / "sweep"
    (folder / "tune").mkdir(parents=True)
    (folder / "tune" / "tuner.pkl").write_bytes(b"")
    check_owned(str(folder), "--resume")  # ours
    check_owned(str(tmp_path / "absent"), "--resume")
    check_owned("s3://bucket/sweep", "--resume")
    me = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: me + 1)  # as if another user ran the resume
    pattern = f"--resume: {re.escape(str(folder))} belongs to uid {me}.*only resume a sweep folder you wrote"
    with pytest.raises(ConfigError, match=pattern):
        check_owned(str(folder), "--resume")


def test_a_file_linked_from_elsewhere_is_checked_too(tmp_path, monkeypatch):
    folder, outside = tmp_path / "sweep", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (outside / "searcher-state.pkl").write_bytes(b"")
    (folder / "searcher-state.pkl").symlink_to(outside / "searcher-state.pkl")
    (folder / "loop").symlink_to(folder)  # walked once, not for ever
    check_owned(str(folder), "--resume")
    real_stat = os.stat

    def stat(path, *args, **kwargs):  # the linked file belongs to someone else
        st = real_stat(path, *args, **kwargs)
        if str(path).endswith("searcher-state.pkl"):
            return os.stat_result((*st[:4], st.st_uid + 1, *st[5:]))
        return st

    monkeypatch.setattr(os, "stat", stat)
    with pytest.raises(ConfigError, match="searcher-state.pkl belongs to uid"):
        check_owned(str(folder), "--resume")
