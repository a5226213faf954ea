"""A Ray cluster of real nodes on this machine, for tests and benchmarks: `ray start --head` plus
worker nodes joining it, each a `ray start --block` subprocess with its own resources, ports and
--temp-dir.

Teardown freezes and kills exactly those process trees (never `ray stop`, which would take other
people's clusters down too) and removes the temp dirs. `ray.cluster_utils.Cluster` is not used: it
writes /tmp/ray/ray_current_cluster, which would make anyone's plain `ray.init()` on this host
join this cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent  # the venv: nodes, and so drivers and workers, use its python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """Head + workers as `ray start --block` subprocesses with separate temp dirs and free ports."""

    def __init__(self, env: dict[str, str] | None = None):
        """`env`: extra environment for every node (so for its workers too)."""
        self.root = Path(tempfile.mkdtemp(prefix="alc-", dir="/tmp"))  # short: socket paths < 107 chars
        # RAY_raylet_start_wait_time_s: on a loaded 2-core machine a joining node's registration can
        # take longer than Ray's 30 s default, and `ray start` then exits
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
                    "RAY_raylet_start_wait_time_s": "120",
                    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
        self.env.pop("RAY_ADDRESS", None)
        self.nodes: dict[str, subprocess.Popen] = {}
        self.started: dict[str, tuple] = {}  # name -> _start's arguments (a worker that fails to join is retried once)
        self.retried: set[str] = set()
        self.gcs_port, self.dash_port = free_port(), free_port()
        self.dashboard = f"http://127.0.0.1:{self.dash_port}"
        self.address = f"127.0.0.1:{self.gcs_port}"  # for ray.init / `albsent --address`

    def _start(self, name: str, args: list[str], num_cpus: int, resources: dict) -> None:
        self.started[name] = (args, num_cpus, resources)
        ports = []
        for flag in ("node-manager", "object-manager", "dashboard-agent-listen", "dashboard-agent-grpc",
                     "metrics-export", "runtime-env-agent"):
            ports += [f"--{flag}-port", str(free_port())]
        cmd = [str(BIN / "ray"), "start", "--block", *args, "--node-ip-address", "127.0.0.1",
               "--temp-dir", str(self.root / name), "--num-cpus", str(num_cpus), "--num-gpus", "0",
               "--resources", json.dumps(resources), "--object-store-memory", str(200 * 2**20),
               "--disable-usage-stats", *ports]
        log = open(self.root / f"{name}.log", "w")
        self.nodes[name] = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def start_head(self, num_cpus: int = 1, resources: dict | None = None) -> None:
        self._start("head", ["--head", "--port", str(self.gcs_port), "--dashboard-host", "127.0.0.1",
                             "--dashboard-port", str(self.dash_port), "--ray-client-server-port", str(free_port())],
                    num_cpus, resources or {})

    def add_worker(self, name: str, num_cpus: int = 1, resources: dict | None = None) -> None:
        self._start(name, ["--address", self.address], num_cpus, resources or {})

    def alive_nodes(self) -> list:
        from ray.util.state import list_nodes

        try:
            return [n for n in list_nodes(address=self.dashboard, timeout=10) if n.state == "ALIVE"]
        except Exception:  # dashboard not up yet
            return []

    def wait_nodes(self, n: int, timeout_s: float = 90) -> list:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            for name, proc in list(self.nodes.items()):
                if proc.poll() is not None and name != "head" and name not in self.retried:
                    self.retried.add(name)  # e.g. its registration timed out under load: start it again
                    self._start(name, *self.started[name])
                    continue
                assert proc.poll() is None, (
                    f"ray start for {name} exited: {(self.root / f'{name}.log').read_text()[-2000:]}")
            nodes = self.alive_nodes()
            if len(nodes) >= n:
                return nodes
            time.sleep(1)
        raise TimeoutError(f"{n} nodes not alive after {timeout_s}s")

    def kill(self, name: str) -> None:
        """Hard crash of one node: freeze its whole process tree (no new spawns), then SIGKILL it."""
        import psutil

        proc = self.nodes.pop(name)
        try:
            tree = {psutil.Process(proc.pid)}
        except psutil.NoSuchProcess:
            return
        for _ in range(5):  # re-collect until no new children appear
            new = {c for p in tree for c in _children(p)} - tree
            for p in new | tree:
                _signal(p, signal.SIGSTOP)
            if not new:
                break
            tree |= new
        for p in tree:
            _signal(p, signal.SIGKILL)
        psutil.wait_procs(list(tree), timeout=10)
        proc.wait(timeout=10)

    def shutdown(self) -> None:
        for name in [n for n in self.nodes if n != "head"] + (["head"] if "head" in self.nodes else []):
            self.kill(name)
        shutil.rmtree(self.root, ignore_errors=True)


def _children(p):
    import psutil

    try:
        return p.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _signal(p, sig) -> None:
    import psutil

    try:
        p.send_signal(sig)
    except psutil.NoSuchProcess:
        pass
