"""Accuracy: albsent's automatic recipe selection (`albsent train --auto`) against the standard
recipes a practitioner writes in an afternoon and against nkululeko, a peer tool, all on the same
speaker-independent outer folds, on every development corpus (bench/corpora.py: EMO-DB and
EmoSpeech, 3-way sentiment and their emotions, acted and natural, and EMO-DB with the recording
level varied per speaker).

Measured, per corpus:

1. albsent: `albsent extract WORK/CORPUS/manifest.csv --features mfcc,shortterm,egemaps,compare,level`
   into WORK/CORPUS/store (once; kept; a corpus with the same clips as one already extracted,
   e.g. emodb_emotion after emodb, starts from a copy of that store and extract only relabels
   it), then `albsent train --store STORE --auto --folds 5` into WORK/CORPUS/auto, timed (wall
   seconds of the whole command). Its outer out-of-fold predictions (RUN/predictions.csv) give
   the folds and albsent's figures.
2. The same outer folds for every system: each store row is mapped to its manifest row by the
   absolute path the store records. Clips albsent quarantined (no store row, or no fold) are left
   out of every system and counted. Without an albsent run (`--skip-albsent` and no RUN) the folds
   are StratifiedGroupKFold(5, shuffle=True, random_state=0) by speaker over the manifest.
3. 12 standard recipes, written plainly with librosa / openSMILE / scikit-learn (no albsent code):
   features {MFCC40+delta mean/std (160), eGeMAPSv02 functionals (88), both (248)}
   x normalisation {z-score fitted on the training speakers, z-score per speaker}
   x classifier {LogisticRegression, SVC rbf}, both class-balanced, each in
   make_pipeline(StandardScaler(), clf). Per-clip features (16 kHz) are cached in
   WORK/features/, keyed by the list of clips. "Best" is the best of the 12 on these folds,
   chosen with hindsight (an upper bound for picking one of them).
4. nkululeko (bench/peers.py): the real tool, in its own virtualenv WORK/nkululeko-venv (created
   on first use), its eGeMAPS + class-weighted SVM recipe, once per fold on exactly these folds
   (the reported figures) and once with its `[MODEL] logo` over a `fold` column (its scaler is
   fitted on one split only; see bench/peers.py). Its predictions are read back and checked.
5. Figures, all computed here with scikit-learn from the out-of-fold predictions: pooled macro-F1
   (f1_score over all out-of-fold predictions) and per-fold UAR (balanced_accuracy_score on each
   fold's test speakers), with its mean over folds. albsent's own metrics.json pooled macro-F1 is
   kept as a check.

6. With --augment SPEC (issue 27): augmentation inside training folds, on the same outer folds.
   WORK/CORPUS/store_aug is extracted with `--augment SPEC` (the originals' features are those of
   WORK/CORPUS/store), then `albsent train --auto --augmented` (WORK/CORPUS/auto_aug) and one plain
   albsent recipe (eGeMAPS functionals, per-speaker z, RBF SVM, `--folds 5`) without and with
   `--augmented` on that store. Every run's outer folds are checked identical to the auto run's
   (a copy is never in a test fold), and pooled macro-F1 with and without augmentation is reported.

Prints Markdown tables (per corpus; per fold; all 12 recipes) and writes WORK/accuracy.json
(WORK/accuracy_limitN.json with --limit) with every figure, the albsent commit, the files changed
in its work tree, and the start time.

    .venv/bin/python bench/accuracy.py [--corpus NAME ...] [--work DIR] [--limit N]
        [--skip-albsent] [--no-nkululeko]

--corpus: emodb, emodb_emotion, emodb_levels, emospeech, emospeech_emotion (repeatable; default
all). --limit N: a label-stratified subset of N clips per corpus, in WORK/CORPUS_limitN (smoke
runs; `--corpus emodb --limit 150` takes ~4 min). --skip-albsent: do not run albsent; use an
existing WORK/CORPUS/auto run when present, otherwise the plain folds above. Measured on 2 cores
shared with other work (2026-12-05): albsent extract 87 s (EMO-DB) and 242 s (EmoSpeech), a few
seconds for a corpus relabelled from a copied store; albsent train --auto 85-220 s (EMO-DB
corpora) and 570-1,300 s (EmoSpeech corpora, load average up to 15); the recipes' features
~30 s and ~3 min once; nkululeko 40-170 s per corpus; all five corpora ~70 min.

Licence: eGeMAPS features come from openSMILE (audEERING), which is licensed for research and
other non-commercial use only; so are figures that depend on it.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
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
from corpora import CORPORA, Corpus, write_manifest  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402
from peers import nkululeko_python, run_nkululeko  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import balanced_accuracy_score, f1_score  # noqa: E402
from sklearn.model_selection import StratifiedGroupKFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

ALBSENT_FEATURES = "mfcc,shortterm,egemaps,compare,level"
FOLDS = 5
SR = 16000
JOBS = 2
CHUNK = 32  # clips per joblib task (one openSMILE object per task)
PROJECT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- albsent


def albsent_train_cmd(store: Path, run: Path, overwrite: bool) -> list[str]:
    cmd = [sys.executable, "-m", "albsent.cli", "-q", "train", "--store", str(store), "--auto",
           "--folds", str(FOLDS), "--out", str(run)]
    return cmd + ["--overwrite"] if overwrite else cmd


def accepts_overwrite(env: dict) -> bool:
    out = subprocess.run([sys.executable, "-m", "albsent.cli", "train", "--help"], env=env,
                         capture_output=True, text=True).stdout
    return "--overwrite" in out


def sibling_store(corpus: Corpus, work_root: Path, suffix: str, manifest: Path, name: str = "store",
                  done: str = "auto_timing.json") -> Path | None:
    """WORK/OTHER/`name` of another corpus with exactly the same clips (same `audio`, same paths),
    if any, once its run wrote `done`."""
    paths = set(pd.read_csv(manifest)["path"])
    for other in CORPORA.values():
        work = work_root / f"{other.name}{suffix}"
        if (other.name != corpus.name and other.audio == corpus.audio and (work / name / "_albsent.json").exists()
                and (work / done).exists() and set(pd.read_csv(work / "manifest.csv")["path"]) == paths):
            return work / name
    return None


def extract_store(manifest: Path, audio_root: Path, store: Path, seed: Path | None, extra: list[str]) -> dict:
    """`albsent extract MANIFEST --out STORE --allow-root AUDIO_ROOT EXTRA...` in a fresh process
    (from a copy of `seed` when given: it then only relabels); returns its timing and summary."""
    env = {**albsent_env(), "HF_HUB_OFFLINE": "1"}
    info: dict = {}
    if seed is not None:
        shutil.copytree(seed, store, ignore=shutil.ignore_patterns("_lock.json"))
        info["store_copied_from"] = str(seed)
    ray_tmp = tempfile.mkdtemp(prefix="abr-", dir="/tmp")
    try:
        start = time.perf_counter()
        done = subprocess.run(albsent_cmd(manifest, store, ray_tmp, ["--allow-root", str(audio_root), *extra]),
                              env=env, capture_output=True, text=True)
        info["extract_wall_s"] = round(time.perf_counter() - start, 1)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    if done.returncode != 0:
        shutil.rmtree(store, ignore_errors=True)
        raise RuntimeError(f"albsent extract {' '.join(extra)} failed:\n{done.stderr[-3000:]}")
    info["extract_summary"] = json.loads(done.stdout.strip().splitlines()[-1])
    return info


def run_albsent(manifest: Path, audio_root: Path, work: Path, seed: Path | None, features: str) -> dict:
    """Extract the store (when missing; from a copy of `seed` when given), then time
    `albsent train --auto`. Returns timings."""
    env = {**albsent_env(), "HF_HUB_OFFLINE": "1"}
    store, run = work / "store", work / "auto"
    info = {"features": features}
    if not store.exists():
        info.update(extract_store(manifest, audio_root, store, seed, ["--features", features]))
    overwrite = accepts_overwrite(env)
    if not overwrite:
        shutil.rmtree(run, ignore_errors=True)
    cmd = albsent_train_cmd(store, run, overwrite)
    info["albsent"] = albsent_version()
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    info.update(train_wall_s=round(wall, 1), train_cmd=" ".join(cmd[1:]),
                finished=datetime.datetime.now().isoformat(timespec="seconds"))
    (work / "auto_timing.json").write_text(json.dumps(info, indent=2))
    return info


PLAIN_RECIPE = ["--features", "egemaps.func", "--model", "svm_rbf", "--speaker-norm", "--class-weighted",
                "--set", "split.val_fraction=0"]


def run_augmented(manifest: Path, audio_root: Path, work: Path, seed: Path | None, features: str, spec: str) -> dict:
    """Extract WORK/store_aug with --augment SPEC (when missing; from a copy of `seed` when given), then
    time `albsent train --auto --augmented` into WORK/auto_aug and the plain recipe with and without
    --augmented (WORK/plain, WORK/plain_aug). Returns timings."""
    env = {**albsent_env(), "HF_HUB_OFFLINE": "1"}
    store = work / "store_aug"
    info: dict = {"augment": spec}
    if not store.exists():
        info.update(extract_store(manifest, audio_root, store, seed, ["--features", features, "--augment", spec]))
    runs = {"auto_aug": ["--auto", "--augmented"], "plain": PLAIN_RECIPE, "plain_aug": [*PLAIN_RECIPE, "--augmented"]}
    for name, flags in runs.items():
        cmd = [sys.executable, "-m", "albsent.cli", "-q", "train", "--store", str(store), "--folds", str(FOLDS),
               "--out", str(work / name), "--overwrite", *flags]
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
        info[f"{name}_wall_s"] = round(time.perf_counter() - start, 1)
        info[f"{name}_cmd"] = " ".join(cmd[3:])
    (work / "augment_timing.json").write_text(json.dumps(info, indent=2))
    return info


def augmentation(corpus: Corpus, work_root: Path, suffix: str, args, manifest_path: Path, audio_root: Path,
                 manifest: pd.DataFrame, fold: pd.Series, albsent: dict | None) -> dict:
    """Pooled macro-F1 with and without augmentation on the auto run's outer folds (section 6)."""
    work = work_root / f"{corpus.name}{suffix}"
    seed = None if (work / "store_aug").exists() else \
        sibling_store(corpus, work_root, suffix, manifest_path, "store_aug", "augment_timing.json")
    timing = run_augmented(manifest_path, audio_root, work, seed, args.albsent_features, args.augment)
    used = fold.notna()
    y = manifest.loc[used, "label"].to_numpy()
    fold_used = fold[used].astype(int).to_numpy()
    out = {"spec": args.augment, **timing, "auto": (albsent or {}).get("macro_f1")}
    for name in ("auto_aug", "plain", "plain_aug"):
        f, pred = albsent_folds(manifest, work / "store_aug", work / name)
        if not f[used].astype(int).equals(fold[used].astype(int)):
            raise SystemExit(f"{work / name}: its outer folds differ from the auto run's")
        p = pred.set_index("row")["pred"].astype(str).reindex(manifest.index[used]).to_numpy()
        out[name] = scores(y, p, fold_used)["macro_f1"]
    return out


def previous_timing(work: Path) -> dict:
    path = work / "auto_timing.json"
    return json.loads(path.read_text()) if path.exists() else {}


def albsent_version() -> dict:
    """The commit albsent runs from, the files under albsent/ that differ from it, and a sha1 of
    those differences (diff and untracked files), so runs made while albsent changes can be told
    apart."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=PROJECT, capture_output=True, text=True).stdout

    diff = git("diff", "HEAD", "--", "albsent").encode()
    for path in git("ls-files", "--others", "--exclude-standard", "--", "albsent").split():
        diff += (PROJECT / path).read_bytes()
    return {"commit": git("rev-parse", "HEAD").strip(), "commit_date": git("log", "-1", "--format=%cI").strip(),
            "changed_files": git("status", "--porcelain", "--", "albsent").splitlines(),
            "changes_sha1": hashlib.sha1(diff).hexdigest()}


# ---------------------------------------------------------------- rows and folds


def load_manifest(manifest: Path) -> pd.DataFrame:
    df = pd.read_csv(manifest, dtype={"speaker": str, "label": str})
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
    if pred["row"].duplicated().any():
        raise SystemExit(f"{run}: a clip has more than one prediction")
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


def scores(y: np.ndarray, pred: np.ndarray, fold: np.ndarray) -> dict:
    """Pooled macro-F1 over all out-of-fold predictions; UAR (balanced accuracy) per fold."""
    uar = [float(balanced_accuracy_score(y[fold == k], pred[fold == k])) for k in np.unique(fold)]
    return {"macro_f1": float(f1_score(y, pred, average="macro")), "fold_uar": uar,
            "mean_fold_uar": float(np.mean(uar))}


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


def plain_features(paths: list[str], cache_dir: Path) -> tuple[dict[str, np.ndarray], float | None]:
    """{"mfcc": (n, 160), "egemaps": (n, 88)} in the order of `paths`, cached by the list of paths."""
    cache = cache_dir / f"{hashlib.sha1(json.dumps(paths).encode()).hexdigest()[:16]}.npz"
    if cache.exists():
        saved = np.load(cache, allow_pickle=False)
        if saved["paths"].tolist() == paths:
            return {"mfcc": saved["mfcc"], "egemaps": saved["egemaps"]}, None
    start = time.perf_counter()
    chunks = [paths[i:i + CHUNK] for i in range(0, len(paths), CHUNK)]
    parts = Parallel(n_jobs=JOBS, verbose=5)(delayed(features_of)(c) for c in chunks)
    feats = {"mfcc": np.concatenate([p[0] for p in parts]), "egemaps": np.concatenate([p[1] for p in parts])}
    seconds = time.perf_counter() - start
    cache_dir.mkdir(parents=True, exist_ok=True)
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
        X = np.concatenate([feats[b] for b in blocks], axis=1)
        X = np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0)  # non-finite values (e.g. a silent clip's F0 stats) -> 0
        if norm == "speaker":
            X = per_speaker_z(X, speakers)
        start = time.perf_counter()
        pred = out_of_fold(X, y, fold, clf)
        results.append({"recipe": name, "features": "+".join(blocks), "normalisation": norm,
                        "classifier": type(clf).__name__, "dims": X.shape[1], **scores(y, pred, fold),
                        "fit_s": round(time.perf_counter() - start, 1)})
    return results


# ---------------------------------------------------------------- one corpus


def evaluate(corpus: Corpus, work_root: Path, args) -> dict:
    suffix = f"_limit{args.limit}" if args.limit else ""
    work = work_root / f"{corpus.name}{suffix}"
    manifest_path, audio_root = write_manifest(corpus, work_root, work, args.limit)
    manifest = load_manifest(manifest_path)
    if args.skip_albsent:
        timing = previous_timing(work)
    else:
        seed = None if (work / "store").exists() else sibling_store(corpus, work_root, suffix, manifest_path)
        timing = run_albsent(manifest_path, audio_root, work, seed, args.albsent_features)
    store, run = work / "store", work / "auto"
    have_run = (run / "predictions.csv").exists() and store.exists()
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
    y = used["label"].to_numpy()
    folds = [{"fold": int(k), "test_clips": int((fold_used == k).sum()),
              "test_speakers": int(used.loc[fold_used == k, "speaker"].nunique())} for k in np.unique(fold_used)]

    feats, feature_s = plain_features(used["abspath"].tolist(), work_root / "features")
    start = time.perf_counter()
    results = run_recipes(feats, used, fold_used)
    recipes_s = time.perf_counter() - start
    best = max(results, key=lambda r: r["macro_f1"])

    albsent = None
    if pred is not None:
        metrics = json.loads((run / "metrics.json").read_text())
        albsent_pred = pred.set_index("row")["pred"].astype(str).reindex(used.index).to_numpy()
        albsent = {**scores(y, albsent_pred, fold_used),
                   "metrics_json_pooled_macro_f1": metrics.get("pooled", {}).get("macro_f1"),
                   "prediction_rows": len(pred), **timing}

    nkululeko = None
    if not args.no_nkululeko:
        python = nkululeko_python(args.nkululeko_venv or work_root / "nkululeko-venv")
        others = [work_root / f"{c.name}{suffix}" / "nkululeko" for c in CORPORA.values() if c.audio == corpus.audio]
        nk = run_nkululeko(python, used, fold_used, work / "nkululeko", [o for o in others if o != work / "nkululeko"])
        nkululeko = {**scores(y, nk.pop("pred"), fold_used), "logo": scores(y, nk.pop("logo_pred"), fold_used), **nk}

    augmented = None
    if args.augment:
        augmented = augmentation(corpus, work_root, suffix, args, manifest_path, audio_root, manifest, fold, albsent)

    return {"augmentation": augmented, "corpus": corpus.name, "speech": corpus.speech, "task": corpus.task,
            "source": corpus.source,
            "classes": sorted(manifest["label"].unique()), "manifest": str(manifest_path), "rows": len(manifest),
            "rows_used": len(used), "speakers": int(used["speaker"].nunique()), "excluded": len(excluded),
            "excluded_paths": excluded, "fold_source": source, "folds": folds,
            "plain_feature_s": None if feature_s is None else round(feature_s, 1), "recipes_s": round(recipes_s, 1),
            "nonfinite_feature_values": {k: int((~np.isfinite(v)).sum()) for k, v in feats.items()},
            "albsent": albsent, "best_recipe": best["recipe"], "best": {k: best[k] for k in ("macro_f1", "fold_uar",
                                                                                           "mean_fold_uar")},
            "nkululeko": nkululeko, "recipes": results}


# ---------------------------------------------------------------- report


def fmt(x, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def augmentation_table(reports: list[dict]) -> list[str]:
    aug = [r for r in reports if r.get("augmentation")]
    if not aug:
        return []
    lines = [f"Augmentation inside training folds (`extract --augment {aug[0]['augmentation']['spec']}`), pooled "
             "macro-F1 on the same outer folds:", "",
             "| corpus | auto | auto --augmented | plain recipe | plain --augmented | auto --augmented s |",
             "|---|---|---|---|---|---|"]
    for r in aug:
        a = r["augmentation"]
        lines.append(f"| {r['corpus']} | {fmt(a['auto'])} | {fmt(a['auto_aug'])} | {fmt(a['plain'])} "
                     f"| {fmt(a['plain_aug'])} | {fmt(a.get('auto_aug_wall_s'), 0)} |")
    return lines + ["", f"plain recipe: albsent train {' '.join(PLAIN_RECIPE)} --folds {FOLDS}", ""]


def markdown(reports: list[dict]) -> str:
    def get(d, *keys):
        for k in keys:
            d = (d or {}).get(k)
        return d

    lines = ["Pooled macro-F1 (mean per-fold UAR) on the same speaker-independent outer folds:", "",
             "| corpus | speech | task | clips used (excluded) | speakers | albsent auto | best plain recipe | its F1 "
             "| nkululeko | nkululeko logo | albsent train s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        a, b, n = r["albsent"], r["best"], r["nkululeko"]
        lines.append(
            f"| {r['corpus']} | {r['speech']} | {r['task']} ({len(r['classes'])}) | {r['rows_used']} ({r['excluded']}) "
            f"| {r['speakers']} | **{fmt(get(a, 'macro_f1'))}** ({fmt(get(a, 'mean_fold_uar'))}) | {r['best_recipe']} "
            f"| {fmt(b['macro_f1'])} ({fmt(b['mean_fold_uar'])}) | {fmt(get(n, 'macro_f1'))} "
            f"({fmt(get(n, 'mean_fold_uar'))}) | {fmt(get(n, 'logo', 'macro_f1'))} "
            f"({fmt(get(n, 'logo', 'mean_fold_uar'))}) "
            f"| {fmt(get(a, 'train_wall_s'), 0)} |")
    lines += ["", "UAR (balanced accuracy) per outer fold:", "",
              "| corpus | fold | test clips | test speakers | albsent auto | best plain recipe | nkululeko "
              "| nkululeko logo |", "|---|---|---|---|---|---|---|---|"]
    for r in reports:
        for i, f in enumerate(r["folds"]):
            def uar(d):
                return fmt(d["fold_uar"][i]) if d else "—"
            n = r["nkululeko"]
            lines.append(f"| {r['corpus']} | {f['fold']} | {f['test_clips']} | {f['test_speakers']} "
                         f"| {uar(r['albsent'])} | {uar(r['best'])} | {uar(n)} | {uar(n and n['logo'])} |")
    lines += ["", "Pooled macro-F1 of the 12 standard recipes:", "",
              "| recipe | " + " | ".join(r["corpus"] for r in reports) + " |",
              "|---|" + "---|" * len(reports)]
    for i, name in enumerate(x["recipe"] for x in reports[0]["recipes"]):
        lines.append(f"| {name} | " + " | ".join(fmt(r["recipes"][i]["macro_f1"]) for r in reports) + " |")
    lines.append("")
    lines += augmentation_table(reports)
    for r in reports:
        n = r["nkululeko"]
        lines.append(f"- {r['corpus']}: folds from {r['fold_source']}; albsent metrics.json pooled macro-F1 "
                     f"{fmt(get(r['albsent'], 'metrics_json_pooled_macro_f1'))}"
                     + (f"; nkululeko {n['version']}, {n['wall_s']:.0f} s, its own UARs match: per fold "
                        f"{n['uar_checked']}, logo {n['logo_uar_checked']}" if n else ""))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", action="append", choices=list(CORPORA), help="repeatable (default: all)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/albsent-accuracy"),
                    help="stores, runs, audio made here and the feature caches (default /tmp/albsent-accuracy)")
    ap.add_argument("--limit", type=int, help="a label-stratified subset of N clips per corpus (smoke runs)")
    ap.add_argument("--skip-albsent", action="store_true",
                    help="do not run albsent; use an existing WORK/CORPUS/auto run, else plain folds")
    ap.add_argument("--no-nkululeko", action="store_true", help="do not run nkululeko")
    ap.add_argument("--nkululeko-venv", type=Path, help="nkululeko's virtualenv (default WORK/nkululeko-venv)")
    ap.add_argument("--albsent-features", default=ALBSENT_FEATURES,
                    help=f"albsent extract --features (default {ALBSENT_FEATURES})")
    ap.add_argument("--augment", metavar="SPEC",
                    help="also measure augmentation inside training folds (section 6), e.g. 'default'")
    args = ap.parse_args()
    work = args.work.resolve()
    header = {"started": datetime.datetime.now().isoformat(timespec="seconds"), "albsent": albsent_version(),
              "argv": sys.argv[1:]}
    out = f"accuracy_limit{args.limit}.json" if args.limit else "accuracy.json"
    reports = []
    for name in args.corpus or list(CORPORA):
        reports.append(evaluate(CORPORA[name], work, args))
        work.mkdir(parents=True, exist_ok=True)
        (work / out).write_text(json.dumps({**header, "corpora": reports}, indent=2))
        print(f"done: {name}", flush=True)
    print(markdown(reports))


if __name__ == "__main__":
    main()
