"""Latent sweeps: each trial is a PretrainConfig: `pretrain()` an autoencoder (reports every
validation step), then `probe()` its attachment point (reports per fold); the best config is
pretrained and probed again. Intermediate pretraining reports carry no probe metric yet.

Filter:  `probe.attach` -> the attachment points of the sampled autoencoder (`auto` = all of them)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from albsent.config import build, dump_yaml, merge, to_dict
from albsent.sweep.kinds.base import KINDS, SweepKind
from albsent.sweep.space import SearchSpace, fill, short_hash


@dataclass
class LatentFilter:
    base: dict  # PretrainConfig as a dict
    in_dims: dict  # sequence feature spec -> dims per frame
    deps = ()

    def __call__(self, key: str, choices: list, sampled: dict) -> tuple[list, str]:
        from albsent.dataset.data import sequence_spec
        from albsent.models.autoencoders import attach_points
        from albsent.models.autoencoders.config import AutoencoderConfig

        if key != "probe.attach":
            return choices, ""
        model = dict(self.base["model"])
        window = dict(self.base["window"])
        for k, v in sampled.items():
            if k.startswith("model."):
                model[k[6:]] = v
            elif k.startswith("window."):
                window[k[7:]] = v
        features = sequence_spec(fill(sampled.get("features", self.base["features"]), sampled)).text
        ae = build(AutoencoderConfig, merge(self.base["model"], model))
        points = [p.name for p in attach_points(ae, self.in_dims[features], int(window["length"]), window["target"])]
        keep = points if choices == ["auto"] else [c for c in choices if c in points]
        return keep, f"{ae.name}-{short_hash(keep)}"  # no "/": Tune unflattens on it


@KINDS.register("latent")
class LatentKind(SweepKind):
    metrics = {"probe_macro_f1": "max", "probe_accuracy": "max", "val_loss": "min"}
    columns = ("val_loss", "probe_macro_f1", "probe_macro_f1_std", "probe_accuracy", "baseline_macro_f1", "val_ratio",
               "attach")
    tune_env = {"TUNE_DISABLE_STRICT_METRIC_CHECKING": "1"}  # pretraining reports precede the probe metric

    def target(self) -> type:
        from albsent.pretrain.config import PretrainConfig

        return PretrainConfig

    def base(self, data: dict, store: str) -> dict:
        return merge({"num_threads": 1}, data)  # the store is not a PretrainConfig field

    def canonical_features(self, text: str) -> str:
        from albsent.dataset.data import sequence_spec

        return sequence_spec(text).text  # "mfcc" -> "mfcc:seq", as PretrainConfig stores it

    def filters(self, config, params, info, store):
        from albsent.dataset.spec import parse, resolve

        base = to_dict(config.trial_config({}))
        dims = {}  # every feature spec the space can produce (also checked against the store here)
        for text in {self.canonical_features(t) for t in SearchSpace(params).values("features", base["features"])}:
            cols = resolve(parse(text), info)
            dims[text] = sum(int(v) for c in cols.values() for v in c["shape"][1:])
        return {"probe.attach": LatentFilter(base, dims)} if any(p.key == "probe.attach" for p in params) else {}

    def load(self, config, text, store):
        from albsent.dataset.data import load_data, load_frames

        labeled = load_data(store, text, config.trial_config({}).probe.group_by)
        return load_frames(config.pretrain_store or store, text), labeled

    def reports_per_trial(self, base_cfg, report_every):
        return -(-base_cfg.iterations // base_cfg.val_every) // report_every + base_cfg.probe.folds + 1

    def trial(self, cfg, data, reporter):
        """pretrain() (reports every validation step) then probe() (reports per fold)."""
        from albsent.pretrain import pretrain, probe

        frames, labeled = data
        res = pretrain(cfg, frames, on_step=lambda s, row: reporter(s, {**row, "stage": "pretrain"}))
        best_loss = res.metrics.get("best_val_loss", float("nan"))

        def on_fold(k: int, m: dict) -> None:
            reporter(k, {"probe_macro_f1": m["macro_f1"], "probe_accuracy": m["accuracy"],
                         "baseline_macro_f1": m["baseline_macro_f1"], "val_loss": best_loss, "probe_fold": k,
                         "stage": "probe"})

        metrics = probe(cfg.probe, res.as_pretrained(), labeled, on_step=on_fold)
        final = {"probe_macro_f1": metrics["macro_f1"], "probe_macro_f1_std": metrics["macro_f1_std"],
                 "probe_accuracy": metrics["accuracy"], "baseline_macro_f1": metrics["baseline"]["macro_f1"],
                 "val_loss": best_loss, "val_ratio": res.metrics.get("val_ratio"), "attach": metrics["probe"]["attach"],
                 "probe_dim": metrics["probe"]["dim"]}
        return final, None, {"probe_metrics.json": json.dumps(metrics, default=float)}

    def retrain(self, cfg, data, best, folder):
        """Pretrained and probed again (the probe's K folds)."""
        from albsent.pretrain import pretrain, probe

        frames, labeled = data
        res = pretrain(cfg, frames, out_dir=folder / "pretrained")
        metrics = probe(cfg.probe, res.as_pretrained(str(folder / "pretrained")), labeled)
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float))
        dump_yaml(cfg, folder / "config.yaml")
        return {"protocol": f"pretrain + {cfg.probe.folds}-fold probe", "macro_f1": metrics["macro_f1"],
                "macro_f1_std": metrics["macro_f1_std"], "accuracy": metrics["accuracy"],
                "baseline_macro_f1": metrics["baseline"]["macro_f1"]}
