"""Statistics of a frame sequence over time: the one code path behind every pooled feature.

`pool(frames, stats, voiced)` maps frames (T, D) to {stat: (D,) float32}. Frame extractors
store `mean` and `std` with it at extraction time; the feature spec (`mfcc.rich`,
`shortterm.p50,slope`, ...) computes the others from the stored frame sequence at load time
and, identically, at predict time (albsent.dataset.spec.assemble).

Stats (over time, per dimension):

    mean, std        population std (ddof 0): exactly ndarray.mean(0) / .std(0) on the float32
                     frames, so stored `NAME_mean` / `NAME_std` values are unchanged
    pNN              percentile NN in [0, 100], linear interpolation (numpy's default): p20, p50, p80
    range            p99 - p1: the spread without the one or two outlier frames (clicks,
                     onsets) that would decide max - min
    slope            least-squares slope over normalised time t = 0..1 (first to last frame):
                     change per clip, comparable across clip lengths
    skew, kurt       biased moment estimators m3 / m2^1.5 and m4 / m2^2 - 3 (excess), as
                     scipy.stats.skew / kurtosis with their defaults; 0 for a constant dimension
    vmean, vstd      mean and std over voiced frames only (`voiced`: (T,) bool); 0 where no
                     frame is voiced

Presets: `rich` = mean, std, p20, p50, p80, range, slope, skew, kurt (`RICH`), and
`vmean`, `vstd` (`VOICED`) where the feature has a voicing flag.

Robust by construction: T = 1 gives the value itself (std, slope, skew, kurt 0), a constant
dimension gives skew = kurt = 0, T = 0 gives zeros, and the output holds no NaN or Inf
(NaN -> 0, +-Inf -> +-float32 max). Moments, slope and voiced stats run in float64.
`pool_rows` pools many clips at once, batching clips of equal length: numpy, no Python loop
over frames or dimensions.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

RICH = ("mean", "std", "p20", "p50", "p80", "range", "slope", "skew", "kurt")
VOICED = ("vmean", "vstd")
NAMED = RICH + VOICED
PRESETS = {"rich": RICH}
RANGE_PCT = (1.0, 99.0)
PCT = re.compile(r"^p(0|[1-9][0-9]?|100)$")
_F32_MAX = float(np.finfo(np.float32).max)
_EPS32 = float(np.finfo(np.float32).eps)
_CHUNK = 1 << 21  # float64 elements per batch (16 MiB): bounds the temporaries of pool_rows


def percentile_of(stat: str) -> float | None:
    """`p20` -> 20.0; None for other stats (and for pNN outside [0, 100] or with a leading zero)."""
    m = PCT.match(stat)
    return float(m.group(1)) if m else None


def is_stat(stat: str) -> bool:
    return stat in NAMED or percentile_of(stat) is not None


def check_stats(stats) -> tuple[str, ...]:
    stats = tuple(stats)
    bad = [s for s in stats if not is_stat(s)]
    if bad:
        raise ValueError(f"unknown pooling stat(s) {bad}; known: {', '.join(NAMED)}, pNN (NN in 0..100), preset 'rich'")
    return stats


def _percentiles(s: np.ndarray, qs: list[float]) -> list[np.ndarray]:
    """Linear-interpolated percentiles of s sorted along its last axis: (..., T) -> [(...)] (numpy's 'linear')."""
    T = s.shape[-1]
    out = []
    for q in qs:
        pos = q / 100.0 * (T - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, T - 1)
        g = pos - lo
        a, b = s[..., lo].astype(np.float64), s[..., hi].astype(np.float64)
        # numpy's _lerp: a + (b - a) g, computed from b's side for g >= 0.5 (exact at g = 1)
        out.append(a + (b - a) * g if g < 0.5 else b - (b - a) * (1 - g))
    return out


def _pool_batch(x: np.ndarray, stats: tuple[str, ...], voiced: np.ndarray | None) -> dict[str, np.ndarray]:
    """x: (B, T, D) float32, T >= 1; voiced: (B, T) bool | None -> {stat: (B, D) float64 or float32}.

    Everything but mean and std runs on a (B, D, T) copy, so every reduction is along contiguous
    memory (sort, BLAS matmul for slope and voiced sums, einsum dot products for moments)."""
    out: dict[str, np.ndarray] = {}
    want = set(stats)
    if "mean" in want:
        out["mean"] = x.mean(axis=1)  # float32, as FrameExtractor has always stored it
    if "std" in want:
        out["std"] = x.std(axis=1)
    pcts = {s: percentile_of(s) for s in stats if percentile_of(s) is not None}
    xt = None
    if pcts or "range" in want:
        xt = np.ascontiguousarray(x.transpose(0, 2, 1))  # (B, D, T) float32
        out.update(_order_stats(xt, pcts, "range" in want))
    if not want & {"slope", "skew", "kurt", "vmean", "vstd"}:
        return out
    xd = (xt if xt is not None else x.transpose(0, 2, 1)).astype(np.float64, order="C")  # (B, D, T)
    if want & set(VOICED):
        out.update(_voiced_stats(xd, voiced, want))
    if want & {"slope", "skew", "kurt"}:
        out.update(_moment_stats(xd, want))
    return out


def _order_stats(xt: np.ndarray, pcts: dict[str, float], with_range: bool) -> dict[str, np.ndarray]:
    """xt: (B, D, T) float32 -> percentiles by name (and "range" between RANGE_PCT), each (B, D)."""
    srt = np.sort(xt, axis=-1)
    qs = list(pcts.values()) + (list(RANGE_PCT) if with_range else [])
    vals = _percentiles(srt, qs)
    out = dict(zip(pcts, vals))
    if with_range:
        out["range"] = vals[-1] - vals[-2]
    return out


def _voiced_stats(xd: np.ndarray, voiced: np.ndarray | None, want: set) -> dict[str, np.ndarray]:
    """xd: (B, D, T) float64; voiced: (B, T) bool -> vmean (and vstd), (B, D); no voiced frame -> 0."""
    if voiced is None:
        raise ValueError("vmean / vstd need a voicing flag per frame (voiced=)")
    w = voiced.astype(np.float64)[:, :, None]  # (B, T, 1)
    n = np.maximum(w.sum(axis=1), 1.0)  # (B, 1): frames voiced (0 -> stats 0)
    vm = (xd @ w)[..., 0] / n  # (B, D)
    out = {"vmean": vm}
    if "vstd" in want:
        d = xd - vm[..., None]
        out["vstd"] = np.sqrt(((d * d) @ w)[..., 0] / n)
    return out


def _moment_stats(xd: np.ndarray, want: set) -> dict[str, np.ndarray]:
    """xd: (B, D, T) float64, centred IN PLACE -> slope, skew, kurt as asked, each (B, D)."""
    B, D, T = xd.shape
    out: dict[str, np.ndarray] = {}
    m = xd.mean(axis=-1)  # (B, D)
    xd -= m[..., None]  # centred in place: exactly 0 for a constant dimension (slope, skew, kurt 0)
    c = xd
    if "slope" in want:
        if T < 2:
            out["slope"] = np.zeros((B, D))
        else:
            t = np.linspace(0.0, 1.0, T)
            t -= t.mean()
            out["slope"] = c @ (t / (t * t).sum())
    if want & {"skew", "kurt"}:
        c2 = c * c
        m2 = c2.sum(axis=-1) / T
        flat = m2 <= (_EPS32 * np.abs(m)) ** 2  # constant (to float32 precision): no shape to measure
        safe = np.where(flat, 1.0, m2)
        if "skew" in want:
            m3 = np.einsum("...t,...t->...", c2, c) / T
            out["skew"] = np.where(flat, 0.0, m3 / safe**1.5)
        if "kurt" in want:
            m4 = np.einsum("...t,...t->...", c2, c2) / T
            out["kurt"] = np.where(flat, 0.0, m4 / safe**2 - 3.0)
    return out


def _finish(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v)
    if v.dtype != np.float32:
        v = v.astype(np.float32)  # float64 beyond float32's range becomes +-inf here, then is clipped below
    if not np.isfinite(v).all():
        v = np.nan_to_num(v, nan=0.0, posinf=_F32_MAX, neginf=-_F32_MAX)
    return v


def pool(frames: np.ndarray, stats, voiced: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """frames: (T, D) float32; voiced: (T,) bool | None -> {stat: (D,) float32} in `stats` order."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 2:
        raise ValueError(f"pool() needs frames of shape (T, D); got {frames.shape}")
    v = None if voiced is None else np.asarray(voiced, dtype=bool)[None]
    if v is not None and v.shape[1] != frames.shape[0]:
        raise ValueError(f"voiced has {v.shape[1]} frames, frames has {frames.shape[0]}")
    return {k: a[0] for k, a in _pool_many(frames[None], check_stats(stats), v).items()}


def _pool_many(x: np.ndarray, stats: tuple[str, ...], voiced: np.ndarray | None) -> dict[str, np.ndarray]:
    """(B, T, D) -> {stat: (B, D) float32}; T = 0 gives zeros."""
    B, T, D = x.shape
    if T == 0:
        return {s: np.zeros((B, D), np.float32) for s in stats}
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite input: cleaned up by _finish
        got = _pool_batch(x, stats, voiced)
    return {s: _finish(got[s]) for s in stats}


def pool_rows(rows: list[np.ndarray], stats, voiced: list[np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Many clips at once: rows[i]: (T_i, D) -> {stat: (rows, D) float32}, equal to pool() per row.

    Clips of equal length are stacked and pooled together (in chunks of ~16 MiB of float64)."""
    stats = check_stats(stats)
    if not rows:
        return {s: np.zeros((0, 0), np.float32) for s in stats}
    D = rows[0].shape[1]
    out = {s: np.zeros((len(rows), D), np.float32) for s in stats}
    by_len: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_len[len(r)].append(i)
    for T, idx in by_len.items():
        step = max(1, _CHUNK // max(1, T * D))
        for a in range(0, len(idx), step):
            take = idx[a : a + step]
            x = np.stack([np.asarray(rows[i], dtype=np.float32) for i in take])  # (b, T, D)
            v = None if voiced is None else np.stack([np.asarray(voiced[i], dtype=bool) for i in take])
            for s, val in _pool_many(x, stats, v).items():
                out[s][take] = val
    return out
