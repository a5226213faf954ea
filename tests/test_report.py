"""`albsent report` tables from run folders (hand-written metrics, no training)."""

from __future__ import annotations

import json

import pytest
import yaml

from albsent.errors import InputError
from albsent.report.tables import compare_runs, format_metrics, frame_table, markdown_table
from albsent.train.metrics import aggregate, compute_metrics

LABELS = ["negative", "neutral", "positive"]


def write_run(folder, metrics, config):
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return folder


def test_table_rows_per_run_with_fold_std(tmp_path):
    one = compute_metrics(["negative", "neutral", "positive", "positive"],
                          ["negative", "neutral", "negative", "positive"], LABELS)
    one["group_by"] = "speaker"
    folds = aggregate([one, compute_metrics(["negative", "neutral"], ["negative", "negative"], LABELS)])
    folds["group_by"] = "speaker"
    a = write_run(tmp_path / "mfcc_mlp", one, {"features": "mfcc", "model": "mlp", "class_weighted": False})
    b = write_run(tmp_path / "cv", folds, {"features": "mfcc:seq", "model": "bilstm_attn", "class_weighted": True})
    lines = compare_runs([a, b]).splitlines()
    assert len(lines) == 4 and lines[0].count("|") == 14 and "pooled macro-F1" in lines[0]
    assert lines[2].startswith("| mfcc_mlp | `mfcc` | mlp | no | hold-out, by speaker | 4 | 0.750 | ")
    assert "2-fold, by speaker" in lines[3] and f"{folds['macro_f1']:.3f} ± {folds['macro_f1_std']:.3f}" in lines[3]
    text = format_metrics(folds, "title")
    assert "mean ± std over 2 folds" in text and "positive" in text


def test_missing_run_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no metrics.json"):
        compare_runs([tmp_path])


def test_one_markdown_renderer_for_run_and_corpus_tables():
    assert markdown_table(["a", "b"], [[1, "x|y"], ["two\nlines", None]]).splitlines() == [
        "| a | b |", "|---|---|", "| 1 | x\\|y |", "| two lines | None |"]
    import pandas as pd

    df = pd.DataFrame({"files": [2.0, 3.0], "hours": [0.12345, float("nan")]},
                      index=pd.Index(["neg", "pos"], name="label"))
    assert frame_table(df, digits=3).splitlines() == [
        "| label | files | hours |", "|---|---|---|", "| neg | 2 | 0.123 |", "| pos | 3 | – |"]
