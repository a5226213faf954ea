"""Fault injection for inputs that used to break the store's promise (issue 18): each case
failed on the code before it was fixed. One clear line naming the field or file, exit 2."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from albsent.audio.manifest import plan_inputs
from albsent.audio.preprocess import AudioConfig
from albsent.cli import main
from albsent.config import build
from albsent.errors import ConfigError, StoreError
from albsent.train import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def manifest(tmp_path, corpus):
    """A copy of the session corpus' manifest with absolute paths, to edit."""
    df = pd.read_csv(corpus)
    df["path"] = [str((corpus.parent / p).resolve()) for p in df["path"]]
    return df, tmp_path


@pytest.mark.parametrize("column", ["id", "sha256", "duration_s", "mfcc_mean"])
def test_manifest_column_with_a_reserved_name_is_refused_before_work(manifest, column, capsys):
    df, tmp = manifest
    df[column] = "x"
    df.to_csv(tmp / "m.csv", index=False)
    code = main(["extract", str(tmp / "m.csv"), "--out", str(tmp / "store"), "--allow-root", "/"])
    err = capsys.readouterr().err
    assert code == 2 and f"['{column}']" in err and "reserved" in err and "Traceback" not in err
    assert not (tmp / "store").exists()  # nothing was written


def test_whitespace_around_labels_and_speakers_is_stripped_with_a_warning(manifest, caplog):
    df, tmp = manifest
    df.loc[0, "label"] = " " + df.loc[0, "label"]
    df.loc[1, "speaker"] = df.loc[1, "speaker"] + " "
    df.to_csv(tmp / "m.csv", index=False)
    with caplog.at_level(logging.WARNING):
        items = plan_inputs(tmp / "m.csv", allowed_roots=["/"])
    assert set(items["label"]) == set(df["label"].str.strip())
    assert set(items["speaker"]) == set(df["speaker"].str.strip())
    assert "column 'label'" in caplog.text and "column 'speaker'" in caplog.text


def test_segment_hop_below_one_sample_is_refused():
    with pytest.raises(ConfigError, match="segment_hop_s.*at least one sample"):
        AudioConfig(segment_s=1.0, segment_hop_s=1e-5)
    assert AudioConfig(segment_s=1.0, segment_hop_s=1 / 16000).segment_hop_s == 1 / 16000


def test_one_class_training_is_an_error_not_a_perfect_score():
    from albsent.dataset import Data, parse

    n = 24
    ids = np.array([f"u{i}" for i in range(n)], dtype=object)
    data = Data(parse("mfcc"), np.random.default_rng(0).normal(size=(n, 3)).astype(np.float32),
                np.array(["neutral"] * n, dtype=object),
                np.array([f"speaker:s{i % 4}" for i in range(n)], dtype=object),
                "speaker", ids, ids, ids, np.array([None] * n, dtype=object))
    with pytest.raises(ConfigError, match="at least two classes"):
        fit(build(TrainConfig, {"model": "sklearn_logreg", "split": {"val_fraction": 0.0}}), data)


def test_reused_run_folder_is_refused_unless_overwrite(store, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["-q", "train", "--store", str(store), "--features", "mfcc", "--model", "sklearn_logreg", "--out", str(run),
            "--split", "utterance"]
    assert main(args) == 0
    (run / "stale.txt").write_text("from an earlier run")
    capsys.readouterr()
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0 and not (run / "stale.txt").exists() and (run / "model.json").is_file()
    (tmp_path / "file").write_text("x")
    assert main(args[:-3] + [str(tmp_path / "file"), "--split", "utterance"]) == 2
    assert "is a file" in capsys.readouterr().err


@pytest.mark.slow
def test_second_writer_fails_while_the_first_holds_the_store(corpus, tmp_path, capsys):
    """Two extracts into one --out used to both run and duplicate rows; now the second one
    fails at once with a message naming the writer, and runs once the first is done."""
    import json
    import os

    from albsent.store import Store

    out = tmp_path / "store"
    args = ["-q", "extract", str(corpus), "--out", str(out), "--set", "features=[mfcc]"]
    with Store(str(out)).writer_lock():
        held = json.loads((out / "_lock.json").read_text())
        assert held["pid"] == os.getpid()
        assert main(args) == 2
    err = capsys.readouterr().err
    assert f"being written by process {os.getpid()}" in err and "Traceback" not in err
    assert main(args) == 0 and not (out / "_lock.json").exists()
    n = len(pd.read_parquet(out, columns=["id"]))
    assert n == len(pd.read_csv(corpus)) and pd.read_parquet(out, columns=["id"])["id"].is_unique


def test_lock_of_a_killed_writer_is_taken_over(corpus, tmp_path, caplog):
    import json
    import socket
    import subprocess
    import sys
    import time

    from albsent.store import Store

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)  # that process has exited
    out = tmp_path / "store"
    out.mkdir()
    (out / "_lock.json").write_text(json.dumps({"host": socket.gethostname(), "pid": dead_pid,
                                                "heartbeat": time.time(), "started": time.time()}))
    with caplog.at_level(logging.WARNING), Store(str(out)).writer_lock():
        assert json.loads((out / "_lock.json").read_text())["pid"] != dead_pid
    assert "taking over the lock" in caplog.text and not (out / "_lock.json").exists()
    # another host's lock with a fresh heartbeat is live; an old heartbeat is stale
    (out / "_lock.json").write_text(json.dumps({"host": "elsewhere", "pid": 1, "heartbeat": time.time(), "started": 0}))
    with pytest.raises(StoreError, match="being written by process 1 on host elsewhere"):
        Store(str(out)).writer_lock().__enter__()
    (out / "_lock.json").write_text(json.dumps({"host": "elsewhere", "pid": 1, "heartbeat": time.time() - 3600,
                                                "started": 0}))
    with Store(str(out)).writer_lock():
        pass


def test_header_only_manifest_is_an_error_not_an_empty_store(tmp_path, capsys):
    (tmp_path / "m.csv").write_text("path,label,speaker\n")
    assert main(["extract", str(tmp_path / "m.csv"), "--out", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert "lists no inputs" in err and "Traceback" not in err and not (tmp_path / "store").exists()


@pytest.mark.parametrize("text,expected", [("features: [mfcc\nbatch_size: 4\n", "not valid YAML (line"),
                                           ("audio: !!python/object/apply:os.system ['true']\n", "not valid YAML")])
def test_bad_yaml_config_is_one_line(corpus, tmp_path, capsys, text, expected):
    (tmp_path / "c.yaml").write_text(text)
    assert main(["extract", str(corpus), "--out", str(tmp_path / "s"), "--config", str(tmp_path / "c.yaml")]) == 2
    err = capsys.readouterr().err
    assert expected in err and "c.yaml" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.ray
@pytest.mark.slow
def test_sweep_where_every_trial_failed_exits_non_zero(store, ray_local, tmp_path, capsys):
    import yaml

    smoke = yaml.safe_load((ROOT / "configs" / "sweeps" / "smoke.yaml").read_text())
    smoke.update(name="allfail", num_samples=2, max_failures=0, retrain=False, scheduler={"type": "fifo"},
                 base={**smoke["base"], "model": "mlp", "epochs": 1},
                 space={"dropout": {"uniform": [1.5, 2.0]}})  # every value is rejected by TrainConfig
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(smoke))
    out = tmp_path / "o"
    code = main(["-q", "sweep", "--config", str(tmp_path / "s.yaml"), "--store", str(store), "--out", str(out)])
    assert code == 1 and "no trial completed" in capsys.readouterr().err
