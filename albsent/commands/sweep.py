"""`albsent sweep --config SWEEP.yaml --store STORE --out SWEEP_DIR [--resume] [--address ADDR]`."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from albsent.cli import common_config_args, ray_args

log = logging.getLogger(__name__)

EPILOG = """A sweep searches TrainConfig keys (kind: classifier) or PretrainConfig keys (kind: latent:
autoencoder + probe, attachment points conditional on the model) with Optuna TPE inside Ray Tune,
ASHA early stopping, retries of crashed trials, and resume after the driver is killed: the same
command again continues the sweep in SWEEP_DIR (finished trials kept; a different config or store
is refused), as does --resume with no --config or --store.
Outputs in SWEEP_DIR: trials.csv/.parquet, best_config.yaml, final/ (best config retrained and
evaluated), *.png, sweep.json; summarise with `albsent report SWEEP_DIR`. Examples: configs/sweeps/.
Example: albsent sweep --config configs/sweeps/smoke.yaml --store st --out sweeps/smoke"""


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="hyperparameter sweep (Ray Tune + Optuna) over a feature store",
                       description="Run or resume a hyperparameter sweep over a stored feature set.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", metavar="STORE", help="feature store (albsent extract --out)")
    p.add_argument("--out", required=True, metavar="SWEEP_DIR", help="sweep folder: local path or URI (s3://...)")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep in SWEEP_DIR with its saved config and store (the same command "
                        "without --resume continues it too); an error where SWEEP_DIR holds no sweep")
    p.add_argument("--num-samples", type=int, metavar="N", help="number of trials")
    p.add_argument("--max-concurrent", type=int, metavar="N", help="trials running at once")
    p.add_argument("--num-cpus", type=int, metavar="N", help="CPUs of a local Ray cluster started here")
    p.add_argument("--json", action="store_true", help="print sweep.json instead of a summary")
    common_config_args(p)
    ray_args(p)
    p.set_defaults(func=run)


def holds_sweep(out: str) -> bool:
    from albsent import storage

    return storage.read_text(storage.join(str(out), "sweep.yaml")) is not None


def sweep(config, store: str | None, out: str, resume: bool = False, address: str | None = None,
          num_cpus: int | None = None) -> dict:
    """What `albsent sweep` and jobs/sweep.py run. The one resume rule: SWEEP_DIR holding a sweep
    is continued (finished trials kept) when the given config and store are that sweep's, and
    refused with the differences otherwise; `resume=True` also continues with no config or store
    given (both read back from SWEEP_DIR/sweep.yaml) and fails on a folder with no sweep.
    Returns sweep.json's content plus "resumed"."""
    from albsent.sweep import run_sweep

    resumed = resume or holds_sweep(out)
    if resumed and not resume:  # run_sweep's checks (same config and store, your folder) say "--resume: ..."
        log.info("%s holds a sweep already: continuing it if it is this one (finished trials are kept)", out)
    summary = run_sweep(config, store, out, resume=resumed, address=address, num_cpus=num_cpus)
    return {**summary, "resumed": resumed}


def no_trial_completed(summary: dict, out: str) -> str:
    states = ", ".join(f"{n} {s}" for s, n in sorted(summary.get("states", {}).items())) or "no trials"
    return f"no trial completed ({states}); see {out}/trials.csv for each trial's error"


def run(args) -> int:
    from albsent.config import check_out_folder
    from albsent.sweep import load_sweep
    from albsent.sweep.results import summarize

    check_out_folder(args.out)
    extra = {k: v for k, v in (("num_samples", args.num_samples), ("max_concurrent", args.max_concurrent))
             if v is not None}
    config = load_sweep(args.config, args.sets, extra) if (args.config or args.sets or extra) else None
    summary = sweep(config, args.store, args.out, resume=args.resume, address=args.address, num_cpus=args.num_cpus)
    print(json.dumps(summary, indent=1, default=str) if args.json else summarize(args.out))
    if summary.get("best") is None:
        print(f"albsent sweep: error: {no_trial_completed(summary, args.out)}", file=sys.stderr)
        return 1
    return 0
