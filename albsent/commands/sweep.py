"""`albsent sweep --config SWEEP.yaml --store STORE --out SWEEP_DIR [--resume] [--address ADDR]`."""

from __future__ import annotations

import argparse
import json
import sys

from albsent.app.args import common_config_args, ray_args, tracking_args, tracking_of

EPILOG = """A sweep searches TrainConfig keys (kind: classifier) or PretrainConfig keys (kind: latent:
autoencoder + probe, attachment points conditional on the model) with Optuna TPE inside Ray Tune,
ASHA early stopping, retries of crashed trials, and resume after the driver is killed: the same
command again continues the sweep in SWEEP_DIR (finished trials kept; a different config or store
is refused), as does --resume with no --config or --store.
Outputs in SWEEP_DIR: trials.csv/.parquet, best_config.yaml, final/ (best config retrained and
evaluated), *.png, sweep.json, optuna.db (the Optuna study: optuna-dashboard sqlite:///SWEEP_DIR/optuna.db,
while the sweep runs and after); summarise with `albsent report SWEEP_DIR`. Examples: configs/sweeps/.
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
    p.add_argument("--optuna-storage", metavar="URL",
                   help="the Optuna study's storage: an RDB URL (default: SWEEP_DIR/optuna.db; memory: none)")
    p.add_argument("--num-cpus", type=int, metavar="N", help="CPUs of a local Ray cluster started here")
    p.add_argument("--json", action="store_true", help="print sweep.json instead of a summary")
    common_config_args(p)
    ray_args(p)
    tracking_args(p)
    p.set_defaults(func=run)


def flags_to_config(args) -> dict:
    given = (("num_samples", args.num_samples), ("max_concurrent", args.max_concurrent),
             ("optuna_storage", args.optuna_storage))
    return {k: v for k, v in given if v is not None}


def run(args) -> int:
    from albsent.app.run_sweep import no_trial_completed, sweep
    from albsent.config import check_out_folder
    from albsent.sweep import load_sweep
    from albsent.sweep.results import summarize

    check_out_folder(args.out)
    extra = flags_to_config(args)
    config = load_sweep(args.config, args.sets, extra) if (args.config or args.sets or extra) else None
    summary = sweep(config, args.store, args.out, resume=args.resume, address=args.address, num_cpus=args.num_cpus,
                    tracking=tracking_of(args))
    print(json.dumps(summary, indent=1, default=str) if args.json else summarize(args.out))
    if summary.get("best") is None:
        print(f"albsent sweep: error: {no_trial_completed(summary, args.out)}", file=sys.stderr)
        return 1
    return 0
