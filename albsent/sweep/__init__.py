"""Hyperparameter sweeps: Ray Tune + Optuna (TPE) + ASHA around the same Ray-free `fit()` /
`pretrain()` + `probe()` as the CLI. Ray is imported only here (Tune), in albsent/runner/ and in
the Ray Data graph (albsent/pipeline/execute.py): tests/test_imports.py.

    from albsent.sweep import load_sweep, run_sweep
    summary = run_sweep(load_sweep("configs/sweeps/smoke.yaml"), "STORE", "SWEEP_DIR")
"""

from albsent.sweep.config import SweepConfig, load_sweep


def run_sweep(*args, **kwargs):
    """See albsent.sweep.run.run_sweep (imported lazily: it pulls in Ray)."""
    from albsent.sweep.run import run_sweep as _run

    return _run(*args, **kwargs)


__all__ = ["SweepConfig", "load_sweep", "run_sweep"]
