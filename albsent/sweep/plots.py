"""Sweep figures (matplotlib Agg): optimisation history and the objective against each
searched parameter (e.g. macro-F1 per SSL layer or per attachment point)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _plt():
    from albsent.runtime import pyplot

    return pyplot()


def plot_history(table: pd.DataFrame, metric: str, mode: str, path: str | Path) -> None:
    """Objective per trial in creation order (completed: dots; early-stopped: crosses) and the best so far."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    t = table.reset_index(drop=True)
    values = pd.to_numeric(t.get(metric), errors="coerce")
    done = t["state"] == "completed"
    x = np.arange(1, len(t) + 1)
    ax.plot(x[done], values[done], "o", color="tab:blue", label="completed")
    ax.plot(x[~done], values[~done], "x", color="grey", label="stopped early / failed")
    best = values.where(done).cummax() if mode == "max" else values.where(done).cummin()
    ax.step(x, best, where="post", color="tab:red", label="best so far")
    ax.set_xlabel("trial (creation order)")
    ax.set_ylabel(metric)
    ax.set_title("optimisation history")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_param(table: pd.DataFrame, key: str, metric: str, path: str | Path, log_x: bool = False) -> None:
    """Numeric parameter: scatter; categorical: one column of points per value with its mean."""
    plt = _plt()
    t = table[table["state"] == "completed"]
    y = pd.to_numeric(t[metric], errors="coerce")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    raw = t[key]
    numeric = pd.to_numeric(raw, errors="coerce")
    if numeric.notna().all() and raw.nunique() > 6:
        ax.plot(numeric, y, "o", alpha=0.8)
        if log_x:
            ax.set_xscale("log")
    else:
        cats = sorted(raw.dropna().astype(str).unique(), key=lambda v: (len(v), v))
        for i, c in enumerate(cats):
            vals = y[raw.astype(str) == c]
            ax.plot(np.full(len(vals), i) + np.linspace(-0.1, 0.1, len(vals)), vals, "o", alpha=0.7, color="tab:blue")
            if len(vals):
                ax.plot([i - 0.25, i + 0.25], [vals.mean()] * 2, color="tab:red")
        ax.set_xticks(range(len(cats)), cats, rotation=30 if max((len(c) for c in cats), default=0) > 6 else 0,
                      ha="right")
    ax.set_xlabel(key)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs {key} (completed trials)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(table: pd.DataFrame, keys: list[str], metric: str, mode: str, folder: str | Path,
                log_keys=()) -> list[str]:
    folder = Path(folder)
    names = []
    if metric in table and table[metric].notna().any():
        plot_history(table, metric, mode, folder / "optimization_history.png")
        names.append("optimization_history.png")
        done = table[table["state"] == "completed"]
        for key in keys:
            if key in done and done[key].nunique() > 1:
                name = f"{metric}_vs_{key.replace('.', '_')}.png"
                plot_param(table, key, metric, folder / name, log_x=key in log_keys)
                names.append(name)
    return names
