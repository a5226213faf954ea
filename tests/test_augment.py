"""Augmentation inside training folds (`extract --augment`, `train --augmented`): copies are drawn
reproducibly, stored beside their source, resumed and relabelled with it, and only ever trained on
beside it: never in a validation or test part, never in auto's inner test folds."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from albsent.audio import augment
from albsent.cli import main
from albsent.errors import ConfigError
from tests.conftest import EMODB, emodb_manifest

pytest.importorskip("audiomentations")


def test_spec_parses_and_bad_specs_name_the_key():
    c = augment.parse_spec("default")
    assert (c.copies, c.speed, c.pitch_semitones, c.gain_db, c.snr_db) == (1, [0.9, 1.1], 2.0, 6.0, [10.0, 20.0])
    c = augment.parse_spec("speed=0.9/1.1,snr=-5-5,copies=3,seed=7")
    assert (c.copies, c.seed, c.speed, c.snr_db, c.pitch_semitones, c.gain_db) == (3, 7, [0.9, 1.1], [-5.0, 5.0], 0, 0)
    assert c.enabled() == ["speed", "snr_db"]
    for bad, says in (("speed", "KEY=VALUE"), ("tempo=2", "KEY=VALUE"), ("snr=loud", "snr='loud'"),
                      ("speed=1.0", "speed"), ("copies=2", "copies"), ("pitch=2,copies=99", "copies")):
        with pytest.raises(ConfigError, match=says):
            augment.parse_spec(bad)


def test_copies_are_drawn_reproducibly_and_apply_what_they_say():
    config = augment.parse_spec("default")
    assert augment.draw(config, "a/b", 1) == augment.draw(config, "a/b", 1)
    drawn = [augment.draw(config, u, k) for u in ("a", "b", "c", "d") for k in (1, 2)]
    assert len({json.dumps(d, sort_keys=True) for d in drawn}) == len(drawn)
    assert all(set(d) - {"copy", "noise_seed"} for d in drawn)  # every copy changes something
    for d in drawn:
        assert d.get("speed", 0.9) in (0.9, 1.1) and abs(d.get("pitch_semitones", 0)) <= 2
        assert abs(d.get("gain_db", 0)) <= 6 and 10 <= d.get("snr_db", 15) <= 20

    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(32000)).astype(np.float32)
    before = (random.getstate(), np.random.get_state()[1].copy())
    fast = augment.apply(x, 16000, {"copy": 1, "speed": 1.1})
    assert abs(fast.size - x.size / 1.1) <= 2
    noisy = augment.apply(x, 16000, {"copy": 1, "snr_db": 12.0, "noise_seed": 5})
    assert np.array_equal(noisy, augment.apply(x, 16000, {"copy": 1, "snr_db": 12.0, "noise_seed": 5}))
    snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((noisy - x).astype(np.float64) ** 2))
    assert abs(snr - 12.0) < 0.3
    louder = augment.apply(x, 16000, {"copy": 1, "gain_db": 6.0})
    assert np.allclose(louder, x * 10 ** (6 / 20), atol=1e-6)
    assert random.getstate() == before[0] and np.array_equal(np.random.get_state()[1], before[1])  # untouched


def test_a_store_without_augmentation_keeps_its_config_hash():
    from albsent.features.config import ExtractConfig

    assert "augment" not in ExtractConfig().stored()  # stores made before augmentation resume as they are
    assert ExtractConfig(augment=augment.parse_spec("gain=3")).stored()["augment"]["gain_db"] == 3.0


def _rows(store) -> pd.DataFrame:
    from albsent.store import Store

    return Store(str(store)).read(["id", "utterance_id", "label", "speaker", "augment_of", "augment", "duration_s"],
                                  copies=True).to_pandas()


@pytest.mark.ray
@pytest.mark.slow
def test_extract_stores_copies_beside_their_source_and_resumes_relabels_and_adds_groups(corpus, ray_local, tmp_path):
    from albsent.config import build
    from albsent.features.config import ExtractConfig
    from albsent.pipeline.extract import extract
    from albsent.store import Store
    from albsent.store.store import describe

    spec = {"augment": {"copies": 2, "speed": [0.9, 1.1], "pitch_semitones": 2.0, "gain_db": 6.0,
                        "snr_db": [10.0, 20.0]}}
    config = build(ExtractConfig, {**spec, "features": ["mfcc"]})
    out = tmp_path / "aug"
    summary = extract(str(corpus), str(out), config, progress=False)
    n = summary.stored
    assert n == 24 and summary.rows == 3 * n
    rows = _rows(out)
    copies, own = rows[rows["augment_of"].notna()], rows[rows["augment_of"].isna()].set_index("utterance_id")
    assert len(own) == n and len(copies) == 2 * n
    assert (copies["augment_of"] == copies["utterance_id"]).all()
    assert set(copies["id"]) == {f"{u}-a{k}" for u in own.index for k in (1, 2)}
    for col in ("label", "speaker"):
        assert (copies[col].to_numpy() == own.loc[copies["utterance_id"], col].to_numpy()).all()
    params = [json.loads(p) for p in copies["augment"]]
    sped = [(p["speed"], d, own.at[u, "duration_s"]) for p, d, u in zip(params, copies["duration_s"],
                                                                         copies["utterance_id"]) if "speed" in p]
    assert sped and all(abs(d - src / s) < 0.05 for s, d, src in sped)  # (trimmed, then sped up or slowed)
    # readers other than training see the store's own rows only
    assert Store(str(out)).read(["id"]).num_rows == n and describe(Store(str(out)))["augmented_rows"] == 2 * n

    again = extract(str(corpus), str(out), config, progress=False)  # resumes: nothing to do
    assert (again.stored, again.skipped) == (0, n) and _rows(out).sort_values("id")["augment"].tolist() == \
        rows.sort_values("id")["augment"].tolist()

    manifest = pd.read_csv(corpus)
    first = manifest.iloc[0]
    manifest.loc[0, "label"] = "relabelled"
    changed = tmp_path / "manifest.csv"
    manifest.assign(path=[str((Path(corpus).parent / p).resolve()) for p in manifest["path"]]).to_csv(changed,
                                                                                                      index=False)
    cfg = build(ExtractConfig, {**spec, "features": ["mfcc"], "allowed_roots": [str(Path(corpus).parent)]})
    extract(str(changed), str(out), cfg, progress=False)
    after = _rows(out)
    source = after.loc[after["augment_of"].isna() & (after["label"] == "relabelled"), "utterance_id"]
    assert len(source) == 1 and (after.loc[after["utterance_id"] == source.iloc[0], "label"] == "relabelled").all()
    assert first["label"] != "relabelled" and len(after) == 3 * n  # the source and its two copies, nothing else

    # adding a feature group recomputes the copies from the audio: the values a fresh extraction stores
    roots = [str(Path(corpus).parent)]
    both = build(ExtractConfig, {**spec, "features": ["mfcc", "shortterm"], "allowed_roots": roots})
    extract(str(changed), str(out), both, progress=False)
    fresh = tmp_path / "fresh"
    extract(str(changed), str(fresh), both, progress=False)
    a = Store(str(out)).read(["id", "shortterm_mean"], copies=True).to_pandas().set_index("id").sort_index()
    b = Store(str(fresh)).read(["id", "shortterm_mean"], copies=True).to_pandas().set_index("id").sort_index()
    assert list(a.index) == list(b.index) and len(a) == 3 * n
    assert np.allclose(np.stack(a["shortterm_mean"]), np.stack(b["shortterm_mean"]), atol=1e-5)


@pytest.fixture(scope="module")
def noise_store(ray_local, tmp_path_factory) -> Path:
    """60 EMO-DB clips (6 per speaker) with seeded *random* labels, each with one augmented copy that
    only changes its level: after peak normalisation a copy's MFCCs equal its source's. A model that
    memorises (an RBF SVM with a large C) scores chance on held-out speakers, and would score ~1.0
    if a held-out clip's copy were among its training rows: a leakage detector for copies."""
    emodb_manifest()
    from albsent.config import build
    from albsent.features.config import ExtractConfig
    from albsent.pipeline.extract import extract

    work = tmp_path_factory.mktemp("noise")
    m = pd.read_csv(EMODB / "manifest_sentiment.csv", dtype={"speaker": str})
    m = m.groupby("speaker").head(6).reset_index(drop=True)
    m["label"] = np.random.default_rng(3).choice(["a", "b", "c"], len(m))
    m["path"] = [str((EMODB / p).resolve()) for p in m["path"]]
    m[["path", "label", "speaker"]].to_csv(work / "manifest.csv", index=False)
    config = build(ExtractConfig, {"features": ["mfcc"], "allowed_roots": [str(EMODB.resolve())],
                                   "augment": {"copies": 1, "gain_db": 3.0, "p": 1.0}})
    extract(str(work / "manifest.csv"), str(work / "store"), config, progress=False)
    return work / "store"


@pytest.mark.ray
@pytest.mark.slow
def test_copies_are_only_ever_in_training_folds(noise_store, tmp_path):
    from albsent.dataset.data import load_data

    data = load_data(str(noise_store), "mfcc", augmented=True)
    assert len(data) == 60 and len(data.copies.source) == 60
    # the detector works: copies are their sources in feature space, so a leaked copy gives its label away
    assert np.abs(data.copies.X - data.X[data.copies.source]).max() < 1e-3 * np.abs(data.X).max()

    common = ["--store", str(noise_store), "--features", "mfcc", "--model", "svm_rbf", "--set", "C=1000",
              "--folds", "5"]
    assert main(["-q", "train", *common, "--out", str(tmp_path / "plain")]) == 0
    assert main(["-q", "train", *common, "--augmented", "--out", str(tmp_path / "aug")]) == 0
    plain = pd.read_csv(tmp_path / "plain" / "predictions.csv", dtype={"id": str})
    aug = pd.read_csv(tmp_path / "aug" / "predictions.csv", dtype={"id": str})
    assert plain[["id", "fold"]].equals(aug[["id", "fold"]])  # the same folds with and without copies
    assert not aug["id"].str.contains("-a1").any()  # no copy is ever tested
    for k in range(1, 6):
        m = json.loads((tmp_path / "aug" / f"fold-{k}" / "metrics.json").read_text())
        train_rows = m["audit"]["rows"]["train"] + m["audit"]["rows"]["val"]  # (an SVM trains on val rows too)
        assert m["audit"]["augmented_copies"] == {"train": train_rows, "val": 0, "test": 0}
    metrics = json.loads((tmp_path / "aug" / "metrics.json").read_text())
    assert metrics["pooled"]["accuracy"] < 0.6  # chance is 1/3; a leaked copy would make it ~1.0

    out = tmp_path / "auto"
    assert main(["-q", "train", "--store", str(noise_store), "--auto", "--augmented", "both", "--folds", "3",
                 "--inner-folds", "3", "--set", "models=[svm_rbf]", "--set", "C.svm_rbf=[1000.0]",
                 "--out", str(out)]) == 0
    selection = pd.read_csv(out / "selection.csv")
    assert selection["recipe"].str.endswith("| augmented").sum() == (~selection["recipe"].str.endswith(
        "| augmented")).sum()  # every recipe with and without copies
    inner = selection[selection["recipe"].str.contains("svm_rbf C=1000 | augmented", regex=False)]
    assert len(inner) and inner["inner_macro_f1"].max() < 0.7  # inner test folds hold no copies either
    assert json.loads((out / "metrics.json").read_text())["pooled"]["accuracy"] < 0.6


@pytest.mark.ray
def test_augmented_training_needs_an_augmented_store(store, tmp_path, capsys):
    assert main(["-q", "train", "--store", str(store), "--features", "mfcc", "--model", "sklearn_logreg",
                 "--augmented", "--out", str(tmp_path / "r")]) == 2
    assert "has no augmented copies; extract it with --augment" in capsys.readouterr().err
    assert main(["-q", "train", "--store", str(store), "--features", "mfcc", "--model", "mlp", "--augmented", "both",
                 "--out", str(tmp_path / "r2")]) == 2
    assert "--augmented both lets --auto choose" in capsys.readouterr().err


def readme_commands(title: str) -> list[list[str]]:
    from tests.test_loco import readme_commands as commands

    return commands(title)


@pytest.mark.ray
@pytest.mark.slow
def test_readme_augmentation_commands(ray_local, tmp_path, monkeypatch):
    """The README's augmentation commands, as written, on 40 EMO-DB clips (per speaker: one positive,
    one neutral, two negative)."""
    emodb_manifest()
    monkeypatch.chdir(tmp_path)
    m = pd.read_csv(EMODB / "manifest_sentiment.csv", dtype={"speaker": str})
    m = pd.concat([m[m["label"] == label].groupby("speaker").head(k)
                   for label, k in (("positive", 1), ("neutral", 1), ("negative", 2))]).reset_index(drop=True)
    Path("emodb").mkdir()
    m["path"] = [str((EMODB / p).resolve()) for p in m["path"]]
    m.to_csv("emodb/manifest.csv", index=False)
    commands = readme_commands("### augmentation: copies inside training folds")
    assert [c[1] for c in commands] == ["extract", "inspect", "train", "train"]
    for argv in commands:
        if argv[1] == "extract":
            argv = [*argv, "--allow-root", str(EMODB.resolve())]  # (the corpus lies outside the manifest's folder)
        assert main(["-q", *argv[1:]]) == 0, argv
    one = json.loads(Path("runs/svm_aug/fold-1/metrics.json").read_text())
    assert one["audit"]["augmented_copies"]["train"] > 0 and one["audit"]["augmented_copies"]["test"] == 0
    auto = pd.read_csv("runs/auto_aug/selection.csv")
    assert auto["recipe"].str.endswith("| augmented").any() and not auto["recipe"].str.endswith("| augmented").all()
    # evaluating a model trained with copies extracts INPUT without any
    assert main(["-q", "evaluate", "runs/svm_aug", "emodb/manifest.csv", "--allow-root", str(EMODB.resolve()),
                 "--out", "runs/eval"]) == 0
    from albsent.store import Store
    from albsent.store.store import describe

    assert describe(Store("runs/eval/store"))["augmented_rows"] == 0
    assert json.loads(Path("runs/eval/metrics.json").read_text())["n"] == 40
    shutil.rmtree("stores")


def test_dry_run_counts_the_copies(corpus):
    from albsent.config import build
    from albsent.features.config import ExtractConfig
    from albsent.pipeline.plan import format_plan, plan

    plain = plan(str(corpus), ExtractConfig(), sample_s=1.0)
    aug = plan(str(corpus), build(ExtractConfig, {"augment": {"copies": 2, "gain_db": 3.0}}), sample_s=1.0)
    assert aug["rows"] == 3 * plain["rows"] and aug["audio_h"] == plain["audio_h"]
    assert aug["store_bytes"] == pytest.approx(3 * plain["store_bytes"], rel=0.01)
    assert "2 augmented copies per clip" in format_plan(aug) and "augmented" not in format_plan(plain)


@pytest.mark.ray
@pytest.mark.slow
def test_jobs_extract_augmented_and_train_on_copies_as_the_cli_does(corpus, ray_local, tmp_path, capsys):
    from tests.test_jobs import run_job, same_metrics, write

    store = tmp_path / "store"
    job = write(tmp_path, {"input": str(corpus), "out": str(store), "features": ["mfcc"],
                           "augment": {"copies": 1, "gain_db": 6.0, "snr_db": [10.0, 20.0]}})
    assert run_job("extract", ["--config", job]) == 0
    assert _rows(store)["augment_of"].notna().sum() == 24
    flags = ["--store", str(store), "--features", "mfcc", "--model", "sklearn_logreg", "--folds", "2", "--set",
             "split.val_fraction=0"]
    assert main(["-q", "train", *flags, "--augmented", "--out", str(tmp_path / "cli")]) == 0
    assert run_job("train", ["--set", f"out={tmp_path / 'job'}", "--set", f"store={store}", "--set", "features=mfcc",
                             "--set", "model=sklearn_logreg", "--set", "split.folds=2", "--set", "split.val_fraction=0",
                             "--set", "augmented=true"]) == 0
    same_metrics(tmp_path / "cli" / "metrics.json", tmp_path / "job" / "metrics.json")
    fold = json.loads((tmp_path / "job" / "fold-1" / "metrics.json").read_text())
    assert fold["audit"]["augmented_copies"]["train"] == fold["audit"]["rows"]["train"] + fold["audit"]["rows"]["val"]


def test_missing_audiomentations_is_one_error_before_any_work(corpus, tmp_path, monkeypatch):
    import sys

    from albsent.config import build
    from albsent.features.config import ExtractConfig
    from albsent.pipeline.extract import prepare

    monkeypatch.setitem(sys.modules, "audiomentations", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'albsent\[augment\]'"):
        prepare(str(corpus), str(tmp_path / "store"), build(ExtractConfig, {"augment": {"copies": 1, "gain_db": 3}}))
    assert not (tmp_path / "store").exists()
