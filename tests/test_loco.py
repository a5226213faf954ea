"""Leave-one-corpus-out (`albsent train --stores A B --loco`) on two small stores of real audio:
each corpus scored by a run trained on the other, as `albsent evaluate` scores it; one recipe,
the automatic selection and the Ray job; a shared label_map; stores of another config or sample
rate, and audio shared across corpora, refused before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from albsent.cli import main
from tests.test_jobs import last_json, run_job

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("torch_one_thread")]


def build_store(manifest: Path, out: Path, data: dict | None = None) -> Path:
    """The extraction worker on every input in one block (what each Ray task runs), Ray-free."""
    from albsent.config import build, to_dict
    from albsent.features.config import ExtractConfig
    from albsent.pipeline.extract import prepare
    from albsent.pipeline.worker import ExtractBlock

    config = build(ExtractConfig, {"features": ["mfcc"], **(data or {})})
    p = prepare(str(manifest), str(out), config)
    ExtractBlock(to_dict(config), p.store.uri, p.meta)(p.items)
    return out


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, Path]:
    """Two corpora (other seeds and speakers) as MFCC stores `a` and `b`; `b_renamed`: b's files with
    other class names; the manifests beside them."""
    from albsent.testing.synth import make_corpus

    root = tmp_path_factory.mktemp("loco")
    ma = make_corpus(root / "ca", n_per_class=2, speakers=3, duration_s=(0.8, 1.2), seed=11)
    mb = make_corpus(root / "cb", n_per_class=2, speakers=3, duration_s=(0.8, 1.2), seed=12)
    m = pd.read_csv(mb)
    m["path"] = [str((mb.parent / p).resolve()) for p in m["path"]]
    m.assign(label=m["label"].map({"positive": "happy", "neutral": "calm", "negative": "angry"})).to_csv(
        root / "renamed.csv", index=False)
    stores = root / "stores"
    return {"a": build_store(ma, stores / "a"), "b": build_store(mb, stores / "b"),
            "b_renamed": build_store(root / "renamed.csv", stores / "b_renamed",
                                     {"allowed_roots": [str(mb.parent)]}),
            "manifest_a": ma, "manifest_b": mb, "root": root}


def test_loco_one_recipe_scores_each_corpus_as_evaluate_does(corpora, tmp_path, capsys):
    out = tmp_path / "loco"
    a, b = corpora["a"], corpora["b"]
    assert main(["-q", "train", "--stores", str(a), str(b), "--loco", "--features", "mfcc", "--model",
                 "sklearn_logreg", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == json.loads((out / "metrics.json").read_text())
    assert set(summary["held_out"]) == {"a", "b"} and summary["n"] == 36 and summary["corpora"]["a"] == str(a)
    for name, other in (("a", "b"), ("b", "a")):
        m = json.loads((out / name / "metrics.json").read_text())
        assert m["loco"] == {"held_out": name, "trained_on": [other]} and m["n"] == 18
        assert m["macro_f1"] == summary["held_out"][name]["macro_f1"]
        assert (out / name / "predictions.csv").is_file() and (out / name / "confusion_matrix.png").is_file()
        # the training store holds the other corpus only, speakers prefixed with its name
        from albsent.store import Store

        speakers = set(Store(str(out / name / "train_store")).read(["speaker"])["speaker"].to_pylist())
        assert speakers == {f"{other}/s0", f"{other}/s1", f"{other}/s2"}
        # `albsent evaluate` of the held-out run on the held-out store: the same figures
        assert main(["-q", "evaluate", str(out / name / "run"), str(corpora[name]), "--out",
                     str(tmp_path / f"eval_{name}")]) == 0
        again = json.loads((tmp_path / f"eval_{name}" / "metrics.json").read_text())
        assert again["confusion_matrix"] == m["confusion_matrix"] and again["per_speaker"] == m["per_speaker"]
    assert summary["mean_macro_f1"] == pytest.approx((summary["held_out"]["a"]["macro_f1"]
                                                      + summary["held_out"]["b"]["macro_f1"]) / 2)
    capsys.readouterr()
    assert main(["report", str(out), str(out / "a")]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "| leave one corpus out: a, b | 36 |" in table[2] and "| trained on b, scored on a | 18 |" in table[3]


def test_loco_label_map(corpora, tmp_path, capsys):
    a, renamed = corpora["a"], corpora["b_renamed"]
    out = tmp_path / "nomap"
    assert main(["-q", "train", "--stores", str(a), str(renamed), "--loco", "--features", "mfcc", "--model",
                 "sklearn_logreg", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "class(es) 'negative', 'neutral', 'positive' are in no other corpus" in err and not out.exists()
    out = tmp_path / "mapped"
    assert main(["-q", "train", "--stores", str(a), str(renamed), "--loco", "--features", "mfcc", "--model",
                 "sklearn_logreg", "--out", str(out), "--label-map", "happy=positive", "--label-map", "calm=neutral",
                 "--label-map", "angry=negative"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["labels"] == ["negative", "neutral", "positive"] and m["n"] == 36


def test_loco_refuses_other_configs_and_shared_audio(corpora, tmp_path, capsys):
    a, b, root = corpora["a"], corpora["b"], corpora["root"]
    base = ["-q", "train", "--loco", "--features", "mfcc", "--model", "sklearn_logreg"]
    cases = {
        "n_mfcc": (build_store(corpora["manifest_b"], tmp_path / "b13", {"mfcc": {"n_mfcc": 13}}),
                   "mfcc.n_mfcc: 40 -> 13"),
        "rate": (build_store(corpora["manifest_b"], tmp_path / "b8k", {"audio": {"sample_rate_hz": 8000}}),
                 "audio.sample_rate_hz: 16000 -> 8000"),
    }
    m = pd.read_csv(corpora["manifest_b"])
    m["path"] = [str((corpora["manifest_b"].parent / p).resolve()) for p in m["path"]]
    shutil.copy(corpora["manifest_a"].parent / "wav" / "s0_neutral_0.wav", root / "copy.wav")
    pd.concat([m, pd.DataFrame([{"path": str(root / "copy.wav"), "label": "neutral", "speaker": "s0"}])]).to_csv(
        tmp_path / "shared.csv", index=False)
    cases["shared"] = (build_store(tmp_path / "shared.csv", tmp_path / "bshared",
                                   {"allowed_roots": [str(root)]}), "shares audio with another corpus")
    for name, (store, expected) in cases.items():
        out = tmp_path / f"out_{name}"
        assert main([*base, "--stores", str(a), str(store), "--out", str(out)]) == 2, name
        assert expected in capsys.readouterr().err and not out.exists(), name
    assert main([*base, "--stores", str(a), "--out", str(tmp_path / "one")]) == 2
    assert "--loco needs at least two stores" in capsys.readouterr().err
    assert main([*base, "--stores", str(a), str(b), "--features", "shortterm", "--out", str(tmp_path / "x")]) == 2
    assert "no feature group holds the columns of shortterm" in capsys.readouterr().err


@pytest.mark.ray
def test_loco_auto_and_the_job(corpora, ray_local, tmp_path, capsys):
    """The selection runs on the training corpus only (its run's store is the merged training
    store); the train job with `loco: true` gives what the command gives."""
    a, b = corpora["a"], corpora["b"]
    auto = tmp_path / "auto.yaml"
    auto.write_text("folds: 2\ninner_folds: 2\nmodels: [sklearn_logreg]\nC: {sklearn_logreg: [0.1, 1.0]}\n")
    out = tmp_path / "auto"
    assert main(["-q", "train", "--stores", str(a), str(b), "--loco", "--auto", "--config", str(auto), "--out",
                 str(out)]) == 0
    for name, other in (("a", "b"), ("b", "a")):
        run = json.loads((out / name / "run" / "metrics.json").read_text())
        assert run["store"] == str(out / name / "train_store") and (out / name / "run" / "ensemble.json").is_file()
        assert run["n"] == 18  # the selection's outer folds: the training corpus' 18 utterances only
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["model"] == "auto" and summary["n"] == 36

    cli_out, job_out = tmp_path / "cli", tmp_path / "job"
    assert main(["-q", "train", "--stores", str(a), str(b), "--loco", "--features", "mfcc", "--model",
                 "sklearn_logreg", "--out", str(cli_out)]) == 0
    assert run_job("train", ["--set", f"out={job_out}", "--set", "loco=true", "--set", f"stores=[{a}, {b}]",
                             "--set", "features=mfcc", "--set", "model=sklearn_logreg"]) == 0
    result = last_json(capsys)
    assert result["held_out"] == json.loads((cli_out / "metrics.json").read_text())["held_out"]


def readme_commands(title: str) -> list[list[str]]:
    """The `albsent ...` lines of the first bash block under the README heading `title`."""
    import shlex

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text[text.index(title):].split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line.split("  #")[0]) for line in block.splitlines() if line.startswith("albsent ")]


@pytest.mark.ray
def test_readme_evaluate_and_loco(corpora, ray_local, tmp_path, monkeypatch, capsys):
    """The README's commands, as written, on two small corpora laid out as it names them."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(corpora["a"], "stores/emodb")
    shutil.copytree(corpora["b"], "stores/emospeech")
    shutil.copytree(corpora["manifest_b"].parent, "emospeech")
    for label, folder in (("positive", "happiness"), ("negative", "anger"), ("neutral", "neutral")):
        Path("emotions", folder).mkdir(parents=True)
        for wav in Path("emospeech/wav").glob(f"*_{label}_*.wav"):
            shutil.copy(wav, Path("emotions", folder, wav.name))
    commands = readme_commands("### evaluate and leave-one-corpus-out")
    assert len(commands) == 7 and {c[1] for c in commands} == {"train", "evaluate", "report"}
    for argv in commands:
        assert argv[0] == "albsent" and main(["-q", *argv[1:]]) == 0, argv
    runs = Path("runs")
    direct = json.loads((runs / "emodb_on_emospeech" / "metrics.json").read_text())
    stored = json.loads((runs / "emodb_on_emospeech_store" / "metrics.json").read_text())
    emotions = json.loads((runs / "emodb_on_emotions" / "metrics.json").read_text())
    assert direct["n"] == stored["n"] == emotions["n"] == 18
    assert direct["confusion_matrix"] == stored["confusion_matrix"]
    # a folder has no speakers: the per-speaker model falls back to the training statistics (as predict does)
    assert emotions["labels"] == direct["labels"] and emotions["per_speaker"] == {}
    assert "cross-corpus: emodb on manifest.csv" in capsys.readouterr().out
    for loco in ("loco", "loco_svm"):
        summary = json.loads((runs / loco / "metrics.json").read_text())
        assert set(summary["held_out"]) == {"emodb", "emospeech"} and summary["n"] == 36
    assert (runs / "loco" / "emodb" / "run" / "ensemble.json").is_file()
