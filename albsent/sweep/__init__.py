"""Hyperparameter sweeps: Ray Tune + Optuna (TPE) + ASHA around the same Ray-free `fit()` /
`pretrain()` + `probe()` as the CLI. Only this package (and pipeline/) imports Ray.

    from albsent.sweep import load_sweep, run_sweep
    summary = run_sweep(load_sweep("configs/sweeps/smoke.yaml"), "STORE", "SWEEP_DIR")
"""

from albsent.sweep.config import SweepConfig, load_sweep


def run_sweep(*args, **kwargs):
    """See albsent.sweep.run.run_sweep (imported lazily: it pulls in Ray)."""
    from albsent.sweep.run import run_sweep as _run

    return _run(*args, **kwargs)


__all__ = ["SweepConfig", "load_sweep", "run_sweep"]
