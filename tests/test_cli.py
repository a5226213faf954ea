"""The `albsent` command as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from albsent.cli import build_parser, main

ALBSENT = [sys.executable, "-m", "albsent.cli"]


def test_every_subcommand_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"extract", "inspect", "stats", "demo"} <= set(sub.choices)
    for name in sub.choices:
        out = subprocess.run(ALBSENT + [name, "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "usage: albsent " + name in out.stdout, (name, out.stderr[-500:])
        if name == "train":
            assert "mlp (pooled)" in out.stdout and "bilstm_attn (sequence)" in out.stdout


def test_parser_does_not_import_torch():
    """Every command builds the whole parser; `albsent extract` or `inspect` must not pay torch's
    ~1 s import (and memory) for the train command's help text."""
    code = "import sys, albsent.cli as c; c.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_user_errors_are_one_line_without_traceback(corpus, tmp_path, capsys):
    assert main(["extract", str(corpus), "--out", str(tmp_path / "s"), "--set", "mfcc.nope=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key(s) mfcc.nope" in err and "Traceback" not in err
    bad = tmp_path / "m.csv"
    pd.DataFrame({"file": ["a.wav"]}).to_csv(bad, index=False)
    assert main(["extract", str(bad), "--out", str(tmp_path / "s")]) == 2
    assert "missing required column(s) ['path', 'label']" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "nothing")]) == 2
    assert "not an albsent store" in capsys.readouterr().err


@pytest.mark.ray
@pytest.mark.slow
def test_extract_cli_starts_and_stops_its_own_local_cluster(corpus, tmp_path):
    """A separate process with no Ray running: albsent starts a local cluster and stops it."""
    import tempfile

    env = {**os.environ, "RAY_ADDRESS": ""}
    ray_tmp = Path(tempfile.mkdtemp(prefix="alb-", dir="/tmp"))  # unix socket paths must stay < 107 bytes
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("features: [mfcc]\nmfcc:\n  n_mfcc: 13\n")
    cmd = ALBSENT + ["-q", "extract", str(corpus.parent / "wav"), "--out", str(tmp_path / "s"), "--config", str(cfg),
                     "--set", "mfcc.deltas=0", "--set", f"ray.temp_dir={ray_tmp}", "--set", "ray.num_cpus=2", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["stored"] == 24 and summary["quarantined"] == 0
    df = pd.read_parquet(tmp_path / "s")
    assert df["label"].isna().all() and len(df["mfcc_mean"][0]) == 13  # folder input: unlabeled
    info = subprocess.run(ALBSENT + ["inspect", str(tmp_path / "s")], capture_output=True, text=True, check=True).stdout
    assert "rows     24" in info and "mfcc_mean" in info and "[13]" in info
    raylets = subprocess.run(["pgrep", "-f", str(ray_tmp)], capture_output=True, text=True).stdout.split()
    assert raylets == [], "the local cluster must be stopped when albsent exits"


@pytest.mark.ray
def test_folder_labels_from_parent_and_segment_flag(tmp_path, ray_local):
    import numpy as np
    import soundfile as sf

    from albsent.testing.synth import voice

    rng = np.random.default_rng(0)
    for cls in ("pos", "neg"):
        (tmp_path / "in" / cls).mkdir(parents=True)
        for i in range(2):
            sf.write(tmp_path / "in" / cls / f"{i}.flac", voice(rng, 2.0, 16000, 150, 0.1, 0.01, 4), 16000)
    assert main(["-q", "extract", str(tmp_path / "in"), "--out", str(tmp_path / "s"), "--labels-from", "parent",
                 "--segment", "1.0", "--features", "mfcc"]) == 0
    df = pd.read_parquet(tmp_path / "s")
    assert sorted(df.groupby("utterance_id")["label"].first()) == ["neg", "neg", "pos", "pos"]
    assert (df["segment_index"] >= 0).all() and len(df) > 4
