"""Seeded synthetic speech-like audio: harmonics with a pitch contour, noise, pauses.

Classes differ in pitch, pitch range, loudness and noise, so a classifier has something
real to learn, and speakers differ in base pitch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

CLASS_STYLE = {  # (pitch factor, pitch swing, noise level, tempo)
    "positive": (1.25, 0.25, 0.02, 6.0),
    "neutral": (1.0, 0.05, 0.01, 4.0),
    "negative": (0.8, 0.10, 0.05, 2.5),
}


def voice(rng: np.random.Generator, duration_s: float, sr: int, f0: float, swing: float, noise: float,
          tempo: float) -> np.ndarray:
    t = np.arange(int(duration_s * sr)) / sr
    contour = f0 * (1 + swing * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(contour) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * tempo * t / 2) ** 2  # syllable-like amplitude
    x = x * envelope + noise * rng.standard_normal(t.size)
    pad = np.zeros(int(0.15 * sr))  # leading/trailing silence for the trimmer
    return np.concatenate([pad, 0.3 * x / np.max(np.abs(x)), pad]).astype(np.float32)


def make_corpus(
    root: str | Path,
    n_per_class: int = 4,
    speakers: int = 2,
    sr: int = 16000,
    duration_s: tuple[float, float] = (1.0, 2.0),
    seed: int = 0,
    subtype: str = "PCM_16",
) -> Path:
    """Write wav/<speaker>_<class>_<i>.wav and manifest.csv (path,label,speaker). Returns the manifest path."""
    root = Path(root)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for spk in range(speakers):
        base = 110 + 60 * spk
        for label, (pf, swing, noise, tempo) in CLASS_STYLE.items():
            for i in range(n_per_class):
                dur = rng.uniform(*duration_s)
                x = voice(rng, dur, sr, base * pf * rng.uniform(0.95, 1.05), swing, noise, tempo)
                rel = f"wav/s{spk}_{label}_{i}.wav"
                sf.write(root / rel, x, sr, subtype=subtype)
                rows.append({"path": rel, "label": label, "speaker": f"s{spk}"})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root / "manifest.csv"
