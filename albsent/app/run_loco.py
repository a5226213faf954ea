"""Leave-one-corpus-out (`albsent train --stores A B C --loco`, jobs/train.py with `loco: true`):
for each corpus, train on the others (one recipe, or the automatic selection, which then selects
on the training corpora only) and score the held-out corpus as `albsent evaluate` does.

    DIR/NAME/train_store/   the other corpora's rows (albsent.train.loco.merge_stores)
    DIR/NAME/run/           the run trained on them (as `albsent train --out`)
    DIR/NAME/metrics.json, predictions.csv, confusion_matrix.png   the held-out corpus scored
    DIR/metrics.json        per held-out corpus, their mean, and pooled over every held-out utterance
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

log = logging.getLogger(__name__)


def run_loco(config, stores: list[str], out: str, label_map: dict[str, str] | None = None, overwrite: bool = False,
             address: str | None = None, **flags) -> dict:
    """config: a TrainConfig (one recipe) or an AutoConfig (selection); its `store` is ignored.
    Every check runs before anything is written; returns DIR/metrics.json's content."""
    from albsent.app.run_train import fresh_out
    from albsent.train.loco import check_corpora

    label_map = dict(label_map or {})
    auto = not hasattr(config, "model")
    specs = list(config.features) if auto else [config.features]
    checked = {**check_corpora(stores, specs, label_map), "stores": list(stores)}
    fresh_out(out, overwrite, **flags)
    results = [_held_out(config, stores, k, checked["names"], Path(out), label_map, auto, address)
               for k in range(len(stores))]
    return _summary(results, checked, Path(out), label_map, auto)


def _held_out(config, stores: list[str], k: int, names: list[str], out: Path, label_map: dict, auto: bool,
              address: str | None) -> tuple[str, object, dict]:
    from albsent.train.evaluate import score_store, write_evaluation
    from albsent.train.loco import merge_stores

    name, here = names[k], out.absolute() / names[k]
    rest = [i for i in range(len(stores)) if i != k]
    train_store = merge_stores([stores[i] for i in rest], [names[i] for i in rest], str(here / "train_store"),
                               label_map)
    run = here / "run"
    if auto:
        from albsent.app.run_auto import run_auto_on_ray

        run_auto_on_ray(replace(config, store=train_store), run, address=address)
    else:
        from albsent.train import run_training

        run_training(replace(config, store=train_store), run)
    scored = score_store(str(run), stores[k], label_map)
    extra = {"evaluated": {"run": str(run), "input": stores[k], "label_map": label_map},
             "loco": {"held_out": name, "trained_on": [names[i] for i in rest]}}
    metrics = write_evaluation(scored, here, extra, f"trained on {', '.join(names[i] for i in rest)}, scored on {name}")
    return name, scored, metrics


def _summary(results: list, checked: dict, out: Path, label_map: dict, auto: bool) -> dict:
    import numpy as np

    from albsent.train import artifacts
    from albsent.train.metrics import compute_metrics

    labels = sorted({lab for _, s, _ in results for lab in s.labels})
    y_true = [y for _, s, _ in results for y in s.y_true]
    y_pred = [s.labels[i] for _, s, _ in results for i in s.probs.argmax(1)]
    per = {name: {k: m[k] for k in ("accuracy", "macro_f1", "balanced_accuracy", "n")} for name, _, m in results}
    summary = {"protocol": "leave one corpus out: for each corpus, trained on the others "
                           f"({'automatic selection on them only' if auto else 'one recipe'}), scored on it",
               "corpora": dict(zip(checked["names"], checked["stores"])),
               "feature_groups": checked["groups"], "label_map": label_map, "held_out": per,
               "mean_macro_f1": float(np.mean([p["macro_f1"] for p in per.values()])),
               "pooled": compute_metrics(y_true, y_pred, labels)}
    summary.update({k: summary["pooled"][k] for k in ("accuracy", "macro_f1", "balanced_accuracy", "per_class",
                                                      "confusion_matrix", "labels", "n")})
    summary["model"] = "auto" if auto else results[0][2]["model"]
    summary["features"] = results[0][2]["features"] if not auto else "selected per held-out corpus"
    summary["evaluated"] = {"run": "leave-one-corpus-out", "input": ", ".join(checked["names"])}
    artifacts.write_json(summary, out / "metrics.json")
    artifacts.plot_confusion(summary["confusion_matrix"], labels, out / "confusion_matrix.png",
                             "leave one corpus out (pooled)")
    return summary
