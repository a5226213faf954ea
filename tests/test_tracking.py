"""MLflow tracking (albsent.tracking) against a real MLflow: a SQLite store in a temp folder for
one-recipe and K-fold training, and an `mlflow server` on 127.0.0.1 for the automatic selection
(a parent run, a child per outer fold) and a sweep (a child per trial, once, also after a resume).
Without a tracking URI nothing is logged and mlflow is not even imported (a fresh process)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

mlflow = pytest.importorskip("mlflow")  # the optional extra albsent[tracking]; .ci/setup installs it

from mlflow import MlflowClient  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "sweeps" / "smoke.yaml"


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for a in client.list_artifacts(run_id, path):
        out |= _artifacts(client, run_id, a.path) if a.is_dir else {a.path}
    return out


def _runs(client: MlflowClient, experiment: str, query: str = "") -> list:
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r}"
    return client.search_runs([exp.experiment_id], query, max_results=1000)


@pytest.mark.ray
@pytest.mark.slow
def test_without_a_uri_nothing_is_logged_and_mlflow_is_not_imported(store, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    code = ("import sys; from albsent.cli import main; "
            f"rc = main(['-q', 'train', '--store', {str(store)!r}, '--features', 'mfcc', '--model', 'sklearn_logreg', "
            f"'--split', 'utterance', '--out', {str(tmp_path / 'run')!r}]); "
            "assert rc == 0, rc; assert 'mlflow' not in sys.modules, 'mlflow was imported'; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
    assert (tmp_path / "run" / "metrics.json").is_file()
    assert not (tmp_path / "mlruns").exists() and not list(tmp_path.glob("*.db"))


def test_an_unusable_tracking_store_is_refused_before_training(tmp_path, capsys):
    from albsent.cli import main

    (tmp_path / "file").write_text("not a folder")
    uri = f"sqlite:///{tmp_path / 'file' / 'mlflow.db'}"
    run = tmp_path / "run"
    assert main(["train", "--store", str(tmp_path / "no-store"), "--features", "mfcc", "--model", "mlp",
                 "--out", str(run), "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert f"MLflow tracking store {uri} cannot be used" in err and "Traceback" not in err
    assert not run.exists()  # checked before the run folder is made or any training


@pytest.mark.ray
@pytest.mark.slow
def test_train_one_split_and_folds_log_to_a_sqlite_store(store, tmp_path, capsys, monkeypatch):
    from albsent.cli import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = tmp_path / "mlp"
    assert main(["-q", "train", "--store", str(store), "--features", "mfcc", "--model", "mlp", "--epochs", "3",
                 "--split", "utterance", "--out", str(run), "--tracking-uri", uri]) == 0
    # --folds with the tracking URI and experiment from the config file's `tracking:` section
    config = tmp_path / "folds.yaml"
    config.write_text(yaml.safe_dump({"store": str(store), "features": "mfcc+shortterm", "model": "mlp", "epochs": 2,
                                      "split": {"folds": 2, "group_by": "utterance"},
                                      "tracking": {"uri": uri, "experiment": "cv"}}))
    assert main(["-q", "train", "--config", str(config), "--out", str(tmp_path / "cv")]) == 0
    capsys.readouterr()

    client = MlflowClient(uri)
    [one] = _runs(client, store.name)  # experiment named after the store's folder
    metrics = json.loads((run / "metrics.json").read_text())
    p, m = one.data.params, one.data.metrics
    assert p["model"] == "mlp" and p["features"] == "mfcc" and p["epochs"] == "3" and p["split.folds"] == "1"
    store_hash = json.loads((store / "_albsent.json").read_text())["config_hash"]
    assert p["store.config_hash"] == store_hash and len(p.get("git_commit", "x" * 40)) == 40
    assert m["macro_f1"] == pytest.approx(metrics["macro_f1"]) and m["accuracy"] == pytest.approx(metrics["accuracy"])
    assert m["balanced_accuracy"] == pytest.approx(metrics["balanced_accuracy"])
    for label, row in metrics["per_class"].items():
        assert m[f"class/{label}/f1"] == pytest.approx(row["f1"])
    curve = client.get_metric_history(one.info.run_id, "train_loss")
    assert [c.step for c in curve] == [r["epoch"] for r in metrics["history"]]
    assert [c.value for c in curve] == pytest.approx([r["train_loss"] for r in metrics["history"]])
    assert {"metrics.json", "confusion_matrix.png", "loss_curve.png", "config.yaml", "model.safetensors",
            "model.json", "predictions.csv"} <= _artifacts(client, one.info.run_id)
    assert one.info.artifact_uri.startswith((tmp_path / "mlartifacts").as_uri())  # beside the database

    [cv] = _runs(client, "cv")
    cvm = json.loads((tmp_path / "cv" / "metrics.json").read_text())
    m = cv.data.metrics
    assert cv.data.params["split.folds"] == "2" and cv.data.params["features"] == "mfcc+shortterm"
    assert m["pooled/macro_f1"] == pytest.approx(cvm["pooled"]["macro_f1"])
    assert m["macro_f1_std"] == pytest.approx(cvm["macro_f1_std"])
    for k in (1, 2):
        assert m[f"fold_{k}/macro_f1"] == pytest.approx(cvm["per_fold"][k - 1]["macro_f1"])
        assert len(client.get_metric_history(cv.info.run_id, f"fold_{k}/val_loss")) >= 1
    assert {"metrics.json", "confusion_matrix.png", "loss_curve.png", "fold-1/model.safetensors",
            "fold-2/model.safetensors"} <= _artifacts(client, cv.info.run_id)

    # the README's `mlflow ui --backend-store-uri sqlite:///mlflow.db` serves these runs (here on a free port)
    port = _free_port()
    with serving([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--port", str(port)],
                 f"http://127.0.0.1:{port}/health", tmp_path):
        served = MlflowClient(f"http://127.0.0.1:{port}")
        assert served.get_run(one.info.run_id).data.params["model"] == "mlp"
        assert {r.info.run_id for r in _runs(served, "cv")} == {cv.info.run_id}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(cmd: list[str], health: str, folder: Path):
    """Run a server (its own process group, stopped at the end) until GET `health` answers 200."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    log = open(folder / f"server-{time.monotonic_ns()}.log", "w")
    proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 180
        while True:
            try:
                with urllib.request.urlopen(health, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.time() < deadline, Path(log.name).read_text()[-2000:]
            time.sleep(0.5)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture
def mlflow_server(tmp_path):
    """`mlflow server` on 127.0.0.1 (a free port), SQLite-backed, serving artifacts from a temp folder."""
    port = _free_port()
    with serving([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                  "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                  "--artifacts-destination", str(tmp_path / "server-artifacts")],
                 f"http://127.0.0.1:{port}/health", tmp_path):
        yield f"http://127.0.0.1:{port}"


@pytest.mark.ray
@pytest.mark.slow
def test_auto_and_sweep_log_to_an_mlflow_server(store, ray_local, tmp_path, mlflow_server, monkeypatch):
    import optuna

    from albsent.app.run_auto import run_auto
    from albsent.app.run_sweep import sweep
    from albsent.sweep import load_sweep
    from albsent.tracking import resolve
    from albsent.train.select import AutoConfig

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)  # the environment variable alone turns tracking on
    tracking = resolve()
    assert tracking is not None and tracking.uri == mlflow_server
    client = MlflowClient(mlflow_server)

    # auto: one parent run, a child per outer fold with its chosen ensemble
    config = AutoConfig(store=str(store), folds=2, inner_folds=2, group_by="utterance", models=["sklearn_logreg"],
                        C={"sklearn_logreg": [0.1, 1.0]})
    metrics = run_auto(config, tmp_path / "auto", tracking=tracking)
    runs = _runs(client, store.name)
    [parent] = [r for r in runs if r.data.tags["albsent.kind"] == "auto"]
    children = sorted((r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id),
                      key=lambda r: r.data.params["outer_fold"])
    assert len(children) == metrics["outer_folds"] == 2
    assert parent.data.metrics["pooled/macro_f1"] == pytest.approx(metrics["pooled"]["macro_f1"])
    assert {"selection.csv", "metrics.json", "confusion_matrix.png", "ensemble.json",
            "members/1/model.safetensors"} <= _artifacts(client, parent.info.run_id)
    for k, child in enumerate(children, start=1):
        chosen = metrics["selection"][str(k)]
        assert child.data.metrics["macro_f1"] == pytest.approx(metrics["per_fold"][k - 1]["macro_f1"])
        assert chosen["members"][0]["recipe"] in child.data.params["ensemble"]
        assert "ensemble.json" in _artifacts(client, child.info.run_id)

    # a sweep: its run, a child per trial (params, final metrics, per-iteration curves)
    out = tmp_path / "sweep"
    sweep_config = load_sweep(SMOKE, ["num_samples=3", "retrain=false"])
    summary = sweep(sweep_config, str(store), str(out), tracking=tracking)
    [srun] = _runs(client, store.name, "tags.`albsent.kind` = 'sweep'")
    trials = _runs(client, store.name, f"tags.`mlflow.parentRunId` = '{srun.info.run_id}'")
    table = {r["trial_id"]: r for r in pd.read_csv(out / "trials.csv").to_dict("records")}
    assert len(trials) == summary["num_trials"] == 3
    for t in trials:
        row = table[t.data.tags["albsent.trial_id"]]
        assert t.data.params["model"] == row["model"] and t.data.params["features"] == row["features"]
        assert t.data.metrics["val_macro_f1"] == pytest.approx(row["val_macro_f1"])
        assert len(client.get_metric_history(t.info.run_id, "val_macro_f1")) == row["training_iteration"]
    assert srun.data.metrics["best_val_macro_f1"] == pytest.approx(summary["best"]["value"])
    logged = _artifacts(client, srun.info.run_id)
    assert {"trials.csv", "sweep.json", "best_config.yaml", "optuna.db"} <= logged
    assert not any(p.startswith(("tune/", "trials/")) for p in logged)  # not Ray Tune's state

    # resumed: the same sweep run, no trial logged twice; the Optuna study (SWEEP_DIR/optuna.db) keeps the trials
    again = sweep(None, None, str(out), resume=True, tracking=tracking)
    assert again["num_trials"] == 3
    assert [r.info.run_id for r in _runs(client, store.name, "tags.`albsent.kind` = 'sweep'")] == [srun.info.run_id]
    assert len(_runs(client, store.name, f"tags.`mlflow.parentRunId` = '{srun.info.run_id}'")) == 3
    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{out / 'optuna.db'}")
    values = sorted(t.value for t in study.trials if t.state.name == "COMPLETE")
    assert values == pytest.approx(sorted(r["val_macro_f1"] for r in table.values()))
    # the README's `optuna-dashboard sqlite:///SWEEP_DIR/optuna.db` lists the study and its trials
    port = _free_port()
    dashboard = str(Path(sys.executable).parent / "optuna-dashboard")
    with serving([dashboard, f"sqlite:///{out / 'optuna.db'}", "--host", "127.0.0.1", "--port", str(port)],
                 f"http://127.0.0.1:{port}/api/studies", tmp_path):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=30) as r:
            [listed] = json.load(r)["study_summaries"]
        assert listed["study_name"] == "smoke"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{listed['study_id']}", timeout=30) as r:
            shown = json.load(r)["trials"]
        assert sorted(t["values"][0] for t in shown if t["state"] == "Complete") == pytest.approx(values)


@pytest.mark.ray
def test_pretrain_and_probe_log_to_a_sqlite_store(store, tmp_path, capsys, monkeypatch):
    from albsent.cli import main

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    ae, run = tmp_path / "ae", tmp_path / "probe"
    assert main(["pretrain", "--config", str(ROOT / "configs/smoke/pretrain.yaml"), "--store", str(store),
                 "--out", str(ae), "-q"]) == 0
    assert main(["probe", "--pretrained", str(ae), "--store", str(store), "--folds", "2", "--set",
                 "probe.iterations=30", "--out", str(run), "--experiment", "probes", "-q"]) == 0
    capsys.readouterr()
    client = MlflowClient(uri)
    [pre] = _runs(client, store.name)
    assert pre.data.tags["albsent.kind"] == "pretrain" and pre.data.params["model.name"] == "mlstm"
    assert pre.data.params["features"] == "mfcc:seq" and pre.data.params["iterations"] == "40"
    history = json.loads((ae / "model.json").read_text())["history"]
    curve = client.get_metric_history(pre.info.run_id, "val_loss")
    assert [c.step for c in curve] == [20, 40]  # val_every 20 of 40 iterations
    assert [c.value for c in curve] == pytest.approx([r["val_loss"] for r in history])
    final = json.loads((ae / "model.json").read_text())["metrics"]
    assert pre.data.metrics["final/val_loss"] == pytest.approx(final["val_loss"])
    assert pre.data.metrics["val_mean_baseline"] == pytest.approx(history[-1]["val_mean_baseline"])
    assert {"model.safetensors", "model.json", "loss_curve.png", "config.yaml"} <= _artifacts(client, pre.info.run_id)

    [probe] = _runs(client, "probes")
    metrics = json.loads((run / "metrics.json").read_text())
    assert probe.data.params["pretrained"] == str(ae) and probe.data.params["folds"] == "2"
    assert probe.data.metrics["macro_f1"] == pytest.approx(metrics["macro_f1"])
    assert probe.data.metrics["baseline/macro_f1"] == pytest.approx(metrics["baseline"]["macro_f1"])
    assert {"metrics.json", "config.yaml"} <= _artifacts(client, probe.info.run_id)
