"""Corpus statistics as in the Albanian paper: Table 1 (per-class durations), Table 2
(segment heterogeneity bands) and Figs 2-5 (mean ZCR vs spectral flatness per class, ZCR
profile over normalised time). Reads the store in record batches, so memory stays bounded.
Tables are rendered by albsent.report.tables, as every table albsent writes."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from albsent.report.tables import frame_table
from albsent.store import Store, to_matrix, to_sequences
from albsent.store.schema import pooled_column, sequence_column
from albsent.store.store import originals

log = logging.getLogger(__name__)

# Mean pairwise Euclidean distance between an utterance's segments (Albanian paper, Table 2).
BANDS = [("similar", 0.0, 100.0), ("some_similarities", 100.0, 280.0), ("heterogeneous", 280.0, np.inf)]
PROFILE_POINTS = 50


def band(distance: float) -> str:
    return next(name for name, lo, hi in BANDS if lo <= distance < hi)


def mean_pairwise_distance(vectors: np.ndarray) -> float:
    """vectors: (segments, dim) -> mean Euclidean distance over all unordered pairs."""
    diff = vectors[:, None, :] - vectors[None, :, :]
    d = np.sqrt((diff.astype(np.float64) ** 2).sum(-1))
    iu = np.triu_indices(len(vectors), k=1)
    return float(d[iu].mean())


def duration_table(base: pd.DataFrame) -> pd.DataFrame:
    """One row per class: files, total hours, max/min/median utterance duration (s)."""
    utt = base.drop_duplicates("utterance_id")
    utt = utt.assign(label=utt["label"].fillna("(unlabeled)"))
    g = utt.groupby("label")["utterance_duration_s"]
    table = pd.DataFrame({
        "files": g.size(), "total_hours": g.sum() / 3600, "max_s": g.max(), "min_s": g.min(), "median_s": g.median(),
    })
    table.loc["all"] = [len(utt), utt["utterance_duration_s"].sum() / 3600, utt["utterance_duration_s"].max(),
                        utt["utterance_duration_s"].min(), utt["utterance_duration_s"].median()]
    return table


def heterogeneity(store: Store, column: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per segmented utterance: mean pairwise distance and band; plus a band x class count table."""
    t = store.read(["utterance_id", "label", "segment_index", column])
    vecs = to_matrix(t[column])
    df = t.drop_columns([column]).to_pandas()
    df["row"] = np.arange(len(df))
    rows = []
    for (utt, label), grp in df[df["segment_index"] >= 0].groupby(["utterance_id", "label"], dropna=False):
        if len(grp) >= 2:
            dist = mean_pairwise_distance(vecs[grp["row"].to_numpy()])
            rows.append({"utterance_id": utt, "label": label, "segments": len(grp), "mean_distance": dist,
                         "band": band(dist)})
    per_utt = pd.DataFrame(rows, columns=["utterance_id", "label", "segments", "mean_distance", "band"])
    counts = pd.crosstab(per_utt["band"], per_utt["label"]).reindex([b for b, _, _ in BANDS], fill_value=0)
    return per_utt, counts


def shortterm_summaries(store: Store) -> tuple[pd.DataFrame, dict[str, np.ndarray]] | None:
    """Per-row mean ZCR and flatness, and the per-class mean ZCR profile over normalised time."""
    meta = store.meta["extractors"].get("shortterm")
    if meta is None:
        return None
    names = meta["feature_names"]
    i_zcr, i_flat = names.index("zcr"), names.index("spectral_flatness")
    seq_col, mean_col = sequence_column("shortterm"), pooled_column("shortterm", "mean")
    has_seq = seq_col in meta["columns"]
    cols = ["label", mean_col] + ([seq_col] if has_seq else [])
    points, sums, counts = [], defaultdict(lambda: np.zeros(PROFILE_POINTS)), defaultdict(int)
    grid = np.linspace(0, 1, PROFILE_POINTS)
    ds = store.dataset()
    for batch in ds.to_batches(columns=cols, batch_size=512, filter=originals(ds.schema)):
        labels = batch.column("label").to_pylist()
        means = to_matrix(batch.column(mean_col))
        points.append(pd.DataFrame({"label": labels, "zcr": means[:, i_zcr], "flatness": means[:, i_flat]}))
        if has_seq:
            for label, seq in zip(labels, to_sequences(batch.column(seq_col))):
                z = seq[:, i_zcr].astype(np.float64)
                sums[label] += np.interp(grid, np.linspace(0, 1, len(z)), z) if len(z) > 1 else z[0]
                counts[label] += 1
    profiles = {str(k): sums[k] / counts[k] for k in sums}
    return pd.concat(points, ignore_index=True), profiles


def plot_zcr_flatness(points: pd.DataFrame, path: Path) -> None:
    from albsent.runtime import pyplot

    plt = pyplot()

    labels = sorted(points["label"].fillna("(unlabeled)").unique())
    fig, axes = plt.subplots(1, len(labels), figsize=(4 * len(labels), 3.6), sharex=True, sharey=True, squeeze=False)
    for ax, label in zip(axes[0], labels):
        p = points[points["label"].fillna("(unlabeled)") == label]
        ax.scatter(p["flatness"], p["zcr"], s=8, alpha=0.6)
        ax.axvline(0.45, color="grey", ls="--", lw=0.8)
        ax.axhline(0.06, color="grey", ls="--", lw=0.8)
        ax.set_title(f"{label} (n={len(p)})")
        ax.set_xlabel("mean spectral flatness")
    axes[0][0].set_ylabel("mean ZCR")
    fig.suptitle("Mean ZCR vs spectral flatness per class (noise-like: flatness > 0.45, ZCR > 0.06)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_zcr_profile(profiles: dict[str, np.ndarray], path: Path) -> None:
    from albsent.runtime import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for label, prof in sorted(profiles.items()):
        ax.plot(np.linspace(0, 1, len(prof)), prof, label=label)
    ax.set_xlabel("normalised time")
    ax.set_ylabel("mean ZCR")
    ax.set_title("ZCR profile over normalised time, per class")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def corpus_stats(store_uri: str, out_dir: str, column: str = "mfcc_mean") -> dict:
    """Write stats.json, stats.md and the PNG figures to `out_dir`; return the JSON object."""
    store, out = Store(store_uri), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = store.read(["utterance_id", "label", "utterance_duration_s"]).to_pandas()
    durations = duration_table(base)
    per_utt, bands = heterogeneity(store, column)
    result = {
        "store": store.uri,
        "durations": durations.reset_index(names="label").to_dict("records"),
        "heterogeneity": {
            "column": column,
            "bands": {name: [lo, None if np.isinf(hi) else hi] for name, lo, hi in BANDS},
            "segmented_utterances": len(per_utt),
            "counts": {b: {str(k): int(v) for k, v in row.items()} for b, row in bands.iterrows()},
        },
        "figures": [],
    }
    md = ["# Corpus statistics", "", "## Durations per class (Table 1)", "", frame_table(durations, digits=3), ""]
    md += ["## Segment heterogeneity (Table 2)", ""]
    if len(per_utt):
        md += [f"Mean pairwise Euclidean distance of `{column}` between segments of one utterance.", "",
               frame_table(bands), ""]
    else:
        md += ["No utterance has two or more segments (extract with `--segment 1.5` to measure heterogeneity).", ""]
    st = shortterm_summaries(store)
    if st is None:
        md += ["(No short-term features in this store: ZCR / flatness figures skipped.)"]
    else:
        points, profiles = st
        plot_zcr_flatness(points, out / "zcr_flatness.png")
        result["figures"].append("zcr_flatness.png")
        means = points.groupby(points["label"].fillna("(unlabeled)"))[["zcr", "flatness"]].mean()
        result["zcr_flatness_means"] = means.reset_index().to_dict("records")
        md += ["## Mean ZCR and spectral flatness per class (Figs 2-4)", "", frame_table(means, digits=4), ""]
        if profiles:
            plot_zcr_profile(profiles, out / "zcr_profile.png")
            result["figures"].append("zcr_profile.png")
    (out / "stats.json").write_text(json.dumps(result, indent=2, default=float))
    (out / "stats.md").write_text("\n".join(md) + "\n")
    return result
