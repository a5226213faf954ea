"""jobs/*.py: a job YAML is a stage config (usually `extends:` an experiment config) plus the job
keys albsent.registry gives the stage; each job calls the function its `albsent` command calls and
gets the same result. (`ray job submit` on a real multi-node cluster: tests/test_cluster.py.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from albsent.cli import build_parser, main
from albsent.config import load, to_dict
from albsent.errors import ConfigError
from albsent.pipeline.execute import block_sizes
from albsent.registry import JOBS
from albsent.train.select import AutoConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "jobs"))  # as `python jobs/X.py` has it

import _job  # noqa: E402

JOB_YAMLS = sorted((ROOT / "configs" / "jobs").glob("*.yaml"))


def run_job(stage: str, argv: list[str]) -> int:
    """`python jobs/STAGE.py ARGV`, in this process (Ray already initialised is reused)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"job_{stage}", ROOT / "jobs" / f"{stage}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cli(argv)


def write(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def same_metrics(a: Path, b: Path, ignore: tuple[str, ...] = ()) -> None:
    """Two metrics.json files hold the same values, to the last digit (`ignore`: wall-clock keys)."""
    ma, mb = (json.loads(p.read_text()) for p in (a, b))
    for key in ignore:
        ma.pop(key, None), mb.pop(key, None)
    assert ma == mb


# ---- job YAMLs -----------------------------------------------------------------------------------

def test_job_yaml_splits_paths_from_the_stage_config(tmp_path):
    from albsent.features.config import ExtractConfig

    cfg = write(tmp_path, {"input": "/data/m.csv", "out": "/stores/a", "batch_size": 8, "mfcc": {"n_mfcc": 13}})
    keys, config = _job.load_job("extract", ["--config", cfg, "--set", "out=s3://bucket/b", "--set", "batch_size=4"])
    assert keys == {"input": "/data/m.csv", "out": "s3://bucket/b", "retry_quarantined": False}
    assert isinstance(config, ExtractConfig) and config.batch_size == 4 and config.mfcc.n_mfcc == 13
    # Without a file, everything can come from --set.
    keys, config = _job.load_job("extract", ["--set", "input=x.csv", "--set", "out=y", "--set", "features=mfcc",
                                             "--set", "retry_quarantined=true"])
    assert keys == {"input": "x.csv", "out": "y", "retry_quarantined": True} and config.features == ["mfcc"]


def test_tracking_comes_from_the_job_yaml_else_the_environment(tmp_path, monkeypatch):
    from albsent.errors import ConfigError
    from albsent.tracking import Tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = write(tmp_path, {"out": "runs/r", "model": "mlp", "tracking": {"uri": "sqlite:///m.db", "experiment": "e"}})
    keys, config = _job.load_job("train", ["--config", cfg])
    assert keys["tracking"] == Tracking("sqlite:///m.db", "e") and config.model == "mlp"
    assert _job.load_job("train", ["--set", "out=r"])[0]["tracking"] is None  # nothing anywhere: not tracked
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert _job.load_job("train", ["--set", "out=r"])[0]["tracking"] == Tracking("http://127.0.0.1:5000")
    with pytest.raises(ConfigError, match="tracking: expected a mapping with keys uri, experiment"):
        _job.load_job("train", ["--set", "out=r", "--set", "tracking.url=x"])


def test_job_errors_name_the_key(tmp_path, capsys):
    with pytest.raises(ConfigError, match="needs out"):
        _job.load_job("extract", ["--set", "input=x.csv"])
    with pytest.raises(ConfigError, match="'overwrite' parameter of jobs/train.py must be true or false. Got 1 "):
        _job.load_job("train", ["--set", "out=r", "--set", "overwrite=1"])
    cfg = write(tmp_path, {"input": "x.csv", "out": "y", "batchsize": 8})
    with pytest.raises(ConfigError, match="unknown config key.*batchsize.*valid keys.*batch_size"):
        _job.load_job("extract", ["--config", cfg])
    # As a process: one line on stderr, exit status 2 (so `ray job submit` reports FAILED).
    assert run_job("extract", ["--config", cfg]) == 2
    assert "jobs/extract.py: error: unknown config key(s) batchsize" in capsys.readouterr().err


@pytest.mark.parametrize("path", JOB_YAMLS, ids=lambda p: p.name)
def test_every_job_yaml_loads(path):
    """Through jobs/_job.py as `python jobs/STAGE.py --config FILE` reads it (every `extends:` resolved)."""
    stage = path.stem.split("_")[0]
    assert stage in JOBS
    keys, config = (_job.read_job if stage == "probe" else _job.load_job)(stage, ["--config", str(path)])
    tracking = {"tracking"} if JOBS[stage].tracked else set()  # None: no URI in the YAML or the environment
    assert set(JOBS[stage].paths) | set(JOBS[stage].flags) | tracking == set(keys)
    assert all(keys[k] for k in JOBS[stage].paths)
    assert "extends" not in (config if stage == "probe" else to_dict(config))
    if stage == "sweep":
        config.base_dict()  # the TrainConfig / PretrainConfig every trial starts from builds too


def cli_config(argv: list[str]):
    """The config `albsent ARGV` builds, through its own parser and flag mapping."""
    from albsent.commands import pretrain, sweep, train
    from albsent.pretrain.config import PretrainConfig
    from albsent.sweep import load_sweep
    from albsent.train.config import TrainConfig

    args = build_parser().parse_args(argv)
    if args.command == "train":
        return load(TrainConfig, args.config, args.sets, train.flags_to_config(args))
    if args.command == "pretrain":
        return load(PretrainConfig, args.config, args.sets, pretrain.flags_to_config(args))
    assert args.command == "sweep" and sweep
    extra = {"num_samples": args.num_samples, "max_concurrent": args.max_concurrent}
    return load_sweep(args.config, args.sets, extra)


@pytest.mark.parametrize("job, command", [
    ("train_emodb_mfcc_mlp", "train --config configs/paper/mfcc_mlp128.yaml --store /mnt/albsent/stores/emodb "
                             "--folds 5 --out /mnt/albsent/runs/emodb/mfcc_mlp128"),
    ("pretrain_unlabeled_mlstm", "pretrain --config configs/latent/mlstm.yaml --store s3://albsent-stores/"
                                 "unlabeled-mfcc-v1 --out /mnt/albsent/runs/latent/mlstm-unlabeled"),
    ("sweep_emodb_classifier", "sweep --config configs/sweeps/emodb_models.yaml --store /mnt/albsent/stores/emodb "
                               "--out s3://albsent-runs/sweeps/emodb-classifier-v1 --num-samples 64 "
                               "--max-concurrent 16 --set name=emodb-classifier --set resources.cpu=2 "
                               "--set max_failures=2"),
])
def test_job_yaml_is_the_experiment_it_extends(job, command, monkeypatch):
    """A job YAML refers to its experiment config: it builds exactly the config of the `albsent`
    command that runs that experiment with the job's paths and sizes."""
    monkeypatch.chdir(ROOT)
    stage = job.split("_")[0]
    keys, config = _job.load_job(stage, ["--config", f"configs/jobs/{job}.yaml"])
    argv = command.split()
    assert to_dict(config) == to_dict(cli_config(argv))
    assert keys["out"] == argv[argv.index("--out") + 1]
    assert keys.get("store", config.store if stage == "train" else None) == argv[argv.index("--store") + 1]


# ---- each job = its command ------------------------------------------------------------------------

@pytest.mark.ray
@pytest.mark.slow
def test_extract_job_retries_quarantined_inputs_when_asked(ray_local, corpus, tmp_path, capsys):
    import pandas as pd

    (tmp_path / "bad.wav").write_bytes(b"not audio")
    m = pd.read_csv(corpus).iloc[:3]
    m["path"] = [str((corpus.parent / p).resolve()) for p in m["path"]]
    pd.concat([m, pd.DataFrame([{"path": "bad.wav", "label": "neutral", "speaker": "s0"}])]).to_csv(
        tmp_path / "m.csv", index=False)
    job = ["--set", f"input={tmp_path / 'm.csv'}", "--set", f"out={tmp_path / 's'}", "--set", "features=[mfcc]",
           "--set", f"allowed_roots=[{corpus.parent}]"]
    assert run_job("extract", job) == 0
    assert (r := last_json(capsys))["stored"] == 3 and r["quarantined"] == 1
    assert run_job("extract", job) == 0 and last_json(capsys)["retried"] == 0
    assert run_job("extract", job + ["--set", "retry_quarantined=true"]) == 0
    assert (r := last_json(capsys))["retried"] == 1 and r["quarantined"] == 1 and r["skipped"] == 3


@pytest.mark.ray
@pytest.mark.slow
def test_extract_job_builds_the_same_store_as_the_cli(ray_local, corpus, tmp_path, capsys):
    from albsent.store import Store

    out = tmp_path / "store"
    cfg = write(tmp_path, {"input": str(corpus), "out": str(out), "features": ["mfcc", "shortterm"], "batch_size": 8})
    assert run_job("extract", ["--config", cfg]) == 0
    result = last_json(capsys)
    assert result["stage"] == "extract" and result["inputs"] == 24 and result["stored"] == 24
    store = Store(str(out))
    assert store.num_rows() == 24 and len(store.part_files()) == len(block_sizes(24, 8, 2))  # one part per block
    # The CLI with the same settings accepts the job's store (same config hash) and finds nothing to do.
    assert main(["extract", str(corpus), "--out", str(out), "--set", "batch_size=8", "--json", "-q"]) == 0
    assert last_json(capsys)["skipped"] == 24
    # A different stored config is refused by the job exactly as by the CLI.
    assert run_job("extract", ["--config", cfg, "--set", "mfcc.n_mfcc=13"]) == 2
    assert "made with a different config" in capsys.readouterr().err


@pytest.mark.ray
def test_train_job_equals_albsent_train(store, tmp_path, capsys):
    """Same config file, same store, same seed: the job's printed result, metrics.json and model
    equal `albsent train --json`'s to the last digit; a used run folder is refused as by the CLI."""
    smoke = str(ROOT / "configs/smoke/train.yaml")
    cli_run, job_run = tmp_path / "cli", tmp_path / "job"
    assert main(["train", "--config", smoke, "--store", str(store), "--split", "utterance", "--out", str(cli_run),
                 "--json", "-q"]) == 0  # 2 speakers: too few for a train/val/test split by speaker
    printed = json.loads(capsys.readouterr().out)
    job = ["--config", smoke, "--set", f"store={store}", "--set", "split.group_by=utterance", "--set", f"out={job_run}"]
    assert run_job("train", job) == 0
    result = last_json(capsys)
    assert result.pop("stage") == "train" and result.pop("out") == str(job_run) and result == printed
    same_metrics(cli_run / "metrics.json", job_run / "metrics.json")
    assert (cli_run / "model.safetensors").read_bytes() == (job_run / "model.safetensors").read_bytes()

    assert run_job("train", job) == 2  # the run folder holds a run now
    assert f"{job_run} already holds files; choose another out or pass --set overwrite=true" in capsys.readouterr().err
    assert main(["train", "--config", smoke, "--store", str(store), "--out", str(cli_run), "-q"]) == 2
    assert "already holds files; choose another --out or pass --overwrite" in capsys.readouterr().err
    (job_run / "stale.txt").write_text("from an earlier run")
    assert run_job("train", [*job, "--set", "overwrite=true"]) == 0
    assert last_json(capsys)["macro_f1"] == printed["macro_f1"] and not (job_run / "stale.txt").exists()


@pytest.mark.ray
@pytest.mark.slow
def test_auto_train_job_equals_albsent_train_auto(store, tmp_path, capsys):
    """`auto:` in a train job runs the automatic selection as `albsent train --auto --config` does
    with the same AutoConfig keys: the same printed result and metrics.json; a TrainConfig key
    beside `auto` is refused (it would be ignored)."""
    auto = {"folds": 2, "inner_folds": 2, "features": ["mfcc"], "models": ["sklearn_logreg"],
            "C": {"sklearn_logreg": [1.0]}, "speaker_norm": [False]}
    (tmp_path / "auto.yaml").write_text(yaml.safe_dump(auto))
    cli_run, job_run = tmp_path / "cli", tmp_path / "job"
    assert main(["train", "--auto", "--config", str(tmp_path / "auto.yaml"), "--store", str(store), "--out",
                 str(cli_run), "--json", "-q"]) == 0
    printed = json.loads(capsys.readouterr().out)
    cfg = write(tmp_path, {"store": str(store), "out": str(job_run), "auto": auto})
    assert run_job("train", ["--config", cfg]) == 0
    result = last_json(capsys)
    assert result.pop("stage") == "train" and result.pop("out") == str(job_run)
    assert result.pop("seconds") > 0 and result == {k: v for k, v in printed.items() if k != "seconds"}
    assert result["folds"] == 2 and result["candidates"] == 1 and (job_run / "ensemble.json").is_file()
    same_metrics(cli_run / "metrics.json", job_run / "metrics.json", ignore=("seconds",))

    assert run_job("train", ["--config", cfg, "--set", "overwrite=true", "--set", "model=mlp"]) == 2
    assert "jobs/train.py with `auto` takes its settings under `auto:`" in capsys.readouterr().err
    keys, config = _job.load_job("train", ["--set", f"store={store}", "--set", "out=r", "--set", "auto=true"])
    assert keys["auto"] is True and to_dict(config) == to_dict(load(AutoConfig, None, [], {"store": str(store)}))


@pytest.mark.ray
def test_pretrain_and_probe_jobs_equal_the_cli(store, tmp_path, capsys):
    """pretrain, then probe: job and CLI on the same store and seed give the same metrics; the probe
    job resolves its settings as `albsent probe` does (AE_RUN's probe section, then its keys)."""
    smoke = str(ROOT / "configs/smoke/pretrain.yaml")
    ae_cli, ae_job = tmp_path / "ae_cli", tmp_path / "ae_job"
    assert main(["pretrain", "--config", smoke, "--store", str(store), "--out", str(ae_cli), "--json", "-q"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert run_job("pretrain", ["--config", smoke, "--set", f"store={store}", "--set", f"out={ae_job}"]) == 0
    result = last_json(capsys)
    assert result.pop("stage") == "pretrain" and result.pop("out") == str(ae_job)
    assert {k: v for k, v in result.items() if k != "seconds"} == {k: v for k, v in printed.items() if k != "seconds"}
    assert (ae_cli / "model.safetensors").read_bytes() == (ae_job / "model.safetensors").read_bytes()

    probe_cli, probe_job = tmp_path / "probe_cli", tmp_path / "probe_job"
    assert main(["probe", "--pretrained", str(ae_cli), "--store", str(store), "--out", str(probe_cli),
                 "--iterations", "20", "--json", "-q"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert run_job("probe", ["--set", f"pretrained={ae_cli}", "--set", f"store={store}", "--set", f"out={probe_job}",
                             "--set", "iterations=20"]) == 0
    result = last_json(capsys)
    assert result.pop("stage") == "probe" and result.pop("out") == str(probe_job)
    assert result.pop("seconds") > 0 and result == {k: v for k, v in printed.items() if k != "seconds"}
    same_metrics(probe_cli / "metrics.json", probe_job / "metrics.json", ignore=("seconds",))
    # AE_RUN's saved probe section (folds: 2) applied under the job's keys (iterations: 20), as in the CLI.
    resolved = yaml.safe_load((probe_job / "config.yaml").read_text())
    assert resolved == yaml.safe_load((probe_cli / "config.yaml").read_text())
    assert resolved["folds"] == 2 and resolved["iterations"] == 20


@pytest.mark.ray
@pytest.mark.slow
def test_sweep_job_and_cli_resume_by_the_same_rule(store, ray_local, tmp_path, capsys):
    """A SWEEP_DIR the job wrote is continued by `albsent sweep` without --resume (and by a
    resubmitted job): no finished trial is run again."""
    smoke = str(ROOT / "configs/sweeps/smoke.yaml")
    out = tmp_path / "sweep"
    job = ["--config", smoke, "--set", f"store={store}", "--set", f"out={out}", "--set", "num_samples=2"]
    assert run_job("sweep", job) == 0
    first = last_json(capsys)
    assert first["resumed"] is False and first["num_trials"] == 2
    cli = ["-q", "sweep", "--config", smoke, "--store", str(store), "--out", str(out), "--set", "num_samples=2",
           "--json"]
    assert main(cli) == 0
    printed = capsys.readouterr().out
    again = json.loads(printed[printed.index("{"):])  # (indented JSON)
    assert again["resumed"] is True and again["num_trials"] == 2 and again["best"] == first["best"]
