"""pYIN F0 with `librosa.pyin`'s result, about 19x faster (`bench/pitch.py`).

librosa's pYIN spent ~75 % of its time in `librosa.sequence.viterbi`, which scores every one of
the 2 * n_pitch_bins states (708 for 65-500 Hz) against every other at every frame, ~13 % in a
Python loop over frames that computes the observation probabilities, and ~10 % rebuilding the
dense transition matrix on each call. pYIN's transitions are local: a state is reached only from
states within `max_transition_rate` of its pitch (82 of the 708 here). So this module

- builds the transition matrix once per parameter set (cached), exactly as librosa does;
- decodes with a Viterbi that pushes each state's score only along its non-zero transitions (two
  runs of 41 neighbours here, in SIMD), and falls back to scoring every state for a target
  whenever one with a zero transition (log of librosa's epsilon) could tie or win, so the chosen
  path is librosa's own;
- runs librosa's per-frame trough/threshold loop compiled (numba): the same formulas, summed in
  another order, so voicing probabilities agree with librosa's to ~1e-15;
- reuses librosa's YIN frames and parabolic shifts as they are.

`tests/test_pitch.py` checks f0, voicing flag and voicing probability against `librosa.pyin` on
tones, glides, jumps, noise, silence, one-frame clips and EMO-DB speech, and the decoder against
`librosa.sequence.viterbi` on exact ties and irregular transition matrices. The private librosa
helpers used here are why pyproject pins librosa's minor version.
"""

from __future__ import annotations

import functools

import librosa
import numpy as np
import scipy.stats
from librosa.core import pitch as _lp
from numba import njit

_check_params = getattr(_lp, "__check_yin_params")


def sparse_log_transitions(transition: np.ndarray) -> tuple:
    """A (states, states) transition matrix [from, to] in the log form `viterbi` takes: the dense
    log matrix as librosa.sequence.viterbi computes it, then the non-zero entries of each row as
    runs of consecutive targets (row pointers into the runs; each run's first target, length and
    offset into the log weights; the log weights), and the log of a zero entry."""
    eps = librosa.util.tiny(np.empty(0, dtype=np.float64))  # librosa.sequence.viterbi's epsilon
    log_trans = np.log(transition + eps)
    rowptr, runs = [0], []
    for i in range(transition.shape[0]):
        nz = np.flatnonzero(transition[i])
        runs += [(i, run) for run in np.split(nz, np.flatnonzero(np.diff(nz) != 1) + 1)] if nz.size else []
        rowptr.append(len(runs))
    lengths = np.array([run.size for _, run in runs], dtype=np.int64)
    starts = np.array([run[0] for _, run in runs], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    weights = np.concatenate([log_trans[i, run] for i, run in runs]) if runs else np.zeros(0)
    return log_trans, np.array(rowptr, dtype=np.int64), starts, lengths, offsets, weights, float(np.log(eps))


def viterbi(prob: np.ndarray, transitions: tuple, p_init: np.ndarray) -> np.ndarray:
    """`librosa.sequence.viterbi(prob, transition, p_init=p_init)` for one channel, scoring only the
    non-zero transitions. prob: (states, frames); transitions: `sparse_log_transitions(transition)`.
    Returns the state sequence (frames,) uint16."""
    eps = librosa.util.tiny(prob)
    log_prob = np.ascontiguousarray(np.log(prob + eps).T)  # (frames, states)
    return _viterbi_local(log_prob, np.log(p_init + eps), *transitions)


@functools.lru_cache(maxsize=8)
def _pyin_transitions(n_pitch_bins: int, width: int, switch_prob: float) -> tuple:
    """pYIN's (2 * n_pitch_bins)^2 transition matrix, built as librosa builds it, in sparse log form."""
    local = librosa.sequence.transition_local(n_pitch_bins, width, window="triangle", wrap=False)
    return sparse_log_transitions(np.kron(librosa.sequence.transition_loop(2, 1 - switch_prob), local))


@njit(cache=True)
def _trough_probs(yin_frames, thresholds, beta_probs, boltzmann_parameter, no_trough_prob):  # pragma: no cover
    """librosa's per-frame loop in `__pyin_helper`, compiled: the probability of each period being
    the F0 period, from its trough's rank under each of the thresholds (Boltzmann prior) weighted
    by the threshold's beta probability. yin_frames: (periods, frames) -> (periods, frames)."""
    n_periods, n_frames = yin_frames.shape
    probs = np.zeros((n_periods, n_frames))
    troughs = np.empty(n_periods, dtype=np.int64)
    for i in range(n_frames):
        y = yin_frames[:, i]
        n = _find_troughs(y, troughs)
        if n > 0:
            _frame_probs(probs[:, i], y, troughs[:n], thresholds, beta_probs, boltzmann_parameter, no_trough_prob)
    return probs


@njit(cache=True)
def _find_troughs(y, troughs):  # pragma: no cover
    """Write the local minima of y (periods,) into troughs[:n] (ends count when below their neighbour); -> n."""
    n_periods, n = y.size, 0
    if y[0] < y[1]:
        troughs[n] = 0
        n += 1
    for p in range(1, n_periods - 1):
        if y[p] < y[p - 1] and y[p] <= y[p + 1]:
            troughs[n] = p
            n += 1
    if y[n_periods - 1] < y[n_periods - 2]:
        troughs[n] = n_periods - 1
        n += 1
    return n


@njit(cache=True)
def _frame_probs(out, y, troughs, thresholds, beta_probs, lam, no_trough_prob):  # pragma: no cover
    """Add one frame's period probabilities to out (periods,), given its troughs (at least one)."""
    gmin = np.argmin(y[troughs])  # the first of the lowest troughs
    for k in range(beta_probs.size):
        th = thresholds[k + 1]
        below = 0  # troughs under this threshold
        for t in range(troughs.size):
            if y[troughs[t]] < th:
                below += 1
        if below == 0:
            continue
        fact = (1 - np.exp(-lam)) / (1 - np.exp(-lam * below))  # scipy.stats.boltzmann.pmf(rank, lam, below)
        rank = 0
        for t in range(troughs.size):
            if y[troughs[t]] < th:
                out[troughs[t]] += fact * np.exp(-lam * rank) * beta_probs[k]
                rank += 1
    below_min = 0  # thresholds at or under the lowest trough
    for k in range(beta_probs.size):
        if not y[troughs[gmin]] < thresholds[k + 1]:
            below_min += 1
    out[troughs[gmin]] += no_trough_prob * np.sum(beta_probs[:below_min])


def _observations(yin_frames, shifts, sr, thresholds, boltzmann_parameter, beta_probs, no_trough_prob, min_period,
                  fmin, n_pitch_bins, per_semitone):
    """librosa's `__pyin_helper`: (states, frames) observation probabilities and (frames,) voicing probability."""
    yin_probs = _trough_probs(yin_frames, thresholds, beta_probs, float(boltzmann_parameter), float(no_trough_prob))
    period, frame = np.nonzero(yin_probs)
    f0 = sr / (min_period + period + shifts[period, frame])
    bins = np.clip(np.round(12 * per_semitone * np.log2(f0 / fmin)), 0, n_pitch_bins).astype(int)
    obs = np.zeros((2 * n_pitch_bins, yin_frames.shape[1]))
    # as librosa: a bin == n_pitch_bins lands in the unvoiced half, overwritten below
    obs[bins, frame] = yin_probs[period, frame]
    voiced_prob = np.clip(np.sum(obs[:n_pitch_bins], axis=0), 0, 1)
    obs[n_pitch_bins:] = (1 - voiced_prob) / n_pitch_bins
    return obs, voiced_prob


@njit(cache=True)
def _viterbi_local(log_prob, log_p_init, log_trans, rowptr, starts, lengths, offsets, weights,  # pragma: no cover
                   log_zero):
    """librosa.sequence._viterbi's result from the non-zero transitions only.
    log_prob: (frames, states); log_trans: (states, states), [from, to]. Returns states (frames,).

    Each step pushes every source's score along its runs of targets (vectorised: numba emits
    SIMD compare-and-select for the slice loop), sources in increasing order with a strict `>`,
    so a tie keeps the lowest source, as np.argmax does. Where a zero transition (log_zero) could
    tie or beat a target's best, that target is scored against every state, as librosa does."""
    n_steps, n_states = log_prob.shape
    value = np.empty((n_steps, n_states))
    ptr = np.zeros((n_steps, n_states), dtype=np.uint16)
    best = np.empty(n_states)
    arg = np.empty(n_states, dtype=np.int64)
    value[0] = log_prob[0] + log_p_init
    for t in range(1, n_steps):
        prev = value[t - 1]
        best[:] = -np.inf
        arg[:] = 0
        for i in range(n_states):
            p = prev[i]
            for r in range(rowptr[i], rowptr[i + 1]):
                s, n, o = starts[r], lengths[r], offsets[r]
                # slices vectorise, indices do not
                b_run, a_run, w_run = best[s : s + n], arg[s : s + n], weights[o : o + n]
                for k in range(n):
                    v, b, a = p + w_run[k], b_run[k], a_run[k]
                    c = v > b
                    b_run[k] = v if c else b
                    a_run[k] = i if c else a
        top = prev.max()
        for j in range(n_states):
            b, a = best[j], arg[j]
            if top + log_zero >= b:  # a zero-probability predecessor could tie or win: score them all
                b, a = -np.inf, 0
                for i in range(n_states):
                    v = prev[i] + log_trans[i, j]
                    if v > b:
                        b, a = v, i
            ptr[t, j] = a
            value[t, j] = log_prob[t, j] + b
    state = np.zeros(n_steps, dtype=np.uint16)
    state[-1] = np.argmax(value[-1])
    for t in range(n_steps - 2, -1, -1):
        state[t] = ptr[t + 1, state[t + 1]]
    return state


def pyin(
    y: np.ndarray, *, fmin: float, fmax: float, sr: int, frame_length: int, hop_length: int,
    n_thresholds: int = 100, beta_parameters: tuple[float, float] = (2, 18), boltzmann_parameter: float = 2,
    resolution: float = 0.1, max_transition_rate: float = 35.92, switch_prob: float = 0.01,
    no_trough_prob: float = 0.01, center: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`librosa.pyin` for one mono signal, same parameters and defaults (pad_mode "constant").
    y: (n,) -> f0 (frames,) with NaN where unvoiced, voiced_flag (frames,), voiced_prob (frames,)."""
    if y.ndim != 1:
        raise ValueError(f"pyin expects one mono signal of shape (n,), got shape {y.shape}")
    _check_params(sr=sr, fmax=fmax, fmin=fmin, frame_length=frame_length)
    librosa.util.valid_audio(y)
    if center:
        y = np.pad(y, (frame_length // 2, frame_length // 2), mode="constant")
    frames = librosa.util.frame(y, frame_length=frame_length, hop_length=hop_length)
    min_period = int(np.floor(sr / fmax))
    max_period = min(int(np.ceil(sr / fmin)), frame_length - 1)
    yin_frames = _lp._cumulative_mean_normalized_difference(frames, min_period, max_period)
    shifts = _lp._parabolic_interpolation(yin_frames)

    thresholds = np.linspace(0, 1, n_thresholds + 1)
    beta_probs = np.diff(scipy.stats.beta.cdf(thresholds, beta_parameters[0], beta_parameters[1]))
    per_semitone = int(np.ceil(1.0 / resolution))
    n_pitch_bins = int(np.floor(12 * per_semitone * np.log2(fmax / fmin))) + 1
    obs, voiced_prob = _observations(
        yin_frames, shifts, sr, thresholds, boltzmann_parameter, beta_probs, no_trough_prob, min_period, fmin,
        n_pitch_bins, per_semitone,
    )  # (states, frames), (frames,)

    width = round(max_transition_rate * 12 * hop_length / sr) * per_semitone + 1
    p_init = np.ones(2 * n_pitch_bins) / (2 * n_pitch_bins)
    states = viterbi(obs, _pyin_transitions(n_pitch_bins, width, switch_prob), p_init)

    freqs = fmin * 2 ** (np.arange(n_pitch_bins) / (12 * per_semitone))
    voiced = states < n_pitch_bins
    f0 = freqs[states % n_pitch_bins]
    f0[~voiced] = np.nan
    return f0, voiced, voiced_prob
