"""`albsent pretrain --store STORE --features SPEC --model NAME --target MODE --out AE_RUN`."""

from __future__ import annotations

import argparse
import json

from albsent.app.args import common_config_args, tracking_args, tracking_of

EPILOG = """Trains a next-frame autoencoder on a store's frame sequences; labels, if present, are ignored.
targets: next (frames 1..N -> N+1), shifted (1..N -> 2..N+1), reconstruct (1..N -> 1..N)
Outputs in AE_RUN: model.safetensors + model.json (config, normalisation, attachment points,
metrics, history), config.yaml, loss_curve.png, checkpoints/step-N/ (with checkpoint_every).
Then: albsent probe --pretrained AE_RUN --store LABELED_STORE --attach POINT --out RUN
Example: albsent pretrain --store st --features mfcc --model mlstm --target next --iterations 2000 --out runs/ae_mlstm"""  # noqa: E501


def add_parser(sub) -> None:
    p = sub.add_parser("pretrain", help="unsupervised next-frame autoencoder on a store (labels ignored)",
                       description="Pretrain a next-frame autoencoder (Latent Sentiment paper) on frame sequences.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", metavar="STORE", help="feature store with frame sequences (albsent extract --out)")
    p.add_argument("--features", metavar="SPEC",
                   help="sequence feature spec: mfcc, mfcc+shortterm:seq, ssl:ALIAS:seq:L")
    p.add_argument("--model", metavar="NAME", help="autoencoder (see --list-models; default mlstm)")
    p.add_argument("--target", choices=["next", "shifted", "reconstruct"], help="prediction target (default next)")
    p.add_argument("--window", type=int, metavar="N", help="window length in frames (default 15)")
    p.add_argument("--iterations", type=int, help="training iterations (default 10000)")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    p.add_argument("--seed", type=int)
    p.add_argument("--out", metavar="AE_RUN", help="run folder to write")
    p.add_argument("--list-models", action="store_true", help="print the registered autoencoders and exit")
    p.add_argument("--list-attach", metavar="MODEL",
                   help="print MODEL's attachment points (with --config/--set/--in-dim) and exit")
    p.add_argument("--in-dim", type=int, default=120,
                   help="feature dims per frame for --list-attach (default 120 = mfcc)")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    common_config_args(p)
    tracking_args(p)
    p.set_defaults(func=run)


def flags_to_config(args) -> dict:
    extra: dict = {}
    for key in ("features", "iterations", "lr", "seed"):
        if getattr(args, key) is not None:
            extra[key] = getattr(args, key)
    if args.model is not None or args.list_attach:
        extra["model"] = {"name": args.list_attach or args.model}
    window = {k: v for k, v in (("target", args.target), ("length", args.window)) if v is not None}
    if window:
        extra["window"] = window
    return extra


def run(args) -> int:
    from albsent.app.run_pretrain import run_pretrain
    from albsent.config import load
    from albsent.errors import ConfigError
    from albsent.models.autoencoders import AUTOENCODERS, attach_points
    from albsent.pretrain.config import PretrainConfig

    if args.list_models:
        for name, cls in sorted(AUTOENCODERS.items()):
            print(f"{name:<18} {(cls.__doc__ or '').strip().splitlines()[0]}")
        return 0
    config = load(PretrainConfig, args.config, args.sets, flags_to_config(args))
    if args.list_attach:
        w = config.window
        print(f"attachment points of {config.model.name} (in_dim={args.in_dim}, window={w.length}, target={w.target}):")
        for p in attach_points(config.model, args.in_dim, w.length, w.target):
            print(f"  {p.name:<22} ({p.dim},)  {p.doc}")
        return 0
    if not args.out or not args.store:
        raise ConfigError("albsent pretrain needs --store STORE and --out AE_RUN "
                          "(or --list-models / --list-attach MODEL)")
    m = run_pretrain(config, args.store, args.out, tracking=tracking_of(args)).metrics
    if args.json:
        print(json.dumps(m, indent=1))
    else:
        print(f"{config.model.name} ({m['parameters']} params), {m['iterations']} iterations "
              f"in {m['seconds']:.0f} s -> {args.out}\n"
              f"validation loss {m['val_loss']:.4f} vs predict-the-mean {m['val_mean_baseline']:.4f} "
              f"(ratio {m['val_ratio']:.3f}), copy-last-frame {m['val_copy_baseline']:.4f}; "
              f"train loss {m['train_loss']:.4f}")
    return 0
