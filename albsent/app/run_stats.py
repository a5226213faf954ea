"""Descriptive corpus statistics (`albsent stats`): per-class durations, segment heterogeneity,
ZCR / flatness figures, from a store or (extracting it first) from audio."""

from __future__ import annotations

from pathlib import Path
from typing import Callable


def run_stats(input_or_store: str, out: str, column: str = "mfcc_mean", make_config: Callable | None = None,
              progress: bool = True) -> str:
    """Writes OUT/stats.md (+ figures) and returns its text. An INPUT that is not a store is first
    extracted into OUT/store with `make_config()` (an ExtractConfig, built only then)."""
    from albsent.report.stats import corpus_stats
    from albsent.store import Store

    store = input_or_store
    if not Store(store).exists():
        from albsent.pipeline.extract import extract

        config = make_config()
        store = str(Path(out) / "store")
        extract(input_or_store, store, config, progress=progress)
    corpus_stats(store, out, column)
    return (Path(out) / "stats.md").read_text()
