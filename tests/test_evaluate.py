"""`albsent evaluate RUN INPUT --out DIR` on real audio: a run trained on one synthetic corpus scored
on another (a manifest extracted on Ray with the run's config, or a store used as it is), with the
same probabilities as `albsent predict`; a broken file listed and the rest scored; label_map; a
class the run never saw and a store of another config refused before anything is written; the
Ray job gives what the command gives; an automatic-selection run (ensemble) works the same way."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from albsent.cli import main
from tests.test_jobs import last_json, run_job

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.usefixtures("torch_one_thread")]


@pytest.fixture(scope="module")
def run_dir(store, tmp_path_factory) -> Path:
    """Per-speaker-normalised logistic regression trained on the session `store` (speakers s0, s1)."""
    run = tmp_path_factory.mktemp("runs") / "logreg"
    assert main(["-q", "train", "--store", str(store), "--features", "mfcc+shortterm", "--model", "sklearn_logreg",
                 "--speaker-norm", "--split", "utterance", "--out", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def other(tmp_path_factory) -> dict:
    """Another corpus (3 speakers, other seed): its manifest plus one that also lists a text file
    named .wav; and the same files with other class names."""
    from albsent.testing.synth import make_corpus

    root = tmp_path_factory.mktemp("other")
    manifest = make_corpus(root, n_per_class=2, speakers=3, duration_s=(0.8, 1.2), seed=7)
    (root / "wav" / "broken.wav").write_text("not audio at all\n" * 10)
    m = pd.read_csv(manifest)
    pd.concat([m, pd.DataFrame([{"path": "wav/broken.wav", "label": "neutral", "speaker": "s9"}])]).to_csv(
        root / "with_broken.csv", index=False)
    m.assign(label=m["label"].map({"positive": "happy", "neutral": "calm", "negative": "angry"})).to_csv(
        root / "renamed.csv", index=False)
    return {"manifest": manifest, "with_broken": root / "with_broken.csv", "renamed": root / "renamed.csv",
            "n": len(m)}


def read_csv(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def paths_of(store: Path) -> dict[str, str]:
    from albsent.store import Store

    t = Store(str(store)).read(["id", "path"])
    return dict(zip(t["id"].to_pylist(), t["path"].to_pylist()))


def predicted(run: Path, manifest: Path, capsys) -> dict[str, dict]:
    """`albsent predict RUN MANIFEST --json`: {resolved path: prediction} of the files it could use."""
    capsys.readouterr()
    main(["predict", str(run), str(manifest), "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    return {str(Path(r["path"]).resolve()): r for r in rows if not r.get("error")}


def test_evaluate_a_manifest_lists_a_broken_file_and_equals_predict(run_dir, other, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["-q", "evaluate", str(run_dir), str(other["with_broken"]), "--out", str(out), "--json"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert json.loads(capsys.readouterr().out) == metrics
    assert metrics["n"] == other["n"] == 18 and metrics["labels"] == ["negative", "neutral", "positive"]
    assert metrics["quarantined"]["count"] == 1
    (bad,) = metrics["quarantined"]["files"]
    assert bad["path"].endswith("broken.wav") and bad["reason"] == "not_audio" and "broken.wav" in bad["error"]
    assert set(metrics["per_speaker"]) == {"s0", "s1", "s2"}
    assert all(m["n"] == 6 for m in metrics["per_speaker"].values())
    assert sum(sum(r) for r in metrics["confusion_matrix"]) == 18
    assert {"accuracy", "macro_f1", "balanced_accuracy", "per_class"} <= set(metrics)
    assert (out / "confusion_matrix.png").stat().st_size > 1000 and (out / "store" / "_albsent.json").is_file()
    assert metrics["evaluated"]["run"] == str(run_dir) and metrics["models"][0].startswith("sklearn_logreg on ")

    # the same files through `albsent predict` (speaker column -> per-speaker statistics): same labels and probabilities
    rows = read_csv(out / "predictions.csv")
    paths = paths_of(out / "store")
    preds = predicted(run_dir, other["manifest"], capsys)
    assert len(rows) == len(preds) == 18
    for row in rows:
        pred = preds[str(Path(paths[row["id"]]).resolve())]
        assert pred["label"] == row["pred"] and row["group"] in {"s0", "s1", "s2"}
        for lab, p in pred["probs"].items():
            assert p == pytest.approx(float(row[f"p_{lab}"]), abs=1e-5)

    # the store it extracted, given as INPUT, is used as it is: the same scores
    again = tmp_path / "again"
    assert main(["-q", "evaluate", str(run_dir), str(out / "store"), "--out", str(again)]) == 0
    m2 = json.loads((again / "metrics.json").read_text())
    assert {k: m2[k] for k in ("accuracy", "macro_f1", "per_speaker", "confusion_matrix")} == \
        {k: metrics[k] for k in ("accuracy", "macro_f1", "per_speaker", "confusion_matrix")}
    assert not (again / "store").exists() and m2["quarantined"]["count"] == 1

    # report: the evaluation beside the training run
    capsys.readouterr()
    assert main(["report", str(run_dir), str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "| logreg |" in table[2] and table[3].startswith("| eval | ") and "on with_broken.csv" in table[3]
    # and in the HTML report: its summary row and its own section with the confusion matrix
    page = tmp_path / "report.html"
    assert main(["report", str(run_dir), str(out), "--html", str(page)]) == 0
    text = page.read_text()
    assert "cross-corpus: " in text and "on with_broken.csv" in text and "<h2>Run eval</h2>" in text
    assert text.count("data:image/png;base64,") >= 2


def test_label_map_and_a_class_the_run_never_saw(run_dir, other, tmp_path, capsys):
    renamed = other["renamed"]
    # without a map: every foreign class named, nothing written
    assert main(["-q", "evaluate", str(run_dir), str(renamed), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "label(s) 'angry', 'calm', 'happy' are not classes of the run (negative, neutral, positive)" in err
    assert not (tmp_path / "a").exists()
    # a partial map: the one left is named
    assert main(["-q", "evaluate", str(run_dir), str(renamed), "--out", str(tmp_path / "b"), "--label-map",
                 "happy=positive", "--label-map", "angry=negative"]) == 2
    assert "label(s) 'calm' are not classes" in capsys.readouterr().err and not (tmp_path / "b").exists()
    # mapped (flag and --set): the same scores as the original names
    out = tmp_path / "mapped"
    assert main(["-q", "evaluate", str(run_dir), str(renamed), "--out", str(out), "--label-map", "happy=positive",
                 "--label-map", "angry=negative", "--set", "label_map.calm=neutral"]) == 0
    mapped = json.loads((out / "metrics.json").read_text())
    assert main(["-q", "evaluate", str(run_dir), str(other["manifest"]), "--out", str(tmp_path / "plain")]) == 0
    plain = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    assert mapped["confusion_matrix"] == plain["confusion_matrix"] and mapped["n"] == 18
    assert mapped["evaluated"]["label_map"] == {"happy": "positive", "angry": "negative", "calm": "neutral"}


def test_a_store_of_another_config_is_refused(run_dir, other, tmp_path, capsys):
    from albsent.config import build, to_dict
    from albsent.features.config import ExtractConfig
    from albsent.pipeline.extract import prepare
    from albsent.pipeline.worker import ExtractBlock

    config = build(ExtractConfig, {"mfcc": {"n_mfcc": 13}})
    p = prepare(str(other["manifest"]), str(tmp_path / "st13"), config)
    ExtractBlock(to_dict(config), p.store.uri, p.meta)(p.items)
    out = tmp_path / "eval"
    assert main(["-q", "evaluate", str(run_dir), str(tmp_path / "st13"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "extracted with another config than the store" in err and "mfcc.n_mfcc: 40 -> 13" in err
    assert not out.exists()


def test_evaluate_job_equals_the_command(run_dir, store, other, tmp_path, capsys):
    """The Ray job on the same run and input writes what `albsent evaluate` writes; an auto run
    (ensemble.json) is scored like any other, with predict's probabilities."""
    cli_out, job_out = tmp_path / "cli", tmp_path / "job"
    assert main(["-q", "evaluate", str(run_dir), str(store), "--out", str(cli_out)]) == 0
    assert run_job("evaluate", ["--set", f"run={run_dir}", "--set", f"input={store}", "--set", f"out={job_out}"]) == 0
    result = last_json(capsys)
    assert result.pop("stage") == "evaluate" and result.pop("out") == str(job_out)
    assert result == json.loads((cli_out / "metrics.json").read_text())
    assert (cli_out / "predictions.csv").read_text() == (job_out / "predictions.csv").read_text()
    assert run_job("evaluate", ["--set", f"run={run_dir}", "--set", f"input={store}", "--set", f"out={job_out}"]) == 2
    assert "already holds files" in capsys.readouterr().err

    auto = tmp_path / "auto"
    (tmp_path / "auto.yaml").write_text("folds: 2\ninner_folds: 2\nfeatures: [mfcc, shortterm]\nmodels: "
                                        "[sklearn_logreg]\nC: {sklearn_logreg: [0.1, 1.0]}\nspeaker_norm: [false]\n")
    assert main(["-q", "train", "--auto", "--config", str(tmp_path / "auto.yaml"), "--store", str(store),
                 "--out", str(auto)]) == 0
    out = tmp_path / "auto_eval"
    assert main(["-q", "evaluate", str(auto), str(other["manifest"]), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 18 and len(metrics["models"]) >= 1 and metrics["quarantined"]["count"] == 0
    paths = paths_of(out / "store")
    preds = predicted(auto, other["manifest"], capsys)
    for row in read_csv(out / "predictions.csv"):
        pred = preds[str(Path(paths[row["id"]]).resolve())]
        assert pred["label"] == row["pred"]
        assert all(p == pytest.approx(float(row[f"p_{lab}"]), abs=1e-5) for lab, p in pred["probs"].items())


def test_a_synthetic_run_on_emodb(run_dir, tmp_path):
    """Real speech of another corpus: 4 clips per class of two EMO-DB speakers (when EMO-DB is
    present), its emotion column as the labels mapped to the run's classes."""
    from tests.conftest import emodb_manifest

    manifest = emodb_manifest()
    m = pd.read_csv(manifest)
    m = m[m["speaker"].astype(str).isin(["3", "03", "8", "08"])].groupby(["speaker", "label"]).head(2)
    m = m.assign(path=[str((manifest.parent / p).resolve()) for p in m["path"]], label=m["emotion"])
    m[["path", "label", "speaker"]].to_csv(tmp_path / "emodb.csv", index=False)
    maps = [f"--label-map={e}={s}" for e, s in pd.read_csv(manifest)[["emotion", "label"]].drop_duplicates().values]
    out = tmp_path / "eval"
    assert main(["-q", "evaluate", str(run_dir), str(tmp_path / "emodb.csv"), "--out", str(out),
                 "--allow-root", str(manifest.parent), *maps]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == len(m) == 12 and len(metrics["per_speaker"]) == 2
    assert sum(metrics["per_class"][lab]["support"] for lab in metrics["labels"]) == 12
