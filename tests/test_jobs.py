"""jobs/*.py: job YAML = stage config + path keys; the job calls the CLI's library function.
(`ray job submit` on a real multi-node cluster: tests/test_cluster.py.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from albsent.errors import ConfigError
from albsent.pipeline.extract import block_sizes

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "jobs"))  # as `python jobs/X.py` has it

import _job  # noqa: E402


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


def test_job_yaml_splits_paths_from_the_stage_config(tmp_path):
    from albsent.pipeline.config import ExtractConfig

    cfg = write(tmp_path, {"input": "/data/m.csv", "out": "/stores/a", "batch_size": 8, "mfcc": {"n_mfcc": 13}})
    paths, config = _job.load_job("extract", ["--config", cfg, "--set", "out=s3://bucket/b", "--set", "batch_size=4"])
    assert paths == {"input": "/data/m.csv", "out": "s3://bucket/b"}
    assert isinstance(config, ExtractConfig) and config.batch_size == 4 and config.mfcc.n_mfcc == 13
    # Without a file, everything can come from --set.
    paths, config = _job.load_job("extract", ["--set", "input=x.csv", "--set", "out=y", "--set", "features=mfcc"])
    assert paths == {"input": "x.csv", "out": "y"} and config.features == ["mfcc"]


def test_job_errors_name_the_key(tmp_path, capsys):
    with pytest.raises(ConfigError, match="needs out"):
        _job.load_job("extract", ["--set", "input=x.csv"])
    cfg = write(tmp_path, {"input": "x.csv", "out": "y", "batchsize": 8})
    with pytest.raises(ConfigError, match="unknown config key.*batchsize.*valid keys.*batch_size"):
        _job.load_job("extract", ["--config", cfg])
    # As a process: one line on stderr, exit status 2 (so `ray job submit` reports FAILED).
    assert run_job("extract", ["--config", cfg]) == 2
    assert "jobs/extract.py: error: unknown config key(s) batchsize" in capsys.readouterr().err


@pytest.mark.ray
def test_extract_job_builds_the_same_store_as_the_cli(ray_local, corpus, tmp_path, capsys):
    from albsent.cli import main as cli
    from albsent.store import Store

    out = tmp_path / "store"
    cfg = write(tmp_path, {"input": str(corpus), "out": str(out), "features": ["mfcc", "shortterm"], "batch_size": 8})
    assert run_job("extract", ["--config", cfg]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["stage"] == "extract" and result["inputs"] == 24 and result["stored"] == 24
    store = Store(str(out))
    assert store.num_rows() == 24 and len(store.part_files()) == len(block_sizes(24, 8, 2))  # one part per block
    # The CLI with the same settings accepts the job's store (same config hash) and finds nothing to do.
    assert cli(["extract", str(corpus), "--out", str(out), "--set", "batch_size=8", "--json", "-q"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["skipped"] == 24
    # A different stored config is refused by the job exactly as by the CLI.
    assert run_job("extract", ["--config", cfg, "--set", "mfcc.n_mfcc=13"]) == 2
    assert "made with a different config" in capsys.readouterr().err


@pytest.mark.ray
def test_train_pretrain_probe_jobs_call_the_cli_functions(store, tmp_path, capsys):
    """A stage config file plus `--set` paths is a job: train, then pretrain -> probe."""
    import yaml as _yaml

    def last_json():
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    run = tmp_path / "train"
    assert run_job("train", ["--set", f"store={store}", "--set", f"out={run}", "--set", "features=mfcc",
                             "--set", "model=mlp", "--set", "epochs=2",
                             "--set", "split={group_by: utterance, test_fraction: 0.25, val_fraction: 0.2}"]) == 0
    result = last_json()
    assert result["stage"] == "train" and (run / "metrics.json").is_file() and "macro_f1" in json.dumps(result)
    ae = tmp_path / "ae"
    assert run_job("pretrain", ["--config", str(ROOT / "configs/smoke/pretrain.yaml"),
                                "--set", f"store={store}", "--set", f"out={ae}"]) == 0
    assert last_json()["stage"] == "pretrain" and (ae / "model.safetensors").is_file()
    probe_dir = tmp_path / "probe"
    assert run_job("probe", ["--set", f"pretrained={ae}", "--set", f"store={store}", "--set", f"out={probe_dir}",
                             "--set", "iterations=20"]) == 0
    assert last_json()["exit_code"] == 0
    # AE_RUN's saved probe section (folds: 2) applied under the job's keys (iterations: 20), as in the CLI.
    resolved = _yaml.safe_load((probe_dir / "config.yaml").read_text())
    assert resolved["folds"] == 2 and resolved["iterations"] == 20
