"""Markdown tables: the one renderer (`markdown_table`, `frame_table` for a pandas DataFrame)
behind every table albsent writes, and the tables of training runs (the Albanian paper's
Tables 3-5, with mean ± std over folds where a run was cross-validated)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from albsent.errors import InputError


def markdown_table(head: list[str], rows: list[list]) -> str:
    """A GitHub Markdown table: `| a | b |`, `|---|---|`, one line per row. Cells are str()-ed,
    with `|` escaped and newlines made spaces, so a cell never breaks the table."""

    def line(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    return "\n".join([line(head), "|" + "|".join("---" for _ in head) + "|"] + [line(r) for r in rows])


def frame_table(df, index: str = "", digits: int = 3) -> str:
    """A pandas DataFrame as `markdown_table`: the index as the first column (headed `index`,
    default its name), floats with `digits` decimals (a whole-number float column as integers)."""

    def column(values) -> list[str]:
        whole = all(v == int(v) for v in values if isinstance(v, float) and math.isfinite(v))
        return [str(v) if not isinstance(v, float) else "–" if v != v else f"{v:.{0 if whole else digits}f}"
                for v in values]

    cols = [column(df.index.tolist())] + [column(df[c].astype(object).tolist()) for c in df.columns]
    head = [index or (df.index.name or "")] + [str(c) for c in df.columns]
    return markdown_table(head, [list(r) for r in zip(*cols)])


def load_run(run: str | Path) -> dict:
    """{"name", "path", "config", "metrics"} of a run folder written by `albsent train`."""
    run = Path(run)
    path = run / "metrics.json"
    if not path.is_file():
        raise InputError(f"{run}: no metrics.json; expected the --out folder of `albsent train`")
    metrics = json.loads(path.read_text())
    config = yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").is_file() else {}
    return {"name": run.name, "path": str(run), "config": config or {}, "metrics": metrics}


def cell(metrics: dict, key: str, std_key: str | None = None) -> str:
    value = metrics.get(key)
    if value is None:
        return "–"
    std = metrics.get(std_key or f"{key}_std")
    return f"{value:.3f} ± {std:.3f}" if std is not None and metrics.get("folds") else f"{value:.3f}"


def _evaluation(run: dict) -> str:
    m, split = run["metrics"], run["config"].get("split", {})
    if isinstance(m.get("loco"), dict):  # one held-out corpus of `albsent train --loco`
        return f"trained on {', '.join(m['loco']['trained_on'])}, scored on {m['loco']['held_out']}"
    if m.get("held_out"):  # the summary of `albsent train --loco`
        return f"leave one corpus out: {', '.join(m['held_out'])}"
    if isinstance(m.get("evaluated"), dict):  # `albsent evaluate`: a run scored on another corpus
        return f"cross-corpus: {Path(m['evaluated']['run']).name} on {Path(m['evaluated']['input']).name}"
    by = m.get("group_by", "?")
    if split.get("from_column"):
        return "store split column"
    return f"{m['folds']}-fold, by {by}" if m.get("folds") else f"hold-out, by {by}"


def _with_baselines(loaded: list[dict]) -> list[dict]:
    """A probe run (`albsent probe`) also holds the baseline trained on the same labeled subset
    (metrics["baseline"]): show it as its own row right under the probe."""
    out = []
    for r in loaded:
        out.append(r)
        b = r["metrics"].get("baseline")
        if isinstance(b, dict):
            out.append({**r, "name": f"{r['name']} (baseline)",
                        "metrics": {"group_by": r["metrics"].get("group_by"), **b},
                        "config": {"features": b.get("features", "raw"), "model": "baseline: linear on raw features"}})
    return out


def _model_name(model) -> str:
    """An ensemble's `auto: a + b + a + ...` as `auto: 3 members (a ×2, b)`; others unchanged."""
    model = str(model)
    if not model.startswith("auto: ") or " + " not in model:
        return model
    members = model[len("auto: "):].split(" + ")
    counts = {m: members.count(m) for m in dict.fromkeys(members)}
    return f"auto: {len(members)} members (" + ", ".join(f"{m} ×{n}" if n > 1 else m for m, n in counts.items()) + ")"


def summary_rows(runs: list) -> tuple[list[str], list[list[str]]]:
    """The comparison table's header and rows (column 1, `features`, is a feature spec): the one
    content behind the Markdown table and the HTML report's summary. `runs`: run folders, or
    runs already read by `load_run`."""
    loaded = _with_baselines([r if isinstance(r, dict) else load_run(r) for r in runs])
    labels: list[str] = []
    for r in loaded:
        labels += [lab for lab in r["metrics"].get("labels", []) if lab not in labels]
    head = ["run", "features", "model", "class-weighted", "evaluation", "n", "accuracy", "macro-F1", "pooled macro-F1",
            "balanced acc."]
    head += [f"F1 {lab}" for lab in labels]
    rows = []
    for r in loaded:
        m, c = r["metrics"], r["config"]
        pc = m.get("per_class", {})
        feats = c.get("features") if isinstance(c.get("features"), str) else m.get("features", "?")
        model = _model_name(c.get("model", m.get("model", "?")))
        row = [r["name"], str(feats), model, "yes" if c.get("class_weighted") else "no",
               _evaluation(r), str(m.get("n", "")), cell(m, "accuracy"), cell(m, "macro_f1"),
               f"{m['pooled']['macro_f1']:.3f}" if m.get("pooled") else "–", cell(m, "balanced_accuracy")]
        row += [cell({**pc[lab], "folds": m.get("folds")}, "f1") if lab in pc else "–" for lab in labels]
        rows.append(row)
    return head, rows


def compare_runs(runs: list[str | Path]) -> str:
    head, rows = summary_rows(runs)
    return markdown_table(head, [[r[0], f"`{r[1]}`", *r[2:]] for r in rows])


def format_metrics(metrics: dict, title: str = "") -> str:
    """A few lines for the terminal after `albsent train`."""
    labels = metrics.get("labels", [])
    out = [title] if title else []
    fold = f" (mean ± std over {metrics['folds']} folds)" if metrics.get("folds") else ""
    out.append(f"accuracy {cell(metrics, 'accuracy')}  macro-F1 {cell(metrics, 'macro_f1')}  "
               f"balanced accuracy {cell(metrics, 'balanced_accuracy')}{fold}")
    pooled = metrics.get("pooled")
    if pooled:
        out.append(f"pooled over all out-of-fold predictions: accuracy {pooled['accuracy']:.3f}  "
                   f"macro-F1 {pooled['macro_f1']:.3f}  balanced accuracy {pooled['balanced_accuracy']:.3f}")
    width = max([len(lab) for lab in labels] + [5])
    out.append(f"{'label':<{width}}  precision  recall  f1     support")
    for lab in labels:
        pc = metrics["per_class"][lab]
        out.append(f"{lab:<{width}}  {pc['precision']:.3f}      {pc['recall']:.3f}   {pc['f1']:.3f}  {pc['support']}")
    out.append("confusion matrix (rows true, columns predicted; " + ", ".join(labels) + "):")
    out += ["  " + " ".join(f"{v:5d}" for v in row) for row in metrics.get("confusion_matrix", [])]
    return "\n".join(out)
