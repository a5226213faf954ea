"""A real multi-node Ray cluster on this machine (`albsent.testing.cluster.LocalCluster`: a
`ray start --head` plus worker nodes joining it, each a process of ours that teardown kills,
never `ray stop`), jobs sent with `ray job submit`, and a worker node killed while a job runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from albsent.audio.manifest import plan_inputs
from albsent.store import Store
from albsent.testing.cluster import BIN, LocalCluster

pytestmark = [pytest.mark.ray, pytest.mark.cluster, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


class JobCluster(LocalCluster):
    """Fast node-failure detection (for the node-kill test), and `ray job submit` from the repo root."""

    def __init__(self):
        super().__init__(env={"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"})

    def submit(self, *entrypoint: str, timeout_s: float = 240, wait: bool = True, submission_id: str | None = None):
        cmd = [str(BIN / "ray"), "job", "submit", "--address", self.dashboard, "--working-dir", ".",
               "--runtime-env", "cluster/runtime_env.yaml",
               *(["--submission-id", submission_id] if submission_id else []),
               "--", *entrypoint]
        if not wait:
            return subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
        return subprocess.run(cmd, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout_s)


    def job_agent_ready(self, timeout_s: float = 60) -> bool:
        """Whether the head's dashboard agent takes jobs: a no-op job, retried while Ray answers "No
        available agent" (an agent still starting; under xdist, one that lost its port to another
        worker's cluster never comes up)."""
        from ray.job_submission import JobStatus, JobSubmissionClient

        client, deadline = JobSubmissionClient(self.dashboard), time.time() + timeout_s
        while time.time() < deadline:
            try:
                sid = client.submit_job(entrypoint="true")
            except RuntimeError as exc:
                if "No available agent" not in str(exc):
                    raise
                time.sleep(2)
                continue
            while client.get_job_status(sid) not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
                time.sleep(0.5)
            return True
        return False

    def head_log(self) -> str:
        return (self.root / "head.log").read_text()


def job_result(output: str) -> dict:
    """The JSON line jobs/extract.py prints last."""
    lines = [ln for ln in output.splitlines() if ln.startswith('{"stage": ')]
    assert lines, f"no result line in job output:\n{output[-4000:]}"
    return json.loads(lines[-1])


def assert_exactly_once(manifest: Path, store_dir: Path) -> None:
    """Every input is in the store or in quarantine, exactly once."""
    store = Store(str(store_dir))
    expected = set(plan_inputs(manifest)["utterance_id"])
    rows = store.read(["id", "utterance_id"]) if store.part_files() else None
    row_ids = rows.column("id").to_pylist() if rows is not None else []
    stored = Counter(rows.column("utterance_id").to_pylist()) if rows is not None else Counter()
    quarantined = Counter(store.quarantine()["utterance_id"])
    dupes = [i for i, n in Counter(row_ids).items() if n > 1] + [i for i, n in quarantined.items() if n > 1]
    assert not dupes, f"{len(dupes)} ids written twice, e.g. {dupes[:3]}"
    assert not set(stored) & set(quarantined), "an input is both stored and quarantined"
    assert set(stored) | set(quarantined) == expected, (
        f"missing {len(expected - set(stored) - set(quarantined))} inputs")


@pytest.fixture(scope="module")
def cluster():
    """Head (1 CPU, no `cpu_node`) + two CPU workers (1 CPU and `cpu_node` each)."""
    if not (BIN / "ray").is_file():
        pytest.skip(f"no `ray` command next to {sys.executable}")
    for attempt in (1, 2):  # a second, fresh cluster when the first one's job agent never came up
        c = JobCluster()
        try:
            c.start_head(num_cpus=1, resources={"head_node": 1})
            c.wait_nodes(1)
            c.add_worker("w1", 1, {"cpu_node": 1, "w1": 1})  # w1/w2: names to find the nodes by
            c.add_worker("w2", 1, {"cpu_node": 1, "w2": 1})
            c.wait_nodes(3)
            ready = c.job_agent_ready()
            if ready or attempt == 2:
                assert ready, f"the head's job agent never accepted a job:\n{c.head_log()[-3000:]}"
                break
        except BaseException:
            c.shutdown()
            raise
        c.shutdown()
    try:
        yield c
    finally:
        c.shutdown()


def extract_job(manifest: Path, out: Path, *sets: str) -> list[str]:
    return ["python", "jobs/extract.py", "--config", "configs/jobs/extract_emodb.yaml",
            "--set", f"input={manifest}", "--set", f"out={out}", *[a for s in sets for a in ("--set", s)]]


def test_ray_job_submit_extract_on_multi_node_cluster(cluster, corpus, tmp_path):
    out = tmp_path / "store"
    proc = cluster.submit(*extract_job(corpus, out))
    assert proc.returncode == 0 and "succeeded" in proc.stdout + proc.stderr, proc.stdout[-4000:] + proc.stderr[-2000:]
    result = job_result(proc.stdout)
    assert result["inputs"] == 24 and result["stored"] == 24 and result["quarantined"] == 0
    assert_exactly_once(corpus, out)
    table = Store(str(out)).read(["mfcc_mean", "label"])
    assert table.num_rows == 24 and Store(str(out)).meta["config"]["features"] == ["mfcc", "shortterm"]
    # The `cpu_node` label kept every extraction task off the head, although it has a free CPU.
    from ray.util.state import list_tasks

    tasks = list_tasks(address=cluster.dashboard, filters=[("name", "=", "MapBatches(run_block)")], limit=1000)
    labelled = {n.node_id for n in cluster.alive_nodes() if n.resources_total.get("cpu_node")}
    assert tasks and {t.node_id for t in tasks} <= labelled
    # Resubmitting the same job resumes: nothing left to do.
    again = job_result(cluster.submit(*extract_job(corpus, out)).stdout)
    assert again["skipped"] == 24 and again["stored"] == 0


def test_sweep_driver_killed_then_resubmitted_resumes(cluster, store, tmp_path):
    """SIGKILL the sweep job's driver once some trials finished; resubmitting the same job resumes
    from SWEEP_DIR: every trial exactly once, finished trials not trained again."""
    import pandas as pd
    from ray.job_submission import JobSubmissionClient

    n, out = 4, tmp_path / "sweep"
    entry = ["python", "jobs/sweep.py", "--config", "configs/sweeps/smoke.yaml", "--set", f"store={store}",
             "--set", f"out={out}", "--set", f"num_samples={n}"]
    first = cluster.submit(*entry, wait=False, submission_id=f"sweep-{os.getpid()}-1")
    client = JobSubmissionClient(cluster.dashboard)
    deadline = time.time() + 150
    while not list(out.glob("trials/*/result.json")):
        assert first.poll() is None, f"sweep job ended before the kill:\n{first.stdout.read()[-3000:]}"
        assert time.time() < deadline, "no trial finished in 150 s"
        time.sleep(0.2)
    driver = client.get_job_info(f"sweep-{os.getpid()}-1").driver_info
    os.kill(int(driver.pid), signal.SIGKILL)  # the driver runs on our head node: a process of ours
    output, _ = first.communicate(timeout=60)
    assert client.get_job_status(f"sweep-{os.getpid()}-1").value == "FAILED", output[-3000:]
    before = {p.parent.name for p in out.glob("trials/*/result.json")}
    assert 1 <= len(before) < n and not (out / "sweep.json").exists()

    second = cluster.submit(*entry, submission_id=f"sweep-{os.getpid()}-2")
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-2000:]
    result = job_result(second.stdout)
    assert result["stage"] == "sweep" and result["resumed"] is True and result["num_trials"] == n
    table = pd.read_csv(out / "trials.csv")
    assert len(table) == n and table["trial_id"].is_unique and (table["state"] != "failed").all()
    assert (table[table["trial_id"].isin(before)]["fits"] == 1).all(), "a finished trial was trained again"


def test_worker_node_killed_mid_extraction(cluster, tmp_path):
    from albsent.testing.synth import make_corpus

    manifest = make_corpus(tmp_path / "big", n_per_class=25, speakers=2, duration_s=(0.4, 0.6), seed=3)  # 150 clips
    out = tmp_path / "store"
    job = cluster.submit(*extract_job(manifest, out, "batch_size=4", "sequences=false"), wait=False)
    deadline = time.time() + 120
    while len(list(out.glob("part-*.parquet"))) < 3:  # extraction is under way on both workers
        assert job.poll() is None, f"job ended before the kill:\n{job.stdout.read()[-3000:]}"
        assert time.time() < deadline, "no parts written in 120 s"
        time.sleep(0.2)
    parts_at_kill = len(list(out.glob("part-*.parquet")))
    (killed,) = [n.node_id for n in cluster.alive_nodes() if n.resources_total.get("w2")]
    cluster.kill("w2")
    output, _ = job.communicate(timeout=240)
    attempts = 1
    if job.returncode != 0 or "succeeded" not in output:  # the job died with the node: a rerun resumes
        rerun = cluster.submit(*extract_job(manifest, out, "batch_size=4", "sequences=false"))
        output, attempts = rerun.stdout, 2
        assert rerun.returncode == 0, output[-4000:]
    result = job_result(output)
    assert parts_at_kill < 38, "the job was nearly done before the node died"
    assert_exactly_once(manifest, out)
    from ray.util.state import list_tasks

    tasks = list_tasks(address=cluster.dashboard, filters=[("name", "=", "MapBatches(run_block)")], limit=1000)
    assert any(t.node_id == killed for t in tasks), "the killed node never ran an extraction task"
    print(f"worker killed after {parts_at_kill}/38 parts; finished in {attempts} submission(s): {result}")


def test_worker_node_killed_mid_ssl_extraction_staged(cluster, tiny, tmp_path):
    """The staged model pipeline (decode tasks -> model actor -> write tasks) over both worker
    nodes: one node dies mid-run; every input still ends up stored or quarantined exactly once."""
    from albsent.testing.synth import make_corpus

    if "w2" not in cluster.nodes:  # killed by the test before
        cluster.add_worker("w2", 1, {"cpu_node": 1, "w2": 1})
    # a third CPU node, so that after the kill the survivors can still hold the model actor, a
    # decode task and a write task at once (each stage needs its own CPU slot)
    cluster.add_worker("w3", 2, {"cpu_node": 1})
    cluster.wait_nodes(4)
    manifest = make_corpus(tmp_path / "ssl", n_per_class=20, speakers=2, duration_s=(0.4, 0.6), seed=4)  # 120 clips
    out = tmp_path / "store"
    args = ("batch_size=4", "sequences=false", "features=[ssl]", f"ssl.models=[{tiny['hubert']}]", "ssl.device=cpu",
            "model_pipeline=staged")
    job = cluster.submit(*extract_job(manifest, out, *args), wait=False)
    deadline = time.time() + 150
    while len(list(out.glob("part-*.parquet"))) < 3:
        assert job.poll() is None, f"job ended before the kill:\n{job.stdout.read()[-3000:]}"
        assert time.time() < deadline, "no parts written in 150 s"
        time.sleep(0.2)
    parts_at_kill = len(list(out.glob("part-*.parquet")))
    cluster.kill("w2")
    output, _ = job.communicate(timeout=300)
    if job.returncode != 0 or "succeeded" not in output:  # the job died with the node: a rerun resumes
        rerun = cluster.submit(*extract_job(manifest, out, *args))
        output = rerun.stdout
        assert rerun.returncode == 0, output[-4000:]
    assert parts_at_kill < 30, "the job was nearly done before the node died"
    assert_exactly_once(manifest, out)
