"""The extension points are closed: one registration per model, extractor, autoencoder and sweep
kind (albsent.registry.Registry), abstract base classes, and the import rules around them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from albsent.errors import ConfigError
from albsent.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


def test_the_four_registries_are_one_kind_with_one_error():
    from albsent.features import EXTRACTORS
    from albsent.models import MODELS
    from albsent.models.autoencoders import AUTOENCODERS
    from albsent.sweep.kinds import KINDS

    for reg, kind in [(MODELS, "model"), (EXTRACTORS, "extractor"), (AUTOENCODERS, "autoencoder"),
                      (KINDS, "sweep kind")]:
        assert isinstance(reg, Registry) and len(reg) == len(list(reg)) == len(dict(reg.items())) > 0
        with pytest.raises(ConfigError, match=f"unknown {kind} 'nope'; known: {', '.join(sorted(reg))}$"):
            reg.get("nope")
        for name, entry in reg.items():
            assert reg.get(name) is entry is reg[name] and name in reg
            assert getattr(entry, "name") == name  # a class (or a kind's instance) knows its registered name


def test_registry_decorator_names_classes_and_builds_entries():
    plain: Registry[type] = Registry("thing")

    @plain.register("a")
    class A:
        pass

    made = Registry("made", lambda name, obj, **details: (name, obj, details))

    @made.register("f", size=3)
    def f():
        pass

    assert plain["a"] is A and A.name == "a" and sorted(plain) == ["a"]
    assert made.get("f") == ("f", f, {"size": 3}) and list(made.keys()) == ["f"]


def test_a_scikit_learn_model_names_its_fitter_in_its_registration():
    """No second table: `fit_sklearn` asks the registry entry; the fitter is a "module:function"
    string, so registering models imports no scikit-learn."""
    from albsent.models import MODELS
    from albsent.registry import resolve
    from albsent.train import estimators

    assert not hasattr(estimators, "FITTERS")
    sk = {n: e.fitter for n, e in MODELS.items() if e.sklearn}
    assert sk == {"sklearn_logreg": "albsent.train.estimators:fit_logreg",
                  "svm_rbf": "albsent.train.estimators:fit_svm_rbf",
                  "svm_linear": "albsent.train.estimators:fit_svm_linear"}
    assert all(callable(resolve(ref)) for ref in sk.values())
    with pytest.raises(ConfigError, match="gradient descent"):
        MODELS["mlp"].fit(None, None, None, 2)
    code = "import sys, albsent.models; print(any(m in sys.modules for m in ('sklearn', 'scipy')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_extractor_and_sweep_kind_are_abstract():
    from albsent.features.base import Extractor, FrameExtractor
    from albsent.sweep.kinds import SweepKind

    for cls in (Extractor, FrameExtractor, SweepKind):
        with pytest.raises(TypeError, match="abstract"):
            cls(None, 16000) if cls is not SweepKind else cls()
    assert {"columns", "extract"} <= Extractor.__abstractmethods__
    ops = {"target", "base", "filters", "load", "reports_per_trial", "trial", "retrain"}
    assert SweepKind.__abstractmethods__ == ops


def _albsent_imports(path: Path) -> set[str]:
    """Every albsent module a file imports: top level, function-local and TYPE_CHECKING alike."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("albsent"):
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("albsent")}
    return out


def test_the_store_never_imports_features():
    for path in sorted((ROOT / "albsent" / "store").glob("*.py")):
        bad = sorted(m for m in _albsent_imports(path) if m.startswith("albsent.features"))
        assert not bad, (path.name, bad)


def test_the_store_column_rule_comes_from_features():
    """albsent verify's "columns follow from the config" check: installed by albsent.features.config."""
    import albsent.features.config  # noqa: F401 - installs the rule
    from albsent.store import checks

    built = checks._built_columns({"features": ["mfcc"]})
    shape, dtype = built["mfcc"]["mfcc_mean"]
    assert len(shape) == 1 and shape[0] > 0 and dtype == "float32"


def test_a_fresh_verify_process_judges_edited_columns_by_the_extractors(store, tmp_path):
    """`albsent verify` in a process that never extracted still asks the extractors which columns
    the stored config gives (albsent.app.run_verify hands the store that rule)."""
    import json
    import shutil

    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    meta = json.loads((copy / "_albsent.json").read_text())
    meta["extractors"]["mfcc"]["columns"]["mfcc_mean"] = [39]
    (copy / "_albsent.json").write_text(json.dumps(meta))
    out = subprocess.run([sys.executable, "-m", "albsent.cli", "verify", str(copy), "--json"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 1, out.stderr[-2000:]
    problems = json.loads(out.stdout)["problems"]
    assert [(p["kind"], p["where"]) for p in problems] == [("broken_metadata", "_albsent.json")], problems
    assert "do not follow from its config" in problems[0]["detail"]


def test_sweep_space_is_a_leaf():
    mods = _albsent_imports(ROOT / "albsent" / "sweep" / "space.py")
    assert not [m for m in mods if m.startswith("albsent.sweep")], mods
