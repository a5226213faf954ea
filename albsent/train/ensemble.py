"""A run's saved models: one bundle (RUN/model.json), K fold bundles (RUN/fold-k/), or a weighted
ensemble (RUN/ensemble.json + RUN/members/k/, written by `albsent train --auto`). `predict` averages
the members' probabilities with their weights (fold models: equal weights).

    RUN/ensemble.json  {"format": "albsent-ensemble", "version": 1,
                        "members": [{"folder": "members/1", "weight": 0.4, "recipe": {...}}, ...]}
"""

from __future__ import annotations

import json
from pathlib import Path

from albsent.train.checkpoint import Bundle, BundleError, load_bundle, save_bundle

FORMAT, VERSION, ENSEMBLE = "albsent-ensemble", 1, "ensemble.json"


def save_ensemble(members: list[tuple[dict, float, Bundle]], folder: str | Path) -> Path:
    """members: (recipe as JSON, weight, bundle); weights are normalised to sum to 1."""
    folder = Path(folder)
    total = sum(w for _, w, _ in members)
    rows = []
    for k, (recipe, weight, bundle) in enumerate(members, start=1):
        save_bundle(bundle, folder / "members" / str(k))
        rows.append({"folder": f"members/{k}", "weight": weight / total, "recipe": recipe})
    (folder / ENSEMBLE).write_text(json.dumps({"format": FORMAT, "version": VERSION, "members": rows}, indent=1))
    return folder / ENSEMBLE


def run_members(run: str | Path) -> list[tuple[Bundle, float]]:
    """(bundle, weight) of every model of RUN: an ensemble, a single model, or K fold models."""
    run = Path(run)
    if (run / ENSEMBLE).is_file():
        try:
            meta = json.loads((run / ENSEMBLE).read_text())
        except json.JSONDecodeError as exc:
            raise BundleError(f"{run / ENSEMBLE}: not valid JSON ({exc})") from exc
        if meta.get("format") != FORMAT or meta.get("version") != VERSION or not meta.get("members"):
            raise BundleError(f"{run / ENSEMBLE}: not an {FORMAT} v{VERSION} file with members")
        out = []
        for m in meta["members"]:
            folder = (run / m["folder"]).resolve()
            if run.resolve() not in folder.parents:
                raise BundleError(f"{run / ENSEMBLE}: member folder {m['folder']!r} is outside the run folder")
            out.append((load_bundle(folder), float(m["weight"])))
        return out
    if (run / "model.json").is_file():
        return [(load_bundle(run), 1.0)]
    folds = sorted(run.glob("fold-*/model.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    if folds:
        return [(load_bundle(p.parent), 1.0 / len(folds)) for p in folds]
    raise BundleError(f"{run}: no saved model (ensemble.json, model.json, or fold-*/model.json for a --folds run); "
                      "expected the --out folder of `albsent train`")
