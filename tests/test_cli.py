"""The `albsent` command as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from albsent.cli import main
from albsent.registry import COMMANDS

ALBSENT = [sys.executable, "-m", "albsent.cli"]


HELP_EVERY_COMMAND = """
import contextlib, io, json, sys
import albsent.cli as c
parser = c.build_parser()
torch = "torch" in sys.modules
sub = next(a for a in parser._actions if a.dest == "command")
helps = {}
for name in sub.choices:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            c.main([name, "--help"])
        except SystemExit as exc:
            helps[name] = [exc.code, buf.getvalue()]
print(json.dumps({"torch_after_parser": torch, "help": helps}))
"""


def test_every_subcommand_has_help_and_the_parser_does_not_import_torch():
    """One fresh process: building the parser (what every command does first) must not pay torch's
    ~1 s import (and memory) for the train command's help text; then every subcommand in
    albsent.registry.COMMANDS prints its --help and exits 0."""
    out = subprocess.run([sys.executable, "-c", HELP_EVERY_COMMAND], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["torch_after_parser"] is False
    assert set(result["help"]) == set(COMMANDS) and {"extract", "inspect", "verify", "stats", "demo"} <= set(COMMANDS)
    for name, (code, text) in result["help"].items():
        assert code == 0 and "usage: albsent " + name in text, (name, text[-500:])
    assert "mlp (pooled)" in result["help"]["train"][1] and "bilstm_attn (sequence)" in result["help"]["train"][1]


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
def test_extract_cli_starts_and_stops_its_own_local_cluster(corpus, tmp_path, capsys):
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
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "s")]) == 0  # in this process: the store, not a process, is tested
    info = capsys.readouterr().out
    assert "rows     24" in info and "mfcc_mean" in info and "[13]" in info
    raylets = subprocess.run(["pgrep", "-f", str(ray_tmp)], capture_output=True, text=True).stdout.split()
    assert raylets == [], "the local cluster must be stopped when albsent exits"


@pytest.mark.ray
@pytest.mark.slow
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
