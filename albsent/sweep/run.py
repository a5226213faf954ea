"""`run_sweep(config, store, out, resume=False, address=None)`: the library entry point behind
`albsent sweep` and jobs/sweep.py.

    SWEEP_DIR/sweep.yaml       the resolved SweepConfig (+ store) - `--resume` reads it back
    SWEEP_DIR/tune/            Ray Tune's experiment (trial results, checkpoints, searcher state)
    SWEEP_DIR/trials/ID/       attempt markers and the final result of each trial
    SWEEP_DIR/optuna.db        the Optuna study (optuna_storage auto/sqlite; optuna-dashboard sqlite:///SWEEP_DIR/optuna.db)
    SWEEP_DIR/trials.csv|.parquet, best_config.yaml, final/, *.png, sweep.json  (albsent.sweep.results)
"""

from __future__ import annotations

import logging
import os
import time

import yaml

from albsent import storage
from albsent.config import build, diff, to_dict, to_yaml
from albsent.errors import ConfigError
from albsent.sweep.config import SweepConfig, build_space
from albsent.sweep.data import load_all

log = logging.getLogger(__name__)
EXPERIMENT = "tune"


def prepare(config: SweepConfig | None, store: str | None, out: str, resume: bool) -> tuple[SweepConfig, str]:
    """Check SWEEP_DIR against the request: a new sweep needs a fresh folder; --resume reads
    the saved config (a given one must match it)."""
    saved = storage.read_text(storage.join(out, "sweep.yaml"))
    if saved is None:
        if resume:
            raise ConfigError(f"--resume: {out} holds no sweep (sweep.yaml missing); start one without --resume")
        if config is None or not store:
            raise ConfigError("albsent sweep needs --config SWEEP.yaml and --store STORE "
                              "(or --resume on an existing SWEEP_DIR)")
        return config, store
    data = yaml.safe_load(saved)
    old, old_store = build(SweepConfig, data["sweep"]).inlined(), data["store"]
    if not resume:
        raise ConfigError(f"{out} already holds a sweep; pass --resume to continue it or choose another --out")
    if config is not None and to_dict(config.inlined()) != to_dict(old):
        config = config.inlined()
        raise ConfigError(f"--resume: the given config differs from {out}/sweep.yaml: "
                          + "; ".join(diff(to_dict(old), to_dict(config))))
    if store and os.path.abspath(store) != os.path.abspath(old_store) and store != old_store:
        raise ConfigError(f"--resume: store {store} differs from the sweep's store {old_store}")
    return old, old_store


def run_sweep(config: SweepConfig | None, store: str | None, out: str, resume: bool = False,
              address: str | None = None, num_cpus: int | None = None) -> dict:
    """Run (or continue) a sweep; returns the summary written to SWEEP_DIR/sweep.json."""
    from ray import tune

    from albsent.dataset.spec import column_info
    from albsent.runner.resources import check_resources
    from albsent.runner.session import ray_session
    from albsent.store import Store
    from albsent.sweep.results import finish
    from albsent.sweep.search import close_orphans, make_scheduler, make_searcher, optuna_url, reports_per_trial
    from albsent.sweep.trainable import run_trial

    out = str(out) if storage.is_uri(str(out)) else os.path.abspath(out)
    if resume:
        storage.check_owned(out, "--resume")  # resuming unpickles Ray Tune state from `out`
    config, store = prepare(config, store, out, resume)
    config = config.inlined()
    store = store if storage.is_uri(store) else os.path.abspath(store)
    space = build_space(config, column_info(Store(store).schema), store)
    storage.write_text(storage.join(out, "sweep.yaml"), to_yaml({"sweep": to_dict(config), "store": store}))
    os.environ.update(config.sweep_kind.tune_env)
    t0 = time.perf_counter()
    data = load_all(config, space, store)  # every feature spec of the space, read once here
    log.info("sweep %s: %d feature spec(s) loaded in %.1f s", config.name, len(data), time.perf_counter() - t0)
    with ray_session(address, num_cpus=num_cpus):
        import ray

        check_resources({"CPU": config.resources.cpu, "GPU": config.resources.gpu}, "resources.cpu, resources.gpu")
        refs = {spec: ray.put(d) for spec, d in data.items()}
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, refs=refs, sweep=config, space=space, out=out, store=store),
            {"cpu": config.resources.cpu, "gpu": config.resources.gpu})
        exp_path = storage.join(out, EXPERIMENT)
        if resume and tune.Tuner.can_restore(exp_path):
            log.info("resuming sweep %s from %s", config.name, exp_path)
            tuner = tune.Tuner.restore(exp_path, trainable=trainable, resume_unfinished=True, resume_errored=False,
                                       restart_errored=False)
        else:
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(search_alg=make_searcher(config, space, out),
                                            scheduler=make_scheduler(config, reports_per_trial(config)),
                                            num_samples=config.num_samples, max_concurrent_trials=config.max_concurrent,
                                            reuse_actors=config.reuse_actors),
                run_config=tune.RunConfig(storage_path=out, name=EXPERIMENT, verbose=0,
                                          failure_config=tune.FailureConfig(max_failures=config.max_failures),
                                          checkpoint_config=tune.CheckpointConfig(num_to_keep=2)))
        t1 = time.perf_counter()
        tuner.fit()
        log.info("sweep %s: trials finished in %.1f s", config.name, time.perf_counter() - t1)
    close_orphans(optuna_url(config, out), config.name)
    return finish(config, space, store, out, data, sweep_seconds=time.perf_counter() - t1)
