"""Classifier sweeps: each trial is a TrainConfig trained by the one `fit()` (reports per epoch),
or by `cross_validate()` (reports per fold); the best config is retrained on train+validation
and scored on the held-out test split, or on the same K folds.

Filters:  `features`  -> the kinds the sampled `model` reads (pooled / sequence / layers)
          `ssl_layer` -> the layers the sampled `ssl_model` has in the store (+ `all` for
                         torch models: a learned weighted layer sum)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from albsent.config import merge
from albsent.errors import ConfigError
from albsent.sweep.kinds.base import KINDS, SweepKind
from albsent.sweep.space import fill, placeholders


def template_kind(text: str) -> str:
    """Kind of a feature spec that may hold {placeholders} (tried with a name and a layer number)."""
    from albsent.dataset.spec import parse

    names = placeholders(text)
    for combo in itertools.product(("a", "1"), repeat=len(names)):
        try:
            return parse(fill(text, dict(zip(names, combo)))).kind
        except ConfigError:
            continue
    raise ConfigError(f"sweep space 'features': {text!r} is not a feature spec (see `albsent train --help`)")


@dataclass
class ClassifierFilter:
    base_model: str
    model_searched: bool
    ssl_layers: dict  # alias -> number of layers in the store
    deps = ("model", "ssl_model")  # keys the filter reads (enumerated with it)

    def __call__(self, key: str, choices: list, sampled: dict) -> tuple[list, str]:
        from albsent.models import check_compatible, get_model

        name = sampled.get("model", self.base_model)
        entry = get_model(name)
        ctx = ("sklearn" if entry.sklearn else entry.input_kind) if self.model_searched else ""
        if key == "features":
            keep = []
            for c in choices:
                try:
                    check_compatible(name, template_kind(str(c)), str(c))
                    keep.append(c)
                except ConfigError:
                    pass
            return keep, ctx
        if key == "ssl_layer":
            alias = sampled.get("ssl_model")
            n = self.ssl_layers.get(alias)
            if n is None:
                raise ConfigError(f"sweep space 'ssl_layer': the store has no SSL column for model {alias!r}; "
                                  f"it has {sorted(self.ssl_layers) or 'none'}")
            keep = [c for c in choices if (c == "all" and not entry.sklearn) or (isinstance(c, int) and 0 <= c < n)]
            return keep, f"{alias}{'-sk' if entry.sklearn else ''}"
        return choices, ""


def _val_loss(history: list[dict]) -> float:
    losses = [r["val_loss"] for r in history if "val_loss" in r]
    return float(min(losses)) if losses else float("nan")


def _row(res) -> dict:
    """The metrics of one fit(): validation (searched on), test (reported only); NaN where missing
    (the trainable drops NaN before reporting)."""
    val = res.val_metrics or {}
    return {"val_macro_f1": val.get("macro_f1", float("nan")), "val_accuracy": val.get("accuracy", float("nan")),
            "val_loss": _val_loss(res.history), "best_epoch": res.metrics["best_epoch"],
            **{f"test_{m}": res.metrics[m] for m in ("macro_f1", "accuracy", "balanced_accuracy")}}


@KINDS.register("classifier")
class ClassifierKind(SweepKind):
    metrics = {"val_macro_f1": "max", "val_loss": "min", "val_accuracy": "max"}
    columns = ("val_macro_f1", "val_accuracy", "val_loss", "test_macro_f1", "test_accuracy", "test_balanced_accuracy",
               "test_macro_f1_std", "best_epoch", "epochs_run", "folds")

    def target(self) -> type:
        from albsent.train.config import TrainConfig

        return TrainConfig

    def base(self, data: dict, store: str) -> dict:
        data = merge({"num_threads": 1}, data)  # deterministic and fast on shared CPUs
        if store:
            data["store"] = store
        return data

    def filters(self, config, params, info, store):
        from albsent.store.schema import ssl_layer_counts

        keys = {p.key for p in params}
        filt = ClassifierFilter(config.base_dict(store).get("model", "mlp"), "model" in keys, ssl_layer_counts(info))
        return {k: filt for k in ("features", "ssl_layer") if k in keys}

    def load(self, config, text, store):
        from albsent.dataset.data import load_data

        trial = config.trial_config({}, store)
        return load_data(store, text, trial.split.group_by, augmented=trial.augmented)

    def reports_per_trial(self, base_cfg, report_every):
        return base_cfg.split.folds if base_cfg.split.folds > 1 else base_cfg.epochs // report_every + 1

    def trial(self, cfg, data, reporter):
        """fit() (one split, reports per epoch) or fit() per fold (reports per fold); fold statistics
        come from albsent.train.cv (fold_means, and cross_validate's std and pooled metrics)."""
        from albsent.train.cv import cross_validate, fold_means
        from albsent.train.fit import fit

        if cfg.split.folds <= 1:
            res = fit(cfg, data, on_epoch=reporter)
            return {**_row(res), "epochs_run": res.metrics["epochs_run"]}, res.bundle, {}
        rows: list[dict] = []

        def on_fold(k: int, res, _running: dict) -> None:
            rows.append(_row(res))
            if k < cfg.split.folds:
                reporter(k, {**fold_means(rows), "fold": k})

        cv = cross_validate(cfg, data, on_fold=on_fold)
        final = {**fold_means(rows), "folds": len(rows), "test_macro_f1_std": cv.metrics["macro_f1_std"],
                 "test_pooled_macro_f1": cv.metrics["pooled"]["macro_f1"]}
        return final, cv.folds[-1].bundle, {}

    def retrain(self, cfg, data, best, folder):
        """On train+validation, scored on the test split (one split), or on the same K folds."""
        import numpy as np

        from albsent.dataset.splits import Split, make_splits
        from albsent.train.cv import cross_validate
        from albsent.train.fit import fit

        if cfg.split.folds > 1:
            m = cross_validate(cfg, data, out_dir=folder).metrics
            protocol = f"{cfg.split.folds}-fold cross-validation by {data.group_by} (same folds as the trials)"
            return {"protocol": protocol,
                    **{k: m[k] for k in ("macro_f1", "macro_f1_std", "accuracy", "accuracy_std", "balanced_accuracy")}}
        split = make_splits(cfg.split, data.labels, data.groups, data.splits, cfg.seed)[0]
        epochs = int(best.get("best_epoch", cfg.epochs) or cfg.epochs)
        trval = np.sort(np.concatenate([split.train, split.val]))
        res = fit(replace(cfg, epochs=max(1, epochs)), data, split=Split(trval, np.zeros(0, np.int64), split.test),
                  out_dir=folder)
        return {"protocol": f"train+validation ({len(trval)} rows, {epochs} epochs = the trial's best epoch), "
                            f"held-out test split ({len(split.test)} rows, by {data.group_by})",
                **{k: res.metrics[k] for k in ("macro_f1", "accuracy", "balanced_accuracy")}}
