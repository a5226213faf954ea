"""Cross-corpus accuracy: a model chosen and trained on one development corpus, scored on the
other (EMO-DB, acted, <-> EmoSpeech, natural; both 3-way sentiment: bench/corpora.py). With two
corpora this is leave-one-corpus-out, each direction once.

Per direction SRC -> DST, on the stores bench/accuracy.py extracted (WORK/CORPUS/store, features
mfcc,shortterm,egemaps,compare,level, the same extract config for both):

1. auto: `albsent train --store SRC --auto` (selection by nested speaker-independent CV on SRC
   only; the final ensemble refitted on all of SRC) into OUT/SRC/auto, or, with --reuse-auto, the
   final model of bench/accuracy.py's run WORK/SRC/auto (the same command with --folds 5); then
   `albsent evaluate RUN DST_STORE` (albsent.app.run_evaluate: the store used as it is, its
   config checked against the run's).
2. plain recipes, each trained by `albsent train --features F --model M --class-weighted
   [--speaker-norm]` on SRC (its default speaker-independent hold-out split: the model is fitted
   on SRC's training and validation speakers) and scored the same way: F in {mfcc, egemaps.func,
   mfcc+egemaps.func} x {global z-score, per-speaker z-score} x M in {sklearn_logreg, svm_rbf}:
   the 12 recipes of bench/accuracy.py, written with albsent. "Best" is the best of the 12 on DST,
   chosen with hindsight (an upper bound for picking one of them).

Figures: pooled macro-F1 (and balanced accuracy) over every DST utterance, from DST's
metrics.json; within-corpus figures (bench/accuracy.py's WORK/accuracy.json, when present) beside
them for the gap. Prints a Markdown table and writes OUT/cross_corpus.json (--table: print the
table of an earlier OUT/cross_corpus.json again).

    .venv/bin/python bench/cross_corpus.py [--work /tmp/albsent-accuracy] [--out DIR] [--reuse-auto] [--table]
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import time
from pathlib import Path

CORPORA = ("emodb", "emospeech")
FEATURES = ("mfcc", "egemaps.func", "mfcc+egemaps.func")
MODELS = ("sklearn_logreg", "svm_rbf")


def recipes() -> list[dict]:
    return [{"features": f, "model": m, "speaker_norm": n, "class_weighted": True}
            for f in FEATURES for n in (False, True) for m in MODELS]


def recipe_name(r: dict) -> str:
    return f"{r['features']} {'per-speaker' if r['speaker_norm'] else 'global'} z {r['model']}"


def scored(run: Path, dst_store: Path, out: Path) -> dict:
    from albsent.app.run_evaluate import run_evaluate
    from albsent.train.evaluate import EvaluateConfig

    start = time.perf_counter()
    m = run_evaluate(str(run), str(dst_store), str(out), EvaluateConfig(), progress=False)
    return {"macro_f1": m["macro_f1"], "balanced_accuracy": m["balanced_accuracy"], "accuracy": m["accuracy"],
            "n": m["n"], "models": m["models"], "evaluate_s": round(time.perf_counter() - start, 1)}


def train_auto(src_store: Path, run: Path) -> float:
    from albsent.app.run_auto import run_auto
    from albsent.train.select import AutoConfig

    start = time.perf_counter()
    run_auto(AutoConfig(store=str(src_store)), run)
    return round(time.perf_counter() - start, 1)


def train_recipe(src_store: Path, recipe: dict, run: Path) -> dict:
    from albsent.app.run_train import train_one
    from albsent.config import build
    from albsent.train import TrainConfig

    m = train_one(build(TrainConfig, {"store": str(src_store), **recipe}), run)
    return {"within_holdout_macro_f1": m["macro_f1"]}


def direction(src: str, dst: str, work: Path, out: Path, reuse_auto: bool) -> dict:
    src_store, dst_store = work / src / "store", work / dst / "store"
    here = out / f"{src}_to_{dst}"
    report: dict = {"train": src, "test": dst}
    auto = work / src / "auto"
    if reuse_auto and (auto / "ensemble.json").is_file():
        report["auto_run"] = str(auto)
    else:
        auto = here / "auto_run"
        report["auto_run"], report["auto_train_s"] = str(auto), train_auto(src_store, auto)
    report["auto"] = scored(auto, dst_store, here / "auto_eval")
    report["recipes"] = {}
    for r in recipes():
        name = recipe_name(r)
        slug = name.replace(" ", "_").replace("+", "-")
        run = here / "recipes" / slug
        got = train_recipe(src_store, r, run)
        report["recipes"][name] = {**got, **scored(run, dst_store, here / "recipes_eval" / slug)}
        logging.info("%s -> %s %s: macro-F1 %.3f", src, dst, name, report["recipes"][name]["macro_f1"])
    best = max(report["recipes"], key=lambda k: report["recipes"][k]["macro_f1"])
    report["best_recipe"] = {"name": best, **report["recipes"][best]}
    return report


def within(work: Path) -> dict:
    """{corpus: {"auto", "best_recipe", "best"}}: within-corpus pooled macro-F1 (5-fold, by speaker)
    from bench/accuracy.py's WORK/accuracy.json, when it was run."""
    path = work / "accuracy.json"
    if not path.is_file():
        return {}
    out = {}
    for rep in json.loads(path.read_text()).get("corpora", []):
        if rep.get("corpus") in CORPORA:
            out[rep["corpus"]] = {"auto": rep["albsent"]["macro_f1"], "best_recipe": rep["best_recipe"],
                                  "best": rep["best"]["macro_f1"]}
    return out


def markdown(reports: list[dict], inside: dict) -> str:
    lines = ["| train -> test | auto | best plain recipe (hindsight on test) | within train corpus: auto / best "
             "plain | within test corpus: auto / best plain |", "|---|---|---|---|---|"]
    for r in reports:
        a, b = r["auto"], r["best_recipe"]
        w = [f"{inside[c]['auto']:.3f} / {inside[c]['best']:.3f}" if c in inside else "–"
             for c in (r["train"], r["test"])]
        lines.append(f"| {r['train']} -> {r['test']} | {a['macro_f1']:.3f} | {b['macro_f1']:.3f} ({b['name']}) | "
                     f"{w[0]} | {w[1]} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/albsent-accuracy"), help="bench/accuracy.py's WORK")
    p.add_argument("--out", type=Path, default=None, help="default WORK/cross_corpus")
    p.add_argument("--reuse-auto", action="store_true", help="score bench/accuracy.py's WORK/CORPUS/auto runs")
    p.add_argument("--table", action="store_true", help="only print the table of OUT/cross_corpus.json")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = args.out or args.work / "cross_corpus"
    if args.table:
        print(markdown(json.loads((out / "cross_corpus.json").read_text())["reports"], within(args.work)))
        return
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    reports = [direction(src, dst, args.work, out, args.reuse_auto)
               for src, dst in ((CORPORA[0], CORPORA[1]), (CORPORA[1], CORPORA[0]))]
    result = {"started_utc": started, "reports": reports, "within": within(args.work)}
    (out / "cross_corpus.json").write_text(json.dumps(result, indent=1, default=float))
    print(markdown(reports, result["within"]))


if __name__ == "__main__":
    main()
