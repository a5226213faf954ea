"""Accuracy: albsent's automatic recipe selection (`albsent train --auto`) against the standard
recipes a practitioner writes in an afternoon, on the same speaker-independent outer folds.

Measured, per corpus (EMO-DB sentiment: 535 clips, 10 speakers; EmoSpeech sentiment: 2,023
clips, 106 speakers; labels negative / neutral / positive):

1. albsent: `albsent extract MANIFEST --features mfcc,shortterm,egemaps,compare` into
   WORK/CORPUS/store (once; kept), then `albsent train --store STORE --auto --folds 5` into
   WORK/CORPUS/auto, timed (wall seconds of the whole command). Its outer out-of-fold predictions
   (RUN/predictions.csv) give the folds and albsent's pooled macro-F1.
2. The same outer folds for every recipe: each store row is mapped to its manifest row by the
   absolute path the store records. Clips albsent quarantined (no store row, or no fold) are left
   out of every recipe and counted. Without an albsent run (`--skip-albsent` and no RUN) the folds
   are StratifiedGroupKFold(5, shuffle=True, random_state=0) by speaker over the manifest.
3. 12 standard recipes, written plainly with librosa / openSMILE / scikit-learn (no albsent code):
   features {MFCC40+delta mean/std (160), eGeMAPSv02 functionals (88), both (248)}
   x normalisation {z-score fitted on the training speakers, z-score per speaker}
   x classifier {LogisticRegression, SVC rbf}, both class-balanced, each in
   make_pipeline(StandardScaler(), clf). Per-clip features are cached in
   WORK/CORPUS/plain_features.npz.
4. Pooled macro-F1: f1_score over all out-of-fold predictions pooled, for each recipe and for
   albsent on the same rows (albsent's own metrics.json `pooled.macro_f1` is printed as a check).

Prints two Markdown tables (albsent vs the best recipe per corpus; all 12 recipes) and writes
WORK/accuracy.json with every figure.

    .venv/bin/python bench/accuracy.py [--corpus emodb] [--work DIR] [--skip-albsent]

`--skip-albsent` does not run albsent: an existing WORK/CORPUS/auto run is used when present,
otherwise the plain folds above. Feature extraction for the recipes takes ~15 s (EMO-DB) and
~3 min (EmoSpeech) on 2 shared cores, once; the 12 recipes then take ~10 s and ~1 min.

Licence: eGeMAPS features come from openSMILE (audEERING), which is licensed for research and
other non-commercial use only; so are figures that depend on it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import albsent_cmd, albsent_env  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402
from sklearn.model_selection import StratifiedGroupKFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CORPORA = ("emodb", "emospeech")
ALBSENT_FEATURES = "mfcc,shortterm,egemaps,compare"
FOLDS = 5
SR = 16000
JOBS = 2
CHUNK = 32  # clips per joblib task (one openSMILE object per task)


# ---------------------------------------------------------------- albsent


def albsent_train_cmd(store: Path, run: Path, overwrite: bool) -> list[str]:
    cmd = [sys.executable, "-m", "albsent.cli", "-q", "train", "--store", str(store), "--auto",
           "--folds", str(FOLDS), "--out", str(run)]
    return cmd + ["--overwrite"] if overwrite else cmd


def accepts_overwrite(env: dict) -> bool:
    out = subprocess.run([sys.executable, "-m", "albsent.cli", "train", "--help"], env=env,
                         capture_output=True, text=True).stdout
    return "--overwrite" in out


def run_albsent(manifest: Path, work: Path) -> dict:
    """Extract the store (when missing), then time `albsent train --auto`. Returns timings."""
    env = {**albsent_env(), "HF_HUB_OFFLINE": "1"}
    store, run = work / "store", work / "auto"
    info = {}
    if not store.exists():
        ray_tmp = tempfile.mkdtemp(prefix="abr-", dir="/tmp")
        try:
            start = time.perf_counter()
            done = subprocess.run(albsent_cmd(manifest, store, ray_tmp, ["--features", ALBSENT_FEATURES]),
                                  env=env, capture_output=True, text=True)
            info["extract_wall_s"] = round(time.perf_counter() - start, 1)
        finally:
            shutil.rmtree(ray_tmp, ignore_errors=True)
        if done.returncode != 0:
            raise RuntimeError(f"albsent extract failed:\n{done.stderr[-3000:]}")
        info["extract_summary"] = json.loads(done.stdout.strip().splitlines()[-1])
    overwrite = accepts_overwrite(env)
    if not overwrite:
        shutil.rmtree(run, ignore_errors=True)
    cmd = albsent_train_cmd(store, run, overwrite)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    info.update(train_wall_s=round(wall, 1), train_cmd=" ".join(cmd[1:]))
    (work / "auto_timing.json").write_text(json.dumps(info, indent=2))
    return info


def previous_timing(work: Path) -> dict:
    path = work / "auto_timing.json"
    return json.loads(path.read_text()) if path.exists() else {}


# ---------------------------------------------------------------- rows and folds


def load_manifest(manifest: Path) -> pd.DataFrame:
    df = pd.read_csv(manifest, dtype={"speaker": str})
    df["abspath"] = [str((manifest.parent / p).resolve()) for p in df["path"]]
    return df[["abspath", "label", "speaker"]]


def albsent_folds(manifest: pd.DataFrame, store: Path, run: Path) -> tuple[pd.Series, pd.DataFrame]:
    """Outer fold per manifest row (NaN: no fold) from RUN/predictions.csv, through the store's
    id -> path; and albsent's predictions with the manifest row index attached."""
    rows = pd.read_parquet(store, columns=["id", "path", "speaker", "label"])
    rows["abspath"] = [str(Path(p).resolve()) for p in rows["path"]]
    pred = pd.read_csv(run / "predictions.csv", dtype={"id": str, "group": str})
    rows["id"] = rows["id"].astype(str)
    pred = pred.merge(rows[["id", "abspath"]], on="id", how="left", validate="many_to_one")
    if pred["abspath"].isna().any():
        raise SystemExit(f"{run}: {pred['abspath'].isna().sum()} predictions with an id not in {store}")
    index = pd.Series(manifest.index, index=manifest["abspath"])
    pred["row"] = pred["abspath"].map(index)
    if pred["row"].isna().any():
        raise SystemExit(f"{run}: {pred['row'].isna().sum()} store paths not in the manifest")
    pred = pred[pred["fold"].notna()].astype({"row": int, "fold": int})
    per_row = pred.groupby("row")["fold"].agg(["min", "max"])
    if (per_row["min"] != per_row["max"]).any():
        raise SystemExit(f"{run}: a clip has rows in different folds")
    if (pred["label"].astype(str).values != manifest.loc[pred["row"], "label"].astype(str).values).any():
        raise SystemExit(f"{run}: labels in predictions.csv differ from the manifest's")
    return per_row["min"].reindex(manifest.index), pred


def plain_folds(manifest: pd.DataFrame) -> pd.Series:
    cv = StratifiedGroupKFold(FOLDS, shuffle=True, random_state=0)
    fold = np.zeros(len(manifest), dtype=int)
    for k, (_, test) in enumerate(cv.split(manifest, manifest["label"], manifest["speaker"]), start=1):
        fold[test] = k
    return pd.Series(fold, index=manifest.index)


def check_speaker_independent(manifest: pd.DataFrame, fold: pd.Series) -> None:
    used = fold.notna()
    per_speaker = fold[used].groupby(manifest.loc[used, "speaker"]).nunique()
    if (per_speaker > 1).any():
        raise SystemExit(f"folds are not speaker-independent: {list(per_speaker[per_speaker > 1].index)}")


# ---------------------------------------------------------------- plain features


def mfcc_stats(y: np.ndarray) -> np.ndarray:
    """MFCC40 + delta, mean and std over frames: 160 values."""
    import librosa

    mfcc = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=40, n_mels=40, n_fft=512, win_length=400, hop_length=160)
    delta = librosa.feature.delta(mfcc)  # width 9: needs >= 9 frames (90 ms); the clips here last 2-3 s
    return np.concatenate([mfcc.mean(1), mfcc.std(1), delta.mean(1), delta.std(1)])


def features_of(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """One joblib task: MFCC stats and eGeMAPSv02 functionals of each clip (16 kHz mono)."""
    import librosa
    import opensmile

    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals)
    mfcc, egemaps = [], []
    for path in paths:
        y, _ = librosa.load(path, sr=SR, mono=True)
        mfcc.append(mfcc_stats(y))
        egemaps.append(smile.process_signal(y, SR).to_numpy()[0])
    return np.asarray(mfcc), np.asarray(egemaps)


def plain_features(manifest: pd.DataFrame, cache: Path) -> tuple[dict[str, np.ndarray], float | None]:
    """{"mfcc": (n, 160), "egemaps": (n, 88)} in manifest order, from the cache when it matches."""
    paths = manifest["abspath"].tolist()
    if cache.exists():
        saved = np.load(cache, allow_pickle=False)
        if saved["paths"].tolist() == paths:
            return {"mfcc": saved["mfcc"], "egemaps": saved["egemaps"]}, None
    start = time.perf_counter()
    chunks = [paths[i:i + CHUNK] for i in range(0, len(paths), CHUNK)]
    parts = Parallel(n_jobs=JOBS, verbose=5)(delayed(features_of)(c) for c in chunks)
    feats = {"mfcc": np.concatenate([p[0] for p in parts]), "egemaps": np.concatenate([p[1] for p in parts])}
    seconds = time.perf_counter() - start
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, paths=np.asarray(paths), **feats)
    return feats, seconds


# ---------------------------------------------------------------- recipes


def recipes() -> list[tuple[str, tuple[str, ...], str, object]]:
    """(name, feature blocks, normalisation, classifier) for the 12 standard recipes."""
    feature_sets = {"MFCC40+Δ": ("mfcc",), "eGeMAPS": ("egemaps",), "MFCC40+Δ + eGeMAPS": ("mfcc", "egemaps")}
    norms = {"train z": "train", "per-speaker z": "speaker"}
    classifiers = {"logreg": LogisticRegression(class_weight="balanced", max_iter=2000),
                   "SVM rbf": SVC(kernel="rbf", C=1, class_weight="balanced")}
    return [(f"{f} · {n} · {c}", blocks, norm, clf)
            for f, blocks in feature_sets.items() for n, norm in norms.items() for c, clf in classifiers.items()]


def per_speaker_z(X: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """Each speaker's rows z-scored with that speaker's own mean and std (test speakers too: their
    statistics need no labels). A constant column stays 0."""
    out = np.empty_like(X)
    for s in np.unique(speakers):
        rows = speakers == s
        std = X[rows].std(0)
        out[rows] = (X[rows] - X[rows].mean(0)) / np.where(std > 0, std, 1.0)
    return out


def out_of_fold(X: np.ndarray, y: np.ndarray, fold: np.ndarray, clf) -> np.ndarray:
    pred = np.empty(len(y), dtype=object)
    for k in np.unique(fold):
        test = fold == k
        model = make_pipeline(StandardScaler(), clone(clf)).fit(X[~test], y[~test])
        pred[test] = model.predict(X[test])
    return pred


def run_recipes(feats: dict, used: pd.DataFrame, fold: np.ndarray) -> list[dict]:
    y, speakers = used["label"].to_numpy(), used["speaker"].to_numpy()
    results = []
    for name, blocks, norm, clf in recipes():
        X = np.concatenate([feats[b][used.index] for b in blocks], axis=1)
        X = np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0)  # non-finite values (e.g. a silent clip's F0 stats) -> 0
        if norm == "speaker":
            X = per_speaker_z(X, speakers)
        start = time.perf_counter()
        pred = out_of_fold(X, y, fold, clf)
        results.append({"recipe": name, "features": "+".join(blocks), "normalisation": norm,
                        "classifier": type(clf).__name__, "dims": X.shape[1],
                        "macro_f1": float(f1_score(y, pred, average="macro")),
                        "fit_s": round(time.perf_counter() - start, 1)})
    return results


# ---------------------------------------------------------------- one corpus


def evaluate(corpus: str, work_root: Path, skip_albsent: bool) -> dict:
    manifest_path = DATA / corpus / "manifest_sentiment.csv"
    work = work_root / corpus
    work.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(manifest_path)
    timing = previous_timing(work) if skip_albsent else run_albsent(manifest_path, work)
    store, run = work / "store", work / "auto"
    have_run = (run / "predictions.csv").exists() and store.exists()
    albsent = None
    if have_run:
        fold, pred = albsent_folds(manifest, store, run)
        source = f"albsent --auto outer folds ({run / 'predictions.csv'})"
    else:
        fold, pred = plain_folds(manifest), None
        source = "StratifiedGroupKFold(5, shuffle=True, random_state=0) by speaker (no albsent run)"
    check_speaker_independent(manifest, fold)
    used = manifest[fold.notna()]
    excluded = manifest.loc[fold.isna(), "abspath"].tolist()
    fold_used = fold[used.index].astype(int).to_numpy()

    feats, feature_s = plain_features(manifest, work / "plain_features.npz")
    start = time.perf_counter()
    results = run_recipes(feats, used, fold_used)
    recipes_s = time.perf_counter() - start
    if pred is not None:
        metrics = json.loads((run / "metrics.json").read_text())
        albsent = {"macro_f1": float(f1_score(pred["label"].astype(str), pred["pred"].astype(str), average="macro")),
                   "metrics_json_pooled_macro_f1": metrics.get("pooled", {}).get("macro_f1"),
                   "prediction_rows": len(pred), **timing}
    best = max(results, key=lambda r: r["macro_f1"])
    return {"corpus": corpus, "manifest": str(manifest_path), "rows": len(manifest), "rows_used": len(used),
            "excluded": len(excluded), "excluded_paths": excluded, "fold_source": source,
            "plain_feature_s": None if feature_s is None else round(feature_s, 1),
            "recipes_s": round(recipes_s, 1),
            "nonfinite_feature_values": {k: int((~np.isfinite(v[used.index])).sum()) for k, v in feats.items()},
            "albsent": albsent, "best_recipe": best["recipe"], "best_macro_f1": best["macro_f1"],
            "margin": None if albsent is None else albsent["macro_f1"] - best["macro_f1"], "recipes": results}


# ---------------------------------------------------------------- report


def fmt(x, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def margin(x) -> str:
    return "—" if x is None else f"{x:+.3f}"


def markdown(reports: list[dict]) -> str:
    lines = ["| corpus | rows used (excluded) | albsent --auto F1 | albsent train wall s | best standard recipe "
             "| its F1 | margin (albsent − best) |", "|---|---|---|---|---|---|---|"]
    for r in reports:
        a = r["albsent"] or {}
        lines.append(f"| {r['corpus']} | {r['rows_used']} ({r['excluded']}) | {fmt(a.get('macro_f1'))} "
                     f"| {fmt(a.get('train_wall_s'), 0)} | {r['best_recipe']} | {fmt(r['best_macro_f1'])} "
                     f"| {margin(r['margin'])} |")
    lines += ["", "Pooled macro-F1 of the 12 standard recipes:", "",
              "| recipe | " + " | ".join(r["corpus"] for r in reports) + " |",
              "|---|" + "---|" * len(reports)]
    for i, name in enumerate(x["recipe"] for x in reports[0]["recipes"]):
        lines.append(f"| {name} | " + " | ".join(fmt(r["recipes"][i]["macro_f1"]) for r in reports) + " |")
    lines += [""] + [f"- {r['corpus']}: folds from {r['fold_source']}; albsent metrics.json pooled macro-F1 "
                     f"{fmt((r['albsent'] or {}).get('metrics_json_pooled_macro_f1'))}" for r in reports]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", action="append", choices=CORPORA, help="repeatable (default: both)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/albsent-accuracy"),
                    help="stores, runs and the feature cache (default /tmp/albsent-accuracy)")
    ap.add_argument("--skip-albsent", action="store_true",
                    help="do not run albsent; use an existing WORK/CORPUS/auto run, else plain folds")
    args = ap.parse_args()
    reports = [evaluate(c, args.work, args.skip_albsent) for c in args.corpus or CORPORA]
    print(markdown(reports))
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "accuracy.json").write_text(json.dumps(reports, indent=2))


if __name__ == "__main__":
    main()
