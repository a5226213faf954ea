"""nkululeko as a peer in bench/accuracy.py: its eGeMAPS + SVM recipe on given speaker-independent
folds, run by the real tool in its own virtualenv.

The recipe (nkululeko's INI): `[FEATS] type = ['os']` (openSMILE eGeMAPSv02 functionals, 88, on
the audio as recorded, at its own rate), `scale = standard` (StandardScaler fitted on the train
split), `[MODEL] type = svm` (SVC rbf, C 1, gamma "scale"), `class_weight = True` (balanced sample
weights). The data is a CSV `file,speaker,label,fold` of the clips the bench uses, fold "f1".."fK".

Two ways of giving nkululeko the folds, both run, both checked:

- per fold (the figures the bench reports): one nkululeko experiment per fold k with
  `split_strategy = column` on `fold`, test = fK, train = the other folds. The scaler and the
  SVM see the training speakers only. The experiments share one folder, so the features are
  extracted once (nkululeko's own feature cache; a corpus with the same clips, e.g.
  emodb_emotion after emodb, starts from a copy of it) and each split is made fresh (`no_reuse`).
- `[MODEL] logo = K` with the `fold` column: nkululeko's leave-one-group-out over `fold`. It
  fits the scaler once, on the INI's train split (folds 2..K), and reuses those scaled features
  for every group, so four of the five groups are scaled with their own test speakers in the
  statistics. On EMO-DB sentiment a clip of fold 1 sits 1,774 SDs out on mfcc1_sma3_stddevNorm
  under that scaler and pooled macro-F1 falls from 0.624 (per-fold scaling, same features and
  folds) to 0.384. Reported beside the per-fold figures, not instead of them.

Checks: each per-fold experiment predicts exactly the clips of its fold, once; logo predicts every
clip once, in blocks of sorted fold names; nkululeko's own UARs (per fold, per logo group) equal
the bench's balanced accuracy on the same rows.

The virtualenv (default WORK/nkululeko-venv) is created on first use with `python3 -m venv`,
`pip install torch==2.13.0` (the local CPU wheel) and `pip install nkululeko==1.14.1`, both under a
constraints file pinning torch, so pip never pulls CUDA wheels; /work/main/.venv is not touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score

NKULULEKO = "nkululeko==1.14.1"
TORCH = "torch==2.13.0"
DRIVER = Path(__file__).resolve().with_name("nkululeko_run.py")
FEATURES = "svm/store/db_os_all.pkl"  # nkululeko's feature cache for EXP name "svm", database "db", features "os"
JOBS = 2


def nkululeko_python(venv: Path) -> Path:
    """The venv's python, after creating the venv and installing nkululeko when needed."""
    python = venv / "bin" / "python"
    want = NKULULEKO.split("==")[1]
    if python.exists():
        have = subprocess.run([str(python), "-c", "from nkululeko.constants import VERSION; print(VERSION)"],
                              capture_output=True, text=True).stdout.strip()
        if have == want:
            return python
    print(f"installing {NKULULEKO} into {venv} (torch pinned to {TORCH})", flush=True)
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    constraints = venv / "constraints.txt"
    constraints.write_text(TORCH + "\n")
    env = {**os.environ, "PIP_CONSTRAINT": str(constraints), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for spec in (TORCH, NKULULEKO):
        subprocess.run([str(python), "-m", "pip", "install", "-q", spec], env=env, check=True)
    return python


def ini(root: Path, data: Path, train: list[str], test: list[str], logo: int | None) -> str:
    lines = ["[EXP]", f"root = {root}", "name = svm", "runs = 1", "epochs = 1", "save = False",
             "[DATA]", "databases = ['db']", f"db = {data}", "db.type = csv", "db.absolute_path = True",
             "db.split_strategy = column", "db.split_column = fold", f"db.train_vals = {train}",
             f"db.test_vals = {test}", "target = label", "no_reuse = True",
             "[FEATS]", "type = ['os']", "set = eGeMAPSv02", "scale = standard", f"n_jobs = {JOBS}",
             "[MODEL]", "type = svm", "class_weight = True", "measure = uar", f"n_jobs = {JOBS}"]
    if logo:
        lines.append(f"logo = {logo}")
    return "\n".join(lines) + "\n"


def run_one(python: Path, root: Path, name: str, text: str) -> tuple[pd.DataFrame, dict]:
    path = root / f"{name}.ini"
    path.write_text(text)
    with open(root / f"{name}.log", "w") as log:
        done = subprocess.run([str(python), str(DRIVER), str(path), str(root / name)], cwd=root,
                              stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "MPLBACKEND": "Agg"})
    if done.returncode != 0:
        tail = (root / f"{name}.log").read_text()[-3000:]
        raise RuntimeError(f"nkululeko {name} failed (log {root / name}.log):\n{tail}")
    return pd.read_csv(root / f"{name}.csv"), json.loads((root / f"{name}.json").read_text())


def uar_check(ours: float, theirs: float, truth, pred) -> bool | None:
    """True/False: nkululeko's UAR equals ours; None: not comparable (a predicted class absent from
    the truth counts as recall 0 in audmetric and is left out by scikit-learn)."""
    if not set(pred) <= set(truth):
        return None
    return bool(abs(ours - theirs) < 1e-9)


def reuse_features(root: Path, files: list[str], others: list[Path]) -> None:
    """Make `root` nkululeko's folder for `files`: emptied when it was for other files (its feature
    cache is keyed by name, not by the files in it), seeded with features of an earlier run on the same files."""
    listing = root / "files.json"
    if root.exists() and (not listing.exists() or json.loads(listing.read_text()) != files):
        shutil.rmtree(root)
    features = root / FEATURES
    for other in others:
        same = (other / FEATURES).exists() and json.loads((other / "files.json").read_text()) == files
        if same and not features.exists():
            features.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(other / FEATURES, features)
    root.mkdir(parents=True, exist_ok=True)
    listing.write_text(json.dumps(files))


def run_nkululeko(python: Path, used: pd.DataFrame, fold: np.ndarray, root: Path, others: list[Path]) -> dict:
    """nkululeko's predictions for the rows of `used` (abspath, label, speaker) on `fold` (1..K),
    per fold and with logo, aligned to `used`'s rows. `others`: folders of earlier runs whose
    features nkululeko may reuse when they were extracted from the same files."""
    files = used["abspath"].tolist()
    reuse_features(root, files, others)
    names = [f"f{k}" for k in fold]
    data = root / "data.csv"
    pd.DataFrame({"file": files, "speaker": used["speaker"].to_numpy(), "label": used["label"].to_numpy(),
                  "fold": names}).to_csv(data, index=False)
    row = pd.Series(np.arange(len(files)), index=files)
    y = used["label"].astype(str).to_numpy()
    groups = sorted(set(names))
    start = time.perf_counter()

    pred = np.empty(len(files), dtype=object)
    own, checks = [], []
    for g in groups:
        out, info = run_one(python, root, g, ini(root, data, [x for x in groups if x != g], [g], None))
        rows = row[out["file"]].to_numpy()
        expected = np.flatnonzero(np.asarray(names) == g)
        if sorted(rows) != sorted(expected) or len(rows) != len(expected):
            raise SystemExit(f"nkululeko {g}: predicted clips differ from the fold's clips")
        if (out["truth"].astype(str).to_numpy() != y[rows]).any():
            raise SystemExit(f"nkululeko {g}: labels differ from the manifest's")
        pred[rows] = out["pred"].astype(str).to_numpy()
        ours = balanced_accuracy_score(y[rows], pred[rows])
        own.append(info["uar"])
        checks.append(uar_check(ours, info["uar"], y[rows], pred[rows]))
    per_fold_s = time.perf_counter() - start

    out, info = run_one(python, root, "logo", ini(root, data, groups[1:], groups[:1], len(groups)))
    rows = row[out["file"]].to_numpy()
    if sorted(rows) != list(range(len(files))):
        raise SystemExit("nkululeko logo: predicted clips differ from the clips given")
    order = [groups.index(names[r]) for r in rows]
    if order != sorted(order):
        raise SystemExit("nkululeko logo: its groups are not the folds given")
    logo = np.empty(len(files), dtype=object)
    logo[rows] = out["pred"].astype(str).to_numpy()
    logo_checks = []
    for g, theirs in zip(groups, info["logo_results"]):
        r = np.asarray(names) == g
        logo_checks.append(uar_check(balanced_accuracy_score(y[r], logo[r]), theirs, y[r], logo[r]))
    if False in checks + logo_checks:
        raise SystemExit(f"nkululeko's UARs differ from the bench's on the same rows: {own}, {info}")
    return {"version": info["nkululeko"], "pred": pred, "logo_pred": logo, "uar_checked": checks,
            "logo_uar_checked": logo_checks, "per_fold_wall_s": round(per_fold_s, 1),
            "wall_s": round(time.perf_counter() - start, 1), "folder": str(root)}
