"""Development corpora for bench/accuracy.py, all built from what ../shared/data holds (nothing is
downloaded; audio is only ever written under the bench's WORK folder):

| name | speech | labels | from |
|---|---|---|---|
| emodb | acted (studio) | sentiment, 3 | emodb/manifest_sentiment.csv |
| emodb_emotion | acted (studio) | emotion, 7 | emodb/manifest.csv |
| emodb_levels | acted, level varied per speaker | sentiment, 3 | EMO-DB with a gain per speaker |
| emospeech | natural (phones, real places) | sentiment, 3 | emospeech/manifest_sentiment.csv |
| emospeech_emotion | natural (phones, real places) | emotion, 4 | emospeech/manifest.csv |

`emodb_levels`: natural recordings differ in level by speaker (distance to the microphone, device
gain), EMO-DB's studio recordings hardly do. Each speaker gets a gain drawn uniformly from
±10 dB (numpy default_rng(0), speakers in sorted order); one common offset then keeps the loudest
clip's peak at 0.99, so nothing clips and the spread between speakers stays ±10 dB. The clips are
written as new 16-bit WAVs at their own rate into WORK/audio/emodb_levels/ with gains.json.

Every corpus is written as WORK/CORPUS/manifest.csv (path absolute, label, speaker). `limit` keeps
a label-stratified random subset of that many clips (random_state 0), for smoke runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from sklearn.model_selection import train_test_split

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LEVEL_SPREAD_DB = 10.0
LEVEL_SEED = 0
PEAK = 0.99


@dataclass(frozen=True)
class Corpus:
    name: str
    speech: str  # "acted" or "natural"
    task: str  # "sentiment" or "emotion"
    source: str  # manifest under DATA
    audio: str  # clips with the same `audio` are the same files (shared feature caches)
    level_spread_db: float = 0.0  # > 0: a gain per speaker, written into WORK/audio/NAME


CORPORA = {c.name: c for c in [
    Corpus("emodb", "acted", "sentiment", "emodb/manifest_sentiment.csv", "emodb"),
    Corpus("emodb_emotion", "acted", "emotion", "emodb/manifest.csv", "emodb"),
    Corpus("emodb_levels", "acted", "sentiment", "emodb/manifest_sentiment.csv", "emodb_levels", LEVEL_SPREAD_DB),
    Corpus("emospeech", "natural", "sentiment", "emospeech/manifest_sentiment.csv", "emospeech"),
    Corpus("emospeech_emotion", "natural", "emotion", "emospeech/manifest.csv", "emospeech"),
]}


def read_source(corpus: Corpus) -> pd.DataFrame:
    """path (absolute), label, speaker of the source manifest."""
    path = DATA / corpus.source
    df = pd.read_csv(path, dtype={"speaker": str, "label": str})
    df["path"] = [str((path.parent / p).resolve()) for p in df["path"]]
    return df[["path", "label", "speaker"]]


def with_levels(df: pd.DataFrame, out: Path, spread_db: float) -> pd.DataFrame:
    """The clips of `df` with a random gain per speaker, written under `out` (once)."""
    speakers = sorted(df["speaker"].unique())
    gains = dict(zip(speakers, np.random.default_rng(LEVEL_SEED).uniform(-spread_db, spread_db, len(speakers))))
    new = [str(out / "wav" / Path(p).name) for p in df["path"]]
    record = out / "gains.json"
    if record.exists() and all(Path(p).exists() for p in new):
        return df.assign(path=new)
    peaks = np.array([np.abs(sf.read(p, dtype="float64")[0]).max() for p in df["path"]])
    gain_db = df["speaker"].map(gains).to_numpy()
    offset_db = min(0.0, 20 * np.log10(PEAK / (peaks * 10 ** (gain_db / 20)).max()))
    (out / "wav").mkdir(parents=True, exist_ok=True)
    for src, dst, g in zip(df["path"], new, gain_db):
        y, sr = sf.read(src, dtype="float64")
        sf.write(dst, y * 10 ** ((g + offset_db) / 20), sr, subtype="PCM_16")
    record.write_text(json.dumps({"seed": LEVEL_SEED, "spread_db": spread_db, "offset_db": offset_db,
                                  "gain_db": {s: g + offset_db for s, g in gains.items()}}, indent=2))
    return df.assign(path=new)


def write_manifest(corpus: Corpus, work_root: Path, work: Path, limit: int | None) -> tuple[Path, Path]:
    """WORK/CORPUS/manifest.csv and the folder its audio lies under (for `--allow-root`)."""
    df = read_source(corpus)
    root = (DATA / corpus.source).parent.resolve()
    if corpus.level_spread_db:
        root = work_root / "audio" / corpus.name
        df = with_levels(df, root, corpus.level_spread_db)
    if limit and limit < len(df):
        df, _ = train_test_split(df, train_size=limit, stratify=df["label"], random_state=0)
        df = df.sort_index()
    work.mkdir(parents=True, exist_ok=True)
    df.to_csv(work / "manifest.csv", index=False)
    return work / "manifest.csv", root
