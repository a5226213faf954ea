"""Fault injection for the rough edges of issue 18: each case gave a traceback (or silently did
the wrong thing) before it was fixed. Now: one line naming the file or field, exit 2, or the
input quarantined with a reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from albsent.audio import io as audio_io
from albsent.audio.io import decode
from albsent.audio.preprocess import AudioConfig, preprocess
from albsent.cli import main
from albsent.config import build
from albsent.errors import AudioError, ConfigError

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def one_line_error(capsys, *words) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, err
    return err


def one_hz_wav(path: Path) -> Path:
    """An 844-byte WAV whose header says 1 Hz: 400 samples would resample to 6.4 M (25 MB) at 16 kHz."""
    sf.write(path, (0.3 * np.sin(np.arange(400) / 3)).astype(np.float32), 1, subtype="PCM_16")
    return path


# --- 1. sample rate and length bounds on decoded audio ----------------------------------------------
def test_one_hz_header_is_refused_not_resampled(tmp_path):
    path = one_hz_wav(tmp_path / "one_hz.wav")
    with pytest.raises(AudioError, match="sample rate 1 Hz, expected 1000-384000 Hz") as exc:
        decode(str(path))
    assert exc.value.reason == "bad_sample_rate"
    with pytest.raises(AudioError) as exc:  # arrays handed to preprocess directly are checked too
        preprocess(np.ones(400, np.float32), 1, AudioConfig(), "x.wav")
    assert exc.value.reason == "bad_sample_rate"
    with pytest.raises(AudioError, match="expected 1000-384000 Hz"):
        preprocess(np.ones(400, np.float32), 400_000, AudioConfig(), "x.wav")


def test_audio_longer_than_the_bound_is_refused(corpus, monkeypatch):
    wav = str(corpus.parent / "wav" / "s0_neutral_0.wav")  # 1-2 s
    monkeypatch.setattr(audio_io, "MAX_DURATION_S", 0.5)
    with pytest.raises(AudioError, match=r"s of audio, expected at most 0 s per file.*MAX_DURATION_S") as exc:
        decode(wav)
    assert exc.value.reason == "too_long"
    with pytest.raises(AudioError) as exc:
        preprocess(np.ones(16000, np.float32), 16000, AudioConfig(), "x.wav")
    assert exc.value.reason == "too_long"


def test_worker_quarantines_a_one_hz_file_with_its_reason(corpus, tmp_path):
    from albsent.audio.manifest import plan_inputs
    from albsent.config import to_dict
    from albsent.features.config import ExtractConfig, build_extractors, store_metadata
    from albsent.pipeline.worker import ExtractBlock
    from albsent.store import Store

    cfg = ExtractConfig(features=["mfcc"])
    items = plan_inputs(corpus).head(2).reset_index(drop=True)
    items.loc[1, "path"] = str(one_hz_wav(tmp_path / "one_hz.wav"))
    meta = store_metadata(cfg, build_extractors(cfg), [], "2026-01-01T00:00:00+00:00")
    store = Store(str(tmp_path / "s"))
    store.create_or_check(meta)
    summary = ExtractBlock(to_dict(cfg), store.uri, meta)(items).set_index("utterance_id")
    row = summary.loc[items.loc[1, "utterance_id"]]
    assert (row["status"], row["reason"]) == ("quarantined", "bad_sample_rate")
    assert summary.loc[items.loc[0, "utterance_id"], "status"] == "stored"


# --- 2. seeds -----------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [-1, 2**40])
def test_out_of_range_seed_is_one_line(store, tmp_path, capsys, seed):
    args = ["train", "--store", str(store), "--features", "mfcc", "--model", "mlp", "--set", "epochs=1",
            "--split", "utterance", "--out", str(tmp_path / "run"), "--set", f"seed={seed}"]
    assert main(args) == 2  # was a numpy traceback (Seed must be between 0 and 2**32 - 1)
    one_line_error(capsys, "'seed'", "TrainConfig", "[0, 2147483647]", str(seed))
    assert main(["pretrain", "--store", str(store), "--out", str(tmp_path / "ae"), "--seed", str(seed)]) == 2
    one_line_error(capsys, "'seed'", "PretrainConfig", "[0, 2147483647]")
    from albsent.pretrain.config import ProbeConfig
    from albsent.sweep.config import SweepConfig
    from albsent.train.select import AutoConfig

    for cls in (ProbeConfig, AutoConfig):
        with pytest.raises(ConfigError, match=r"'seed' parameter of \w+Config must be an int in \[0, 2147483647\]"):
            build(cls, {"seed": seed})
    with pytest.raises(ConfigError, match=r"'seed' parameter of SweepConfig"):
        build(SweepConfig, {"seed": seed, "space": {"lr": {"loguniform": [1e-4, 1e-2]}}})


# --- 3. an existing file as --out -------------------------------------------------------------------
@pytest.fixture(scope="module")
def ae_run(store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("edges") / "ae"
    assert main(["-q", "pretrain", "--config", str(ROOT / "configs" / "smoke" / "pretrain.yaml"), "--store", str(store),
                 "--set", "iterations=2", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("command", [
    ["probe", "--pretrained", "AE", "--store", "ST", "--iterations", "5"],
    ["pretrain", "--config", str(ROOT / "configs" / "smoke" / "pretrain.yaml"), "--store", "ST"],
    ["sweep", "--config", str(ROOT / "configs" / "sweeps" / "smoke.yaml"), "--store", "ST"],
])
def test_existing_file_as_out_is_one_line(store, ae_run, tmp_path, capsys, command):
    """Used to run to the end (probe, pretrain) or start Ray (sweep), then fail with FileExistsError."""
    (tmp_path / "file").write_text("x")
    command = [{"AE": str(ae_run), "ST": str(store)}.get(a, a) for a in command]
    capsys.readouterr()
    assert main([*command, "--out", str(tmp_path / "file")]) == 2
    one_line_error(capsys, f"--out {tmp_path / 'file'} is a file; expected a folder")
    assert (tmp_path / "file").read_text() == "x"


def test_existing_file_as_job_out_is_one_line(store, tmp_path, capsys):
    from tests.test_jobs import run_job

    (tmp_path / "file").write_text("x")
    assert run_job("train", ["--set", f"store={store}", "--set", "features=mfcc", "--set", "epochs=1",
                             "--set", f"out={tmp_path / 'file'}"]) == 2
    one_line_error(capsys, f"jobs/train.py: error: out: {tmp_path / 'file'} is a file")


# --- 4./5. damaged runs given to predict --------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("edges") / "run"
    assert main(["-q", "train", "--store", str(store), "--features", "mfcc", "--model", "mlp", "--set", "epochs=1",
                 "--set", "hidden_size=8", "--set", "num_threads=1", "--split", "utterance", "--out", str(out)]) == 0
    return out


@pytest.fixture
def run_copy(trained_run, corpus, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    capsys.readouterr()
    return run, str(corpus.parent / "wav" / "s0_neutral_0.wav")


def test_weights_of_another_model_size_are_one_line(run_copy, capsys):
    from safetensors.torch import save_file

    from albsent.models import build_model

    run, wav = run_copy
    m = json.loads((run / "model.json").read_text())["model"]
    other = build_model(m["name"], m["input_dim"], m["n_classes"], {**m["hparams"], "hidden_size": 32},
                        m.get("n_layers"))
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(run / "model.safetensors"))
    assert main(["predict", str(run), wav]) == 2
    one_line_error(capsys, f"{run / 'model.safetensors'}: weights do not fit the model described in model.json",
                   "net.0.weight is [32, ", "expected [8, ")


@pytest.mark.parametrize("how", ["missing", "null"])
def test_run_without_its_extract_config_is_one_line(run_copy, capsys, how):
    run, wav = run_copy
    meta = json.loads((run / "model.json").read_text())
    if how == "missing":
        del meta["extract_config"]
    else:
        meta["extract_config"] = None  # used to fall back silently to the default extract config
    (run / "model.json").write_text(json.dumps(meta))
    assert main(["predict", str(run), wav]) == 2
    one_line_error(capsys, f"{run / 'model.json'}: no 'extract_config'", "_albsent.json")


# --- 6. non-finite bounds in a sweep space ---------------------------------------------------------------
@pytest.mark.parametrize("bounds", ["[.nan, 1.0e-2]", "[1.0e-4, .inf]"])
def test_non_finite_bound_in_sweep_space_is_one_line(tmp_path, capsys, bounds):
    text = (ROOT / "configs" / "sweeps" / "smoke.yaml").read_text()
    text = text.replace("lr: {loguniform: [1.0e-4, 1.0e-2], when:", f"lr: {{loguniform: {bounds}, when:")
    assert bounds in text
    (tmp_path / "s.yaml").write_text(text)
    assert main(["sweep", "--config", str(tmp_path / "s.yaml"), "--store", str(tmp_path / "st"),
                 "--out", str(tmp_path / "o")]) == 2
    one_line_error(capsys, "sweep space 'lr'", "finite numbers")
    assert not (tmp_path / "o").exists()


# --- 7. the sweep job fails when no trial completed ------------------------------------------------------
@pytest.mark.ray
@pytest.mark.slow
def test_sweep_job_where_every_trial_failed_exits_non_zero(store, ray_local, tmp_path, capsys):
    from tests.test_jobs import run_job

    smoke = yaml.safe_load((ROOT / "configs" / "sweeps" / "smoke.yaml").read_text())
    smoke.update(name="allfail", num_samples=2, max_failures=0, retrain=False, scheduler={"type": "fifo"},
                 base={**smoke["base"], "model": "mlp", "epochs": 1},
                 space={"dropout": {"uniform": [1.5, 2.0]}},  # every value is rejected by TrainConfig
                 store=str(store), out=str(tmp_path / "o"))
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(smoke))
    assert run_job("sweep", ["--config", str(tmp_path / "job.yaml")]) == 1
    captured = capsys.readouterr()
    assert "jobs/sweep.py: error: no trial completed" in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])["best"] is None  # the result is still printed
