"""`albsent demo`: a small SYNTHETIC Albanian corpus (eSpeak NG, voice `sq`) run through
extract -> stats -> train -> report (report.md, and report.html with every run's figures and
the corpus statistics). Real corpora: `albsent demo --input MANIFEST`."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

log = logging.getLogger(__name__)

SENTENCES = {
    "positive": [
        "Jam shumë i lumtur sot!", "Sa bukur është ky film!", "Faleminderit, ishte një ditë e mrekullueshme.",
        "Më pëlqen shumë kjo muzikë.", "Urime, e ke merituar këtë sukses!", "Sot kemi lajme të shkëlqyera.",
        "Ushqimi ishte i shijshëm dhe shërbimi perfekt.", "Jemi shumë krenarë për ju.",
    ],
    "neutral": [
        "Takimi fillon në orën dhjetë.", "Autobusi niset nga stacioni qendror.",
        "Dyqani është i hapur nga e hëna në të premte.",
        "Sot është e mërkurë.", "Dokumentet janë në tavolinë.", "Treni arrin pas dy orësh.",
        "Ky libër ka treqind faqe.", "Zyra ndodhet në katin e dytë.",
    ],
    "negative": [
        "Jam shumë i mërzitur me këtë situatë.", "Ky shërbim ishte i tmerrshëm.", "Nuk më pëlqen fare kjo gjë.",
        "Më vjen keq, por kjo është një zhgënjim i madh.", "Filmi ishte i mërzitshëm dhe shumë i gjatë.",
        "Jam i lodhur dhe i zemëruar.", "Kjo është padrejtësi e madhe!", "Humbëm përsëri, sa keq.",
    ],
}
# Prosody per sentiment (eSpeak rate in words/min, pitch and pitch range 0-100).
PROSODY = {"positive": (185, 70, 85), "neutral": (160, 50, 35), "negative": (125, 32, 18)}
# Speakers: eSpeak voice variants with a base pitch shift.
SPEAKERS = {"spk1": ("sq+m1", 0), "spk2": ("sq+f1", 12), "spk3": ("sq+m3", -8), "spk4": ("sq+f4", 6)}


def synthesize_corpus(out_dir: str | Path, speakers: int = 3, seed: int = 0) -> Path:
    """Write wav/<speaker>_<label>_<i>.wav and manifest.csv (path,label,speaker,text,source)."""
    from albsent.audio.speech import Espeak

    out = Path(out_dir)
    (out / "wav").mkdir(parents=True, exist_ok=True)
    tts, rng, rows = Espeak(), np.random.default_rng(seed), []
    for spk, (voice, shift) in list(SPEAKERS.items())[:speakers]:
        for label, texts in SENTENCES.items():
            rate, pitch, rng_ = PROSODY[label]
            for i, text in enumerate(texts):
                audio, sr = tts.say(
                    text, voice=voice, rate=rate + rng.integers(-10, 11),
                    pitch=np.clip(pitch + shift + rng.integers(-5, 6), 0, 99),
                    pitch_range=np.clip(rng_ + rng.integers(-5, 6), 0, 99),
                )
                rel = f"wav/{spk}_{label}_{i}.wav"
                sf.write(out / rel, audio, sr, subtype="PCM_16")
                rows.append({"path": rel, "label": label, "speaker": spk, "text": text,
                             "source": "synthetic-espeak-ng"})
    pd.DataFrame(rows).to_csv(out / "manifest.csv", index=False)
    (out / "README.txt").write_text(
        "SYNTHETIC demo corpus: Albanian sentences spoken by eSpeak NG (voice sq) with sentiment-dependent\n"
        "prosody. It is not real speech; use it to exercise albsent, never to report results.\n"
    )
    return out / "manifest.csv"


def run_demo(out_dir: str | Path, input_manifest: str | None = None, address: str | None = None,
             progress: bool = True) -> dict:
    """extract -> stats on one Ray cluster, then train (K-fold, grouped) -> report."""
    from albsent.config import build
    from albsent.features.config import ExtractConfig
    from albsent.pipeline.extract import extract
    from albsent.report.stats import corpus_stats
    from albsent.runner.session import ray_session

    out = Path(out_dir)
    synthetic = input_manifest is None
    if synthetic:
        log.info("synthesising the SYNTHETIC Albanian demo corpus (eSpeak NG) into %s", out / "corpus")
        input_manifest = str(synthesize_corpus(out / "corpus"))
    config = build(ExtractConfig, {"features": DEMO_FEATURES, "audio": {"segment_s": 1.5}, "ray": {"address": address}})
    result: dict = {"manifest": input_manifest, "store": str(out / "store")}
    with ray_session(address):
        result["extract"] = extract(input_manifest, str(out / "store"), config, progress=progress)
        result["stats"] = corpus_stats(str(out / "store"), str(out / "stats"))
        result["runs"] = train_demo_runs(str(out / "store"), out / "runs")
    from albsent.report.tables import compare_runs

    result["table"] = compare_runs(list(result["runs"].values()))
    (out / "report.md").write_text("# albsent demo: speaker-independent cross-validation\n\n" + result["table"] + "\n")
    from albsent.report.html import write_html

    corpus = "a SYNTHETIC corpus (eSpeak NG), not real speech" if synthetic else input_manifest
    runs = [str(p) for p in result["runs"].values()]
    result["html"] = write_html(out / "report.html", runs, store=str(out / "store"),
                                title=f"albsent demo on {corpus}: speaker-independent cross-validation")
    return result


# MFCC, the short-term set, openSMILE's eGeMAPS / ComParE functionals (research-only licence) and the
# recording level: the groups the automatic selection chooses from (README, "Accuracy").
DEMO_FEATURES = ["mfcc", "shortterm", "egemaps", "compare", "level"]
# (features, model, overrides): the plain baseline and the paper's MLP(128) with class weights;
# "auto" is `albsent train` without model flags (nested speaker-independent selection).
DEMO_RUNS = {
    "baseline_logreg_mfcc": ("mfcc", "sklearn_logreg", {}),
    "mlp128_mfcc+shortterm_cw": ("mfcc+shortterm", "mlp", {"class_weighted": True, "epochs": 30}),
}


def train_demo_runs(store: str, runs_dir: Path) -> dict[str, Path]:
    """Grouped (speaker-independent when speakers exist) K-fold for each DEMO_RUNS entry, then
    the automatic selection on the same number of outer folds (Ray tasks on the demo's cluster)."""
    import pandas as pd

    from albsent.app.run_auto import run_auto_on_ray
    from albsent.train import train_and_evaluate
    from albsent.train.select import AutoConfig

    groups = pd.read_parquet(store, columns=["speaker", "utterance_id"])
    n_speakers = groups["speaker"].nunique()
    folds = min(5, n_speakers) if n_speakers >= 3 else 3  # fewer speakers: utterance-grouped folds
    out = {}
    for name, (features, model, overrides) in DEMO_RUNS.items():
        log.info("training %s (%d-fold cross-validation)", name, folds)
        train_and_evaluate(store, features, model, runs_dir / name, split={"folds": folds}, seed=0, **overrides)
        out[name] = runs_dir / name
    log.info("training auto (nested %d-fold selection)", folds)
    run_auto_on_ray(AutoConfig(store=store, folds=folds, inner_folds=max(2, folds - 1)), runs_dir / "auto")
    out["auto"] = runs_dir / "auto"
    return out
