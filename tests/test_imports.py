"""The import rules of the design, checked statically over every module file of the library
(albsent/) and every job (jobs/), function-local imports included. A rule is one line of RULES.
(At run time: tests/test_features.py checks that predict's import chain loads no Ray.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (imported module, "only" / "never", importers (packages or modules), why). "only": nothing
# outside the importers may import it; "never": none of the importers may import it.
RULES = [
    ("ray", "only", ("albsent.runner", "albsent.sweep", "albsent.pipeline.execute", "albsent.testing.cluster"),
     "Ray only in the runner (albsent/runner/), Tune (albsent/sweep/), the Ray Data graph and the test cluster"),
    ("albsent.commands", "only", ("albsent.cli", "albsent.commands"),
     "commands/ are argparse adapters over albsent.app: the library and jobs/ never import them"),
    ("albsent.cli", "only", (), "the CLI is an adapter: no library module or job imports it"),
    ("albsent.features", "never", ("albsent.store",), "the store never imports features"),
    ("mlflow", "only", ("albsent.tracking", "albsent.sweep.tracking"),
     "MLflow (the optional tracking extra) only in albsent/tracking.py and the sweep's driver-side logging"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module `path` imports anywhere (top level or inside functions), absolute names;
    `from a import b` counts as a and a.b (b may be a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the file's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}
    return names


def under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


FILES = sorted([*(ROOT / "albsent").rglob("*.py"), *(ROOT / "jobs").glob("*.py")])
IMPORTS = {module_name(p): imported(p) for p in FILES}


def test_every_module_is_read():
    assert len(IMPORTS) > 100 and "jobs.train" in IMPORTS and "albsent.runner.session" in IMPORTS
    # function-local imports count: ray_session imports Ray inside the function
    assert "ray" in IMPORTS["albsent.runner.session"] and "albsent.app.run_train" in IMPORTS["jobs.train"]


@pytest.mark.parametrize("target, kind, importers, why", RULES, ids=[f"{r[0]} {r[1]}" for r in RULES])
def test_import_rule(target, kind, importers, why):
    broken = []
    for module, names in IMPORTS.items():
        hits = sorted(n for n in names if under(n, [target]))
        inside = under(module, importers)
        if hits and (not inside if kind == "only" else inside):
            broken.append(f"{module} imports {hits[0]}")
    assert not broken, f"{why}: " + "; ".join(broken)
