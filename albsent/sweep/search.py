"""Optuna TPE (seeded, define-by-run for conditional spaces, optional RDB storage) and the
ASHA / FIFO scheduler of a sweep."""

from __future__ import annotations

import logging
import os

from ray.tune.search.optuna import OptunaSearch

from albsent import storage
from albsent.errors import ConfigError
from albsent.sweep.config import SweepConfig

log = logging.getLogger(__name__)


class MetricOptunaSearch(OptunaSearch):
    """OptunaSearch that skips intermediate results without the metric (latent sweeps report
    pretraining losses before the probe's macro-F1 exists) and results of trials an RDB study
    already holds as finished (a trial that ended after Tune's last snapshot before a driver
    crash re-reports its result on resume)."""

    def on_trial_result(self, trial_id: str, result: dict):
        from optuna.exceptions import UpdateFinishedTrialError

        if self.metric not in result:
            return
        try:
            super().on_trial_result(trial_id, result)
        except UpdateFinishedTrialError:
            log.info("trial %s is already finished in the Optuna study; result not reported again", trial_id)


def close_orphans(url: str, study_name: str) -> int:
    """After a sweep, mark trials an RDB study still holds as RUNNING (asked by a driver that was
    killed before Tune saved them) as FAIL, so the study reads cleanly in Optuna's tools."""
    import optuna

    if not url:
        return 0
    study = optuna.load_study(study_name=study_name, storage=url)
    orphans = [t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))]
    for number in orphans:
        study.tell(number, state=optuna.trial.TrialState.FAIL)
    if orphans:
        log.info("optuna study %s: %d orphaned RUNNING trial(s) marked FAIL", study_name, len(orphans))
    return len(orphans)


def optuna_url(config: SweepConfig, out: str) -> str:
    """"" (in memory, saved with Tune's searcher state), SWEEP_DIR/optuna.db, or the given RDB URL
    (config.optuna_storage: auto, sqlite, memory or a URL)."""
    url = config.optuna_storage
    if url in ("", "memory") or (url == "auto" and storage.is_uri(out)):
        return ""
    if url in ("auto", "sqlite"):
        if storage.is_uri(out):
            raise ConfigError("optuna_storage 'sqlite' needs a local SWEEP_DIR; "
                              "give an RDB URL for object-store sweeps")
        url = f"sqlite:///{os.path.abspath(storage.join(out, 'optuna.db'))}"
    return url


def make_searcher(config: SweepConfig, space, out: str) -> MetricOptunaSearch:
    storage_obj = None
    url = optuna_url(config, out)
    if url:
        import optuna

        storage_obj = optuna.storages.RDBStorage(url)
    return MetricOptunaSearch(space=space, metric=config.metric, mode=config.mode, seed=config.seed,
                              study_name=config.name, storage=storage_obj,
                              points_to_evaluate=[dict(p) for p in config.initial_points] or None)


def make_scheduler(config: SweepConfig, max_t: int):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    s = config.scheduler
    if s.type == "fifo":
        return FIFOScheduler()
    max_t = s.max_t or max_t
    return ASHAScheduler(time_attr="training_iteration", metric=config.metric, mode=config.mode, max_t=max_t,
                         grace_period=min(s.grace_period, max_t), reduction_factor=s.reduction_factor)


def reports_per_trial(config: SweepConfig) -> int:
    """How many results one full trial reports (ASHA's max_t)."""
    return config.sweep_kind.reports_per_trial(config.trial_config({}), config.report_every)
