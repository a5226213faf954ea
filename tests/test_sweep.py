"""Sweeps: conditional spaces (no Ray), a tiny real sweep writing every artifact whose best
config re-trains to the reported metric, and a crashing trial that is retried then recorded."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from albsent.config import build, read_yaml
from albsent.errors import ConfigError
from albsent.sweep.config import SweepConfig, build_space, load_sweep
from albsent.sweep.data import feature_specs

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "sweeps" / "smoke.yaml"
INFO = {  # column_info of a store with MFCC, short-term and two SSL models of different depth
    "mfcc": {"shape": [None, 120], "dtype": "float16"}, "mfcc_mean": {"shape": [120], "dtype": "float32"},
    "mfcc_std": {"shape": [120], "dtype": "float32"}, "shortterm": {"shape": [None, 24], "dtype": "float16"},
    "shortterm_mean": {"shape": [24], "dtype": "float32"}, "shortterm_std": {"shape": [24], "dtype": "float32"},
    "ssl_hubert_mean": {"shape": [13, 32], "dtype": "float32"}, "ssl_tiny_mean": {"shape": [5, 32], "dtype": "float32"},
}
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _samples(space, n=40, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed), direction="maximize")
    out = []
    for i in range(n):
        trial = study.ask()
        space(trial)
        out.append(trial.params)
        study.tell(trial, float(i % 7) / 7)
    return out


def test_classifier_space_is_conditional_and_valid():
    from albsent.models import check_compatible

    config = build(SweepConfig, {"space": {
        "model": {"choice": ["mlp", "bilstm_attn", "sklearn_logreg"]},
        "features": {"choice": ["mfcc", "mfcc+shortterm", "mfcc:seq", "ssl:{ssl_model}:{ssl_layer}"]},
        "ssl_model": {"choice": ["hubert", "tiny"], "when": {"features": "ssl:{ssl_model}:{ssl_layer}"}},
        "ssl_layer": {"choice": [0, 4, 9, 12, "all"], "when": {"features": "ssl:{ssl_model}:{ssl_layer}"}},
        "hidden_size": {"choice": [32, 64], "when": {"model": ["mlp", "bilstm_attn"]}},
        "C": {"loguniform": [0.01, 10.0], "when": {"model": "sklearn_logreg"}},
        "lr": {"loguniform": [1e-5, 1e-2]}}})
    space = build_space(config, INFO, "STORE")
    seen_models, seen_specs = set(), set()
    for params in _samples(space, 60):
        cfg = config.trial_config(space.resolve(params), "STORE")
        kind = "sequence" if cfg.features.endswith(":seq") else "layers" if cfg.features.endswith(":all") else "pooled"
        check_compatible(cfg.model, kind, cfg.features)  # never an invalid model / feature pair
        assert ("C" in params) == (cfg.model == "sklearn_logreg")
        assert ("hidden_size" in params) == (cfg.model != "sklearn_logreg")
        if cfg.features.startswith("ssl:tiny:"):
            assert cfg.features.split(":")[2] in ("0", "4", "all")  # the 5-layer model has no layer 9 or 12
        if cfg.model == "sklearn_logreg":
            assert not cfg.features.endswith(":all")
        # a choice list per model kind
        assert cfg.model == "bilstm_attn" or any(k.startswith("features[") for k in params)
        seen_models.add(cfg.model)
        seen_specs.add(cfg.features)
    assert seen_models == {"mlp", "bilstm_attn", "sklearn_logreg"}
    assert "mfcc:seq" in seen_specs and any(s.startswith("ssl:") for s in seen_specs)
    specs = feature_specs(config, space, "STORE")
    assert {"mfcc", "mfcc+shortterm", "mfcc:seq", "ssl:hubert:12", "ssl:hubert:all", "ssl:tiny:4"} <= set(specs)
    assert "ssl:tiny:9" not in specs and len(specs) == len(set(specs))


def test_latent_attachment_points_follow_the_model():
    from albsent.models.autoencoders import attach_points

    config = build(SweepConfig, {"kind": "latent", "base": {"features": "mfcc:seq"}, "space": {
        "model.name": {"choice": ["mlstm", "dense", "seq2seq"]},
        "model.layers": {"choice": [1, 2], "when": {"model.name": "mlstm"}},
        "window.length": {"choice": [8, 15]},
        "probe.attach": {"choice": ["auto"]},
        "lr": {"loguniform": [1e-4, 1e-2]}, "probe.iterations": {"int": [100, 1000], "step": 100}}})
    space = build_space(config, INFO)
    names = set()
    for params in _samples(space, 40, seed=1):
        cfg = config.trial_config(space.resolve(params))
        valid = [p.name for p in attach_points(cfg.model, 120, cfg.window.length, cfg.window.target)]
        assert cfg.probe.attach in valid
        names.add((cfg.model.name, cfg.probe.attach))
    assert {m for m, _ in names} == {"mlstm", "dense", "seq2seq"}
    assert any(a.startswith("layer2") for _, a in names)  # two-layer mLSTMs expose layer2 points


def test_sweep_config_errors(monkeypatch):
    monkeypatch.chdir(ROOT)  # base_config paths are relative to the repository root
    with pytest.raises(ConfigError, match="not a TrainConfig field"):
        build_space(build(SweepConfig, {"space": {"learning_rate": {"uniform": [0.1, 0.2]}}}), INFO)
    with pytest.raises(ConfigError, match="listed before it"):
        build(SweepConfig, {"space": {"C": {"choice": [1.0], "when": {"model": "x"}}, "model": {"choice": ["mlp"]}}})
    with pytest.raises(ConfigError, match="low < high"):
        build(SweepConfig, {"space": {"lr": {"loguniform": [0.1, 0.01]}}})
    with pytest.raises(ConfigError, match="metric"):
        build(SweepConfig, {"metric": "probe_macro_f1", "space": {"lr": {"choice": [0.1]}}})
    for path in sorted((ROOT / "configs" / "sweeps").glob("*.yaml")):  # every shipped sweep parses
        config = load_sweep(path)
        assert config.space and read_yaml(path)
        build_space(config, INFO, "STORE")  # every key is a config field; filters resolve


def test_optuna_storage_default_option_and_errors(tmp_path):
    """SWEEP_DIR/optuna.db by default (in memory for an object-store SWEEP_DIR), `memory`, or any RDB
    URL (`--optuna-storage URL`); anything else names the field."""
    from albsent.cli import build_parser
    from albsent.commands.sweep import flags_to_config
    from albsent.sweep.search import optuna_url

    def cfg(**extra):
        return build(SweepConfig, {"space": {"lr": {"choice": [0.1]}}, **extra})

    assert optuna_url(cfg(), str(tmp_path)) == f"sqlite:///{tmp_path / 'optuna.db'}"
    assert optuna_url(cfg(), "s3://bucket/sweep") == ""
    assert optuna_url(cfg(optuna_storage="memory"), str(tmp_path)) == ""
    url = "postgresql://albsent@127.0.0.1/optuna"
    args = build_parser().parse_args(["sweep", "--config", str(SMOKE), "--out", str(tmp_path), "--optuna-storage", url])
    assert optuna_url(load_sweep(args.config, args.sets, flags_to_config(args)), str(tmp_path)) == url
    with pytest.raises(ConfigError, match="optuna_storage"):
        cfg(optuna_storage="optuna.db")
    with pytest.raises(ConfigError, match="needs a local SWEEP_DIR"):
        optuna_url(cfg(optuna_storage="sqlite"), "s3://bucket/sweep")


@pytest.mark.ray
@pytest.mark.slow
def test_tiny_sweep_writes_everything_and_best_config_retrains(store, ray_local, tmp_path, capsys):
    from albsent.cli import main
    from albsent.sweep import run_sweep

    out = tmp_path / "sweep"
    summary = run_sweep(load_sweep(SMOKE), str(store), str(out))
    for name in ("trials.csv", "trials.parquet", "best_config.yaml", "sweep.json", "sweep.yaml",
                 "optimization_history.png", "final/metrics.json", "final/model.safetensors"):
        assert (out / name).is_file(), name
    table = pd.read_parquet(out / "trials.parquet")
    assert len(table) == 4 and table["trial_id"].is_unique
    assert set(table["model"]) == {"mlp", "sklearn_logreg"}  # both branches of the conditional space ran
    assert (table["state"] != "failed").all() and (table["fits"] == 1).all()
    assert list(out.glob("val_macro_f1_vs_*.png"))
    best = summary["best"]
    assert best["value"] == table[table.state == "completed"]["val_macro_f1"].max()
    # the Optuna study is in SWEEP_DIR/optuna.db by default (optuna-dashboard reads it): every trial, its value
    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{out / 'optuna.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    assert sorted(t.value for t in study.trials) == pytest.approx(sorted(table["val_macro_f1"]))
    assert study.best_value == pytest.approx(best["value"])
    # the best config is a TrainConfig that `albsent train` accepts and re-trains to the same metric
    assert main(["-q", "train", "--config", str(out / "best_config.yaml"), "--out", str(tmp_path / "re")]) == 0
    again = json.loads((tmp_path / "re" / "metrics.json").read_text())
    assert again["macro_f1"] == pytest.approx(best["test_macro_f1"], abs=1e-9)
    assert again["val"]["macro_f1"] == pytest.approx(best["val_macro_f1"], abs=1e-9)
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert "best trial" in text and best["trial_id"] in text and "retrained" in text


@pytest.mark.ray
@pytest.mark.filterwarnings("ignore:Fixed parameter dropout")  # the deliberately invalid enqueued value
@pytest.mark.slow
def test_crashing_trial_is_retried_then_recorded_as_failed(store, ray_local, tmp_path):
    from albsent.sweep import run_sweep

    raw = yaml.safe_load(SMOKE.read_text())
    raw.update(name="crash", num_samples=3, max_failures=1, retrain=False, scheduler={"type": "fifo"},
               base={**raw["base"], "model": "mlp", "epochs": 2},
               space={"dropout": {"uniform": [0.0, 0.3]}, "hidden_size": {"choice": [8, 16]}},
               initial_points=[{"dropout": 1.5, "hidden_size": 8}])  # dropout 1.5 is rejected by TrainConfig
    # SWEEP_DIR as a URI: Tune storage, trial markers and results go through pyarrow filesystems
    summary = run_sweep(build(SweepConfig, raw), str(store), f"file://{tmp_path / 'sweep'}")
    table = pd.read_csv(tmp_path / "sweep" / "trials.csv")
    failed = table[table.state == "failed"]
    assert len(table) == 3 and len(failed) == 1
    assert failed.iloc[0]["dropout"] == 1.5 and failed.iloc[0]["attempts"] == 2  # retried once
    assert "dropout" in failed.iloc[0]["error"]
    assert (table[table.state != "failed"]["attempts"] == 1).all()
    assert summary["states"].get("completed") == 2 and summary["best"]["params"]["dropout"] != 1.5


@pytest.mark.ray
@pytest.mark.slow
def test_tiny_latent_sweep_probes_valid_attachment_points(store, ray_local, tmp_path, monkeypatch):
    from albsent.models.autoencoders import attach_points
    from albsent.pretrain.config import PretrainConfig
    from albsent.sweep import run_sweep

    monkeypatch.chdir(ROOT)
    out = tmp_path / "latent"
    summary = run_sweep(load_sweep(ROOT / "configs" / "sweeps" / "smoke_latent.yaml"), str(store), str(out))
    table = pd.read_csv(out / "trials.csv")
    assert len(table) == 2 and (table["state"] == "completed").all()
    for _, row in table.iterrows():
        cfg = load_sweep(ROOT / "configs" / "sweeps" / "smoke_latent.yaml").trial_config(
            {"model": {"name": row["model.name"]}})
        assert row["attach"] in [p.name for p in attach_points(cfg.model, 120, cfg.window.length, cfg.window.target)]
    # `albsent pretrain --config` input
    best = build(PretrainConfig, yaml.safe_load((out / "best_config.yaml").read_text()))
    assert best.probe.attach == summary["best"]["attach"]
    assert (out / "final" / "metrics.json").is_file()
    assert summary["final"]["macro_f1"] == pytest.approx(summary["best"]["probe_macro_f1"])


def test_sweep_kinds_one_interface():
    """Each kind implements every operation of SweepKind; the config's `kind` is validated by the registry."""
    from albsent.sweep.kinds import KINDS, SweepKind, get_kind

    ops = [n for n, v in vars(SweepKind).items() if callable(v) and not n.startswith("_")]
    assert set(ops) >= {"target", "base", "filters", "load", "reports_per_trial", "trial", "retrain"}
    for kind in KINDS.values():
        missing = [n for n in ops if n != "canonical_features" and getattr(type(kind), n) is getattr(SweepKind, n)]
        assert not missing, (kind.name, missing)
        assert kind.metrics and set(kind.metrics) <= set(kind.columns)
    with pytest.raises(ConfigError, match="unknown sweep kind 'nope'; known: classifier, latent"):
        get_kind("nope")
    with pytest.raises(ConfigError, match="unknown sweep kind 'nope'; known: classifier, latent"):
        build(SweepConfig, {"kind": "nope", "space": {"lr": {"choice": [0.1]}}})
    for name in KINDS:  # every registered kind is a valid `kind`
        assert build(SweepConfig, {"kind": name, "space": {"lr": {"choice": [0.1]}}}).sweep_kind is KINDS[name]
    assert build(SweepConfig, {"kind": "latent", "space": {"lr": {"choice": [0.1]}}}).metric == "probe_macro_f1"


def test_placeholders_have_one_definition_dots_included():
    """`{name}` placeholders: one regex (albsent.sweep.space.PLACEHOLDER) for filling, dependencies,
    the feature-kind check and the key check; a dotted config key may fill one."""
    from albsent.sweep.kinds.classifier import template_kind
    from albsent.sweep.space import fill, placeholders

    assert placeholders("ssl:{ssl_model}:{probe.layer}") == ["ssl_model", "probe.layer"] and placeholders(3) == []
    assert fill("ssl:{m}:{a.b}", {"m": "hubert", "a.b": 9}) == "ssl:hubert:9"
    assert template_kind("ssl:{m}:{a.b}") == "pooled" and template_kind("{feat}:seq") == "sequence"


def test_latent_space_fills_feature_placeholders_and_conditional_defaults():
    """Bug fix: a latent space whose `features` choices hold placeholders (or are conditional)
    used to fail to build (the attachment filter parsed the declared, unfilled choices)."""
    from albsent.models.autoencoders import attach_points

    config = build(SweepConfig, {"kind": "latent", "base": {"features": "mfcc:seq"}, "space": {
        "features": {"choice": ["mfcc:seq", "{feat}:seq"]},
        "feat": {"choice": ["mfcc", "shortterm"], "when": {"features": "{feat}:seq"}},
        "model.name": {"choice": ["mlstm", "dense"]},
        "probe.attach": {"choice": ["auto"]}}})
    space = build_space(config, INFO)
    assert feature_specs(config, space) == ["mfcc:seq", "shortterm:seq"]
    seen = set()
    for params in _samples(space, 20, seed=2):
        cfg = config.trial_config(space.resolve(params))
        dim = {"mfcc:seq": 120, "shortterm:seq": 24}[cfg.features]
        assert cfg.probe.attach in [p.name for p in attach_points(cfg.model, dim, cfg.window.length, cfg.window.target)]
        seen.add(cfg.features)
    assert seen == {"mfcc:seq", "shortterm:seq"}
