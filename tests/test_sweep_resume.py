"""Kill the sweep driver (SIGKILL to its process group) once some but not all trials have
finished, then `--resume`: every trial appears exactly once, finished trials are not trained
again (SWEEP_DIR/trials/ID/fit-N markers count real trainings) and the Optuna study in
SWEEP_DIR/optuna.db (the default storage) continues."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "sweeps" / "smoke.yaml"
N = 4


def _finished(out: Path) -> set[str]:
    return {p.parent.name for p in out.glob("trials/*/result.json")}


def _kill_leftovers(marker: str) -> None:
    """Ray processes of the killed driver's own cluster (their command lines name its temp dir)."""
    ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    for line in ps.splitlines():
        pid, _, args = line.strip().partition(" ")
        if marker in args and int(pid) != os.getpid():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.ray
@pytest.mark.slow
def test_resume_after_killing_the_driver(store, ray_local, tmp_path):
    from albsent.sweep import run_sweep

    out = tmp_path / "sweep"
    ray_tmp = tempfile.mkdtemp(prefix="albsw-")  # short: Ray's socket paths have a length limit
    env = dict(os.environ, RAY_TMPDIR=ray_tmp, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    cmd = [sys.executable, "-m", "albsent.cli", "-q", "sweep", "--config", str(SMOKE), "--store", str(store),
           "--out", str(out), "--num-cpus", "2", "--set", f"num_samples={N}", "--set", "retrain=false"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None and not _finished(out):
            time.sleep(0.2)
        assert proc.poll() is None, f"the sweep ended before it could be killed: {proc.stderr.read()[-2000:]}"
        assert _finished(out), "no trial finished in time"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(1)
        _kill_leftovers(ray_tmp)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    before = _finished(out)
    assert 1 <= len(before) < N
    import optuna

    # while the sweep ran, its trials were already in SWEEP_DIR/optuna.db (what optuna-dashboard shows live)
    live = optuna.load_study(study_name="smoke", storage=f"sqlite:///{out / 'optuna.db'}")
    assert len(live.trials) >= len(before)
    assert not (out / "sweep.json").exists()

    summary = run_sweep(None, None, str(out), resume=True)  # config and store come from SWEEP_DIR/sweep.yaml

    table = pd.read_csv(out / "trials.csv")
    assert len(table) == N and table["trial_id"].is_unique  # each trial counted once
    assert summary["num_trials"] == N and (table["state"] != "failed").all()
    done_before = table[table["trial_id"].isin(before)]
    assert len(done_before) == len(before)
    assert (done_before["fits"] == 1).all()  # finished trials were not trained again
    assert (table["fits"] >= 1).all() and summary["best"] is not None and summary["final"] is None
    # the persistent Optuna study survived the crash and reads cleanly with Optuna's own tools
    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{out / 'optuna.db'}")
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") >= N and "RUNNING" not in states
    done = [t.value for t in study.trials if t.state.name == "COMPLETE"]  # every trial's value is in the same study
    assert all(any(v == pytest.approx(d) for d in done) for v in table["val_macro_f1"])
