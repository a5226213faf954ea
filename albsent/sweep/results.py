"""What a finished sweep leaves in SWEEP_DIR: trials.csv / trials.parquet (one row per trial:
parameters, state, attempts, metrics), best_config.yaml (`albsent train --config` or `albsent
pretrain --config` accepts it), final/ (the best config retrained and evaluated on the held-out
test split, or on the same K folds), PNG plots and sweep.json (read by `albsent report`)."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from albsent import storage
from albsent.config import dump_yaml, to_dict
from albsent.errors import InputError
from albsent.report.tables import markdown_table
from albsent.sweep.kinds.base import COMMON_COLUMNS
from albsent.sweep.plots import write_plots
from albsent.sweep.space import fill

log = logging.getLogger(__name__)


def metric_columns(config) -> tuple[str, ...]:
    """The metrics trials.csv and sweep.json's best trial carry: the kind's, then the common ones."""
    return config.sweep_kind.columns + COMMON_COLUMNS


def _error(trial) -> str:
    """Last line of the trial's error.txt (the exception message), if it failed."""
    if trial.status != "ERROR":
        return ""
    fs = getattr(getattr(trial, "storage", None), "storage_filesystem", None)  # local, s3://, ... as the sweep's
    text = storage.read_text(storage.join(trial.path, "error.txt"), fs) or ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "error"


def _order(trial) -> int:
    tag = str(trial.experiment_tag).split("_")[0]
    return int(tag) if tag.isdigit() else 0


def trial_table(config, space, out: str) -> pd.DataFrame:
    """One row per Tune trial of SWEEP_DIR/tune, in creation order."""
    from ray.tune import ExperimentAnalysis

    analysis = ExperimentAnalysis(storage.join(out, "tune"))
    rows, columns = [], metric_columns(config)
    for t in sorted(analysis.trials, key=_order):
        last = t.last_result or {}
        try:
            sampled = space.from_optuna(t.config)
            flat = {k: fill(v, sampled) for k, v in sampled.items()}
        except Exception as exc:  # noqa: BLE001 - an unparsable trial still gets a row
            flat = {"params_error": str(exc)}
        state = "failed" if t.status == "ERROR" else "completed" if last.get("fit_done") else "stopped early"
        names = storage.list_names(storage.join(out, "trials", t.trial_id))
        attempts = len([n for n in names if n.startswith("attempt-")])
        fits = len([n for n in names if n.startswith("fit-")])
        row = {"trial_id": t.trial_id, "state": state, "status": t.status, "attempts": attempts, "fits": fits, **flat,
               **{k: last[k] for k in columns if k in last}, "error": _error(t),
               "params_json": json.dumps(t.config, sort_keys=True, default=str)}
        rows.append(row)
    return pd.DataFrame(rows)


def best_row(table: pd.DataFrame, metric: str, mode: str) -> pd.Series | None:
    done = (table[(table["state"] == "completed") & table.get(metric, pd.Series(dtype=float)).notna()]
            if metric in table else table.iloc[:0])
    if done.empty:
        return None
    idx = done[metric].astype(float).idxmax() if mode == "max" else done[metric].astype(float).idxmin()
    return done.loc[idx]


def finish(config, space, store: str, out: str, data: dict, sweep_seconds: float = 0.0) -> dict:
    """Write every result file of a sweep; returns the summary (also SWEEP_DIR/sweep.json)."""
    local_tmp = tempfile.TemporaryDirectory() if storage.is_uri(out) else None
    local = Path(local_tmp.name if local_tmp else out)
    table = trial_table(config, space, out)
    table.to_csv(local / "trials.csv", index=False)
    table.to_parquet(local / "trials.parquet", index=False)
    keys = [p.key for p in space.params]
    log_keys = {p.key for p in space.params if p.log}
    plots = write_plots(table, keys, config.metric, config.mode, local, log_keys)
    states = table["state"].value_counts().to_dict() if len(table) else {}
    summary = {"name": config.name, "kind": config.kind, "store": store, "metric": config.metric, "mode": config.mode,
               "num_trials": int(len(table)), "states": {k: int(v) for k, v in states.items()},
               "attempts": int(table["attempts"].sum()) if len(table) else 0, "seconds": sweep_seconds,
               "sweep": to_dict(config), "plots": plots, "best": None, "final": None}
    best = best_row(table, config.metric, config.mode)
    if best is not None:
        cfg = config.trial_config(space.resolve(json.loads(best["params_json"])), store)
        dump_yaml(cfg, local / "best_config.yaml")
        summary["best"] = {"trial_id": best["trial_id"], "value": float(best[config.metric]),
                           "params": {k: _py(best[k]) for k in keys if k in best and not pd.isna(best[k])},
                           **{k: _py(best[k]) for k in metric_columns(config)
                              if k in best and not pd.isna(best[k])}}
        if config.retrain:
            (local / "final").mkdir(exist_ok=True)
            summary["final"] = config.sweep_kind.retrain(cfg, data[cfg.features], best, local / "final")
    else:
        log.warning("sweep %s: no trial completed; no best config", config.name)
    (local / "sweep.json").write_text(json.dumps(summary, indent=1, default=_py))
    if local_tmp:
        storage.upload(local, out)
        local_tmp.cleanup()
    return summary


def _py(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def _cell(v) -> str:
    if isinstance(v, float):
        return "–" if np.isnan(v) else f"{v:.4g}"
    return str(v)


def summarize(out: str) -> str:
    """A few markdown lines about a finished sweep (for `albsent report SWEEP_DIR`)."""
    text = storage.read_text(storage.join(out, "sweep.json"))
    if text is None:
        raise InputError(f"{out}: no sweep.json; expected the --out folder of `albsent sweep`")
    s = json.loads(text)
    lines = [f"## sweep {s['name']} ({s['kind']}) on {s['store']}",
             f"{s['num_trials']} trials ({', '.join(f'{v} {k}' for k, v in sorted(s['states'].items()))}; "
             f"{s['attempts']} attempts), objective {s['metric']} ({s['mode']})"]
    b, f = s.get("best"), s.get("final")
    if b:
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in b["params"].items())
        lines.append(f"best trial {b['trial_id']}: {s['metric']} {b['value']:.4f} with {params}")
        tests = {k: v for k, v in b.items() if k.startswith("test_") or k.startswith("probe_")}
        if tests:
            lines.append("  its evaluation: "
                         + ", ".join(f"{k} {v:.4f}" for k, v in tests.items() if isinstance(v, float)))
    if f:
        std = f" ± {f['macro_f1_std']:.4f}" if "macro_f1_std" in f else ""
        lines.append(f"best config retrained ({f['protocol']}): macro-F1 {f['macro_f1']:.4f}{std}, "
                     f"accuracy {f['accuracy']:.4f}")
    csv = storage.read_text(storage.join(out, "trials.csv"))
    if csv and s["best"]:
        import io

        t = pd.read_csv(io.StringIO(csv))
        t = t[t["state"] == "completed"].sort_values(s["metric"], ascending=s["mode"] == "min").head(5)
        cols = list(dict.fromkeys(["trial_id"] + [k for k in s["sweep"]["space"] if k in t]
                                  + [c for c in (s["metric"], "test_macro_f1", "probe_macro_f1") if c in t]))
        lines += ["", markdown_table(cols, [[_cell(r[c]) for c in cols] for _, r in t.iterrows()])]
    return "\n".join(lines)
