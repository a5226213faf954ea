"""Rough edges of issue 25 that are not about the store: manifests that would shift columns,
numbers in scientific notation, classes a split cannot evaluate, predict's single-clip speakers,
long recordings decoded in bounded memory, pretraining without a validation loss. Each test
failed on the code before."""

from __future__ import annotations

import logging
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from albsent.audio.manifest import plan_inputs
from albsent.cli import main
from albsent.errors import ConfigError, InputError


# ---- manifests ---------------------------------------------------------------------------------
@pytest.fixture
def wavs(tmp_path):
    for name in ("a.wav", "b.wav"):
        sf.write(tmp_path / name, np.zeros(1600, np.float32), 16000)
    return tmp_path


@pytest.mark.parametrize("line", [2, 3])
def test_a_row_with_one_field_too_many_is_an_error_naming_its_line(wavs, line):
    """Was: one extra field on the first data row shifted every column (the path became a label)."""
    rows = ["a.wav,positive,s1", "b.wav,negative,s2"]
    rows[line - 2] += ",extra"
    (wavs / "m.csv").write_text("path,label,speaker\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match=f"m.csv line {line}: 4 field\\(s\\), but the header has 3"):
        plan_inputs(wavs / "m.csv")


def test_a_trailing_comma_in_the_header_stores_no_unnamed_column(wavs, caplog):
    (wavs / "m.csv").write_text("path,label,speaker,\na.wav,positive,s1,\nb.wav,negative,s2\n")
    with caplog.at_level(logging.WARNING):
        items = plan_inputs(wavs / "m.csv")
    assert not [c for c in items.columns if c.startswith("Unnamed")] and "trailing comma" in caplog.text
    assert items["label"].tolist() == ["positive", "negative"]
    (wavs / "n.csv").write_text("path,,speaker\na.wav,positive,s1\n")
    with pytest.raises(InputError, match="column 2 of the header has no name"):
        plan_inputs(wavs / "n.csv")
    (wavs / "o.csv").write_text('path,label\n"a,1.wav",positive\nb.wav,negative\n')  # quoted comma: one field
    assert plan_inputs(wavs / "o.csv", allowed_roots=[str(wavs)])["key"].tolist() == ["a,1.wav", "b.wav"]


def test_a_manifest_error_is_one_line_on_the_command_line(wavs, tmp_path, capsys):
    (wavs / "m.csv").write_text("path,label\na.wav,positive,oops\n")
    assert main(["extract", str(wavs / "m.csv"), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "Traceback" not in err and not (tmp_path / "s").exists()


# ---- --set numbers ----------------------------------------------------------------------------
@pytest.mark.parametrize("text,value", [("1e-3", 1e-3), ("2.5E-1", 0.25), ("+5e-2", 0.05), ("3", 3.0)])
def test_set_accepts_numbers_in_scientific_notation(text, value):
    """Was: `--set lr=1e-3` refused as "not a number" (YAML 1.1 reads 1e-3 as a string)."""
    from albsent.config import load
    from albsent.train import TrainConfig

    assert load(TrainConfig, None, [f"lr={text}"]).lr == pytest.approx(value)


def test_a_word_is_still_not_a_number():
    from albsent.config import load
    from albsent.train import TrainConfig

    with pytest.raises(ConfigError, match="'lr' must be a number. Got 'fast'"):
        load(TrainConfig, None, ["lr=fast"])
    with pytest.raises(ConfigError, match="'epochs' must be an int"):
        load(TrainConfig, None, ["epochs=1e3"])  # scientific notation is a float, not an int


# ---- splits ------------------------------------------------------------------------------------
def test_a_class_spoken_by_one_speaker_only_is_warned_about(caplog):
    """Was: trained with rc 0 and no warning."""
    from albsent.dataset.splits import kfold

    labels = np.array(["neg"] * 8 + ["pos"] * 8 + ["neu"] * 4)
    speakers = np.array([f"speaker:s{i % 4}" for i in range(16)] + ["speaker:s9"] * 4, dtype=object)
    with caplog.at_level(logging.WARNING):
        kfold(labels, speakers, 2, val_fraction=0.0, seed=0)
    assert "class 'neu' is spoken by one speaker only (s9)" in caplog.text
    assert "'neg'" not in caplog.text and "'pos'" not in caplog.text


def test_a_rare_class_error_advises_what_works():
    """Was: `--folds 2` on a class with one row advised "use --folds 2"."""
    from albsent.dataset.splits import class_rows_error

    one = class_rows_error(["neg", "pos"], [1, 30], 2, "STORE")
    assert "use --folds" not in str(one) and "label at least 1 more row(s) of 'neg'" in str(one)
    three = class_rows_error(["neg", "pos"], [3, 30], 5, "STORE")
    assert "use --folds 3" in str(three)
    assert class_rows_error(["neg", "pos"], [5, 30], 5, "STORE") is None


# ---- predict -----------------------------------------------------------------------------------
@pytest.mark.ray
def test_predict_warns_about_a_speaker_with_a_single_clip(store, tmp_path, caplog, capsys):
    """Was: no warning, though the README promises one (the clip gets the corpus' statistics)."""
    import pandas as pd

    run = tmp_path / "run"
    assert main(["-q", "train", "--store", str(store), "--features", "mfcc", "--model", "sklearn_logreg",
                 "--speaker-norm", "--split", "utterance", "--out", str(run)]) == 0
    wav = sorted(pd.read_parquet(store, columns=["path"])["path"])[:2]
    with caplog.at_level(logging.WARNING):
        assert main(["predict", str(run), wav[0], "--speaker", "s0", "--json"]) == 0
    assert "1 speaker(s) have a single clip here (e.g. s0)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert main(["predict", str(run), *wav, "--speaker", "s0", "--json"]) == 0
    assert "single clip" not in caplog.text


# ---- long recordings ---------------------------------------------------------------------------
@pytest.fixture
def long_stereo(tmp_path):
    """30 s of stereo PCM16 at 44.1 kHz (10.6 MB), trimmed silence at both ends."""
    sr = 44100
    t = np.arange(30 * sr) / sr
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (np.abs(t - 15) < 14)
    path = tmp_path / "long.wav"
    sf.write(path, np.stack([x, 0.5 * x], 1).astype(np.float32), sr, subtype="PCM_16")
    return path


def test_a_long_file_decodes_in_memory_near_its_result(long_stereo, monkeypatch):
    """Was: the file's bytes, every channel as float32 and a float64 downmix at once (a 2-hour
    file peaked at ~2 GB to decode; 0.5 GB now, its mono result being 0.46 GB)."""
    from albsent.audio import io

    whole = io.decode(str(long_stereo))  # this size is read into memory at once
    monkeypatch.setattr(io, "IN_MEMORY_BYTES", 2**20, raising=False)
    monkeypatch.setattr(io, "BLOCK_FRAMES", 2**16, raising=False)
    tracemalloc.start()
    try:
        streamed = io.decode(str(long_stereo))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    result = streamed.samples.nbytes
    assert peak < 1.5 * result, f"peak {peak / 2**20:.1f} MiB for a {result / 2**20:.1f} MiB result"
    assert np.array_equal(streamed.samples, whole.samples) and streamed.sha256 == whole.sha256
    assert (streamed.sample_rate_hz, streamed.channels) == (44100, 2)


def test_trimming_a_long_recording_is_chunked_and_equals_librosa(long_stereo, monkeypatch):
    import librosa

    from albsent.audio import preprocess as pp
    from albsent.audio.io import decode

    x = pp.resample(decode(str(long_stereo)).samples, 44100, 16000)
    expected, _ = librosa.effects.trim(x, top_db=30, frame_length=512, hop_length=128)
    monkeypatch.setattr(pp, "TRIM_CHUNK_FRAMES", 256, raising=False)  # 3,751 frames: 15 chunks
    tracemalloc.start()
    try:
        got = pp.trim(x, pp.AudioConfig())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(got, expected) and got.size < x.size
    assert peak < x.nbytes  # librosa squares every frame of the whole signal at once: 4x its size


# ---- pretrain -----------------------------------------------------------------------------------
@pytest.mark.parametrize("clips", [1, 4])
def test_pretraining_without_a_validation_utterance_is_refused(clips):
    """Was: one clip gave a NaN validation loss with rc 0."""
    from albsent.dataset.data import Data
    from albsent.dataset.spec import parse
    from albsent.models.autoencoders import AutoencoderConfig
    from albsent.pretrain import PretrainConfig, WindowConfig, pretrain

    rng = np.random.default_rng(0)
    ids, none = np.array([f"u{i}" for i in range(clips)], dtype=object), np.array([None] * clips, dtype=object)
    data = Data(parse("synthetic:seq"), [rng.normal(size=(40, 3)).astype(np.float32) for _ in range(clips)], none,
                ids, "utterance", ids, ids.copy(), none, none, feature_names=["a", "b", "c"])
    config = PretrainConfig(window=WindowConfig(length=5), model=AutoencoderConfig(name="rnn", hidden_size=4),
                            iterations=2, val_every=1, batch_size=4, num_threads=1)
    with pytest.raises(ConfigError, match="leave none to hold out .at least 6 are needed.*val_fraction=0"):
        pretrain(config, data)
    from dataclasses import replace

    result = pretrain(replace(config, val_fraction=0.0), data)  # asked for: trains, and says there is no loss
    assert np.isnan(result.metrics["val_loss"])
