"""Predict with a saved run on new audio, Ray-free, with the store's own preprocessing and
extractors (rebuilt from the extract config recorded in the bundle), so features match the
store exactly.

A run trained with --folds K holds K models (RUN/fold-k/), a run of `train --auto` a weighted
ensemble (RUN/ensemble.json): the probabilities of its models are averaged with their weights.
Per file: the label and class probabilities; a store of whole utterances is predicted from the
whole utterance, a segmented store from the mean over segments. `segments_s` (or a segmented
store) adds a per-window timeline.

A model trained with per-speaker normalisation (`speaker_norm`) z-scores each speaker's clips
with that speaker's own statistics, computed over every clip (and segment) of that speaker in
the same call: pass `speakers` ({path: speaker}, e.g. from a manifest's speaker column, or
`--speaker NAME` for all files). A file without a speaker, or a speaker with a single clip of
one window, cannot have statistics of its own: it is normalised with the training corpus'
statistics instead (a warning says so; expect lower accuracy than with a few clips per speaker).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from albsent.audio.io import decode
from albsent.audio.manifest import audio_inputs
from albsent.audio.preprocess import preprocess
from albsent.config import build
from albsent.dataset.normalize import Scaling
from albsent.dataset.spec import FeatureSpec, assemble, parse
from albsent.errors import AlbsentError, InputError
from albsent.features.base import extract_segments
from albsent.train.checkpoint import Bundle, BundleError, bundle_model
from albsent.train.ensemble import run_members
from albsent.train.loop import predict_proba, stride_frames

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    path: str
    label: str | None = None
    probs: dict[str, float] = field(default_factory=dict)
    segments: list[dict] = field(default_factory=list)  # {start_s, end_s, label, probs}
    error: str | None = None


@dataclass
class Member:
    """One saved model with what it needs to turn extracted columns into its input."""

    model: object
    scaling: Scaling
    spec: FeatureSpec
    columns: dict
    stride: int
    weight: float
    name: str = ""  # the model's registered name

    @classmethod
    def of(cls, bundle: Bundle, weight: float) -> "Member":
        feats = bundle.meta["features"]
        return cls(bundle_model(bundle), Scaling.from_json(bundle.meta.get("normalization")), parse(feats["spec"]),
                   feats["columns"], int(feats.get("frame_stride", 1)), weight, bundle.meta["model"]["name"])

    def inputs(self, rows: list[dict]):
        """Extracted columns per clip -> this model's input, before normalisation."""
        cols = {c: [r[c] for r in rows] for c in self.spec.columns}
        return stride_frames(assemble(self.spec, cols, self.columns), self.stride)


def run_models(run: str | Path) -> tuple[list[Member], list[str], dict]:
    """RUN's models (an ensemble's members, K fold models or one) -> (members, labels, the
    extract config of the store they were trained on). A BundleError when they disagree on the
    labels or the store, or the run records no extract config."""
    found = run_members(run)
    bundles = [b for b, _ in found]
    first = bundles[0].meta
    labels = list(first["labels"])
    if any(b.meta["labels"] != labels for b in bundles):
        raise BundleError(f"{run}: its models disagree on the labels")
    if any(b.meta.get("extract_config") != first.get("extract_config") for b in bundles):
        raise BundleError(f"{run}: its models come from stores with different extract configs")
    if not first.get("extract_config"):
        raise BundleError(f"{Path(bundles[0].folder, 'model.json')}: no 'extract_config' (the store's extract "
                          "config, needed to featurise new audio as the store did); retrain with `albsent train "
                          "--store STORE`, or copy the 'config' of STORE/_albsent.json there as 'extract_config'")
    return [Member.of(b, w) for b, w in found], labels, first["extract_config"]


def weighted_probs(members: list[Member], inputs: list, speakers=None) -> np.ndarray:
    """(rows, classes) weighted mean probabilities of the members, each on its own input (rows of
    its spec); speakers: (rows,) for the members that normalise per speaker (the others ignore it)."""
    return sum(m.weight * predict_proba(m.model, m.scaling(X, speakers)) for m, X in zip(members, inputs))


class Predictor:
    def __init__(self, run: str | Path):
        from albsent.features.config import ExtractConfig, build_extractors

        self.members, self.labels, extract_config = run_models(run)
        self.by_speaker = any(m.scaling.speaker for m in self.members)
        self.extract_config = build(ExtractConfig, extract_config)
        needed = {c for m in self.members for c in m.spec.columns}
        self.extractors = [e for e in build_extractors(self.extract_config) if needed & {c.name for c in e.columns()}]

    def _features(self, segs: list) -> list:
        """Each member's input for these segments (albsent.audio.preprocess.Segment), before normalisation."""
        rows = extract_segments(self.extractors, segs)
        return [m.inputs(rows) for m in self.members]

    def _scored(self, inputs: list, speakers=None) -> np.ndarray:
        return weighted_probs(self.members, inputs, speakers)

    def _probs(self, segs: list) -> np.ndarray:
        return self._scored(self._features(segs))

    def _named(self, p: np.ndarray) -> tuple[str, dict[str, float]]:
        return self.labels[int(p.argmax())], {lab: round(float(q), 6) for lab, q in zip(self.labels, p)}

    def _windows(self, path: str, segments_s: float | None):
        """(the rows the store would hold for this file, the timeline windows or None). A segmented
        store's timeline is its own segments (the same list); a whole-utterance store cuts windows
        of `segments_s` when asked."""
        audio = self.extract_config.audio
        dec = decode(path)
        _, segs = preprocess(dec.samples, dec.sample_rate_hz, audio, path)
        if audio.segment_s > 0:
            return segs, segs
        if not segments_s:
            return segs, None
        cut = replace(audio, segment_s=segments_s, segment_hop_s=None)
        return segs, preprocess(dec.samples, dec.sample_rate_hz, cut, path)[1]

    def _timeline(self, out: Prediction, windows, probs: np.ndarray) -> None:
        for s, p in zip(windows, probs):
            lab, named = self._named(p)
            out.segments.append({"start_s": round(s.start_s, 3), "end_s": round(s.end_s, 3), "label": lab,
                                 "probs": named})

    def predict_file(self, path: str, segments_s: float | None = None) -> Prediction:
        segs, timeline = self._windows(path, segments_s)
        probs = self._probs(segs)  # (segments or 1, classes)
        out = Prediction(path, *self._named(probs.mean(0)))
        if timeline is not None:
            self._timeline(out, timeline, probs if timeline is segs else self._probs(timeline))
        return out

    def predict(self, inputs: list[str], segments_s: float | None = None, speakers: dict[str, str] | str | None = None):
        """Yield one Prediction per audio file; a file that cannot be used yields one with `error`.
        speakers: {path as given or found: speaker}, or one speaker for every file (speaker_norm models)."""
        paths, listed = audio_inputs(inputs)  # folders, URIs and manifest CSVs: albsent.audio.manifest's rules
        if not paths:
            raise InputError(f"no audio to predict in {inputs}")
        if listed and not isinstance(speakers, str):
            speakers = {**listed, **(speakers or {})}
        if self.by_speaker:
            yield from self._predict_by_speaker(paths, segments_s, speakers)
            return
        for path in paths:
            try:
                yield self.predict_file(path, segments_s)
            except Exception as exc:  # one bad file must not stop the rest
                yield Prediction(path, error=_message(path, exc))

    def _predict_by_speaker(self, paths: list[str], segments_s: float | None, speakers):
        """Extract every file first, then normalise each speaker's rows together and score them.
        Timeline windows are normalised per speaker among the timeline windows."""
        def speaker_of(path: str):
            if isinstance(speakers, str):
                return speakers
            table = speakers or {}
            return table.get(path) or table.get(str(Path(path).resolve()))

        timeline_on = self.extract_config.audio.segment_s > 0 or bool(segments_s)
        done, errors = self._extract_all(paths, segments_s)
        _warn_thin_speakers(done, speaker_of)
        whole = self._score_blocks([(p, X) for p, X, _, _ in done], speaker_of)
        lines = self._score_blocks([(p, Xt) for p, _, _, Xt in done], speaker_of) if timeline_on else {}
        results = {}
        for path, _, timeline, _ in done:
            results[path] = Prediction(path, *self._named(whole[path].mean(0)))
            if timeline is not None:
                self._timeline(results[path], timeline, lines.get(path, []))
        for path in paths:
            yield Prediction(path, error=errors[path]) if path in errors else results[path]

    def _extract_all(self, paths: list[str], segments_s: float | None) -> tuple[list[tuple], dict[str, str]]:
        """-> ([(path, member inputs, timeline windows | None, timeline inputs | None)], {path: error})."""
        done, errors = [], {}
        for path in paths:
            try:
                segs, timeline = self._windows(path, segments_s)
                X = self._features(segs)
                if timeline is None or timeline is segs:
                    Xt = None if timeline is None else X
                else:
                    Xt = self._features(timeline)
                done.append((path, X, timeline, Xt))
            except Exception as exc:  # one bad file must not stop the rest
                errors[path] = _message(path, exc)
        return done, errors

    def _score_blocks(self, blocks: list[tuple[str, list]], speaker_of) -> dict[str, np.ndarray]:
        """{path: (rows, classes)} for per-file blocks (each member's input) scored together, rows keyed by speaker."""
        blocks = [(p, Xs) for p, Xs in blocks if len(Xs[0])]
        if not blocks:
            return {}
        sizes = [len(Xs[0]) for _, Xs in blocks]
        keys = np.array([speaker_of(p) for (p, _), n in zip(blocks, sizes) for _ in range(n)], dtype=object)
        joined = []
        for k in range(len(self.members)):
            parts = [Xs[k] for _, Xs in blocks]
            joined.append([x for part in parts for x in part] if isinstance(parts[0], list) else np.concatenate(parts))
        probs = self._scored(joined, keys)
        ends = np.cumsum(sizes)
        return {p: probs[e - n:e] for (p, _), e, n in zip(blocks, ends, sizes)}


def _warn_thin_speakers(done: list[tuple], speaker_of) -> None:
    """Warn about files without a speaker and speakers with one row: both fall back to the
    training corpus' statistics in a per-speaker-normalised model."""
    missing = [p for p, *_ in done if speaker_of(p) is None]
    if missing:
        log.warning("this model normalises per speaker; %d file(s) have no speaker (e.g. %s) and are normalised "
                    "with the training corpus' statistics: pass --speaker NAME or a manifest with a speaker column",
                    len(missing), missing[0])
    rows: dict[str, int] = {}  # rows per speaker: by_speaker needs 2 for statistics of its own
    for p, X, _, _ in done:
        spk = speaker_of(p)
        if spk not in (None, ""):
            rows[spk] = rows.get(spk, 0) + len(X[0])
    lone = sorted(s for s, n in rows.items() if n < 2)
    if lone:
        log.warning("this model normalises per speaker; %d speaker(s) have a single clip here (e.g. %s), too few "
                    "for statistics of their own: their clips are normalised with the training corpus' statistics "
                    "(less accurate); give a few clips per speaker", len(lone), lone[0])


def _message(path: str, exc: Exception) -> str:
    log.debug("prediction failed for %s", path, exc_info=True)
    return str(exc) if isinstance(exc, AlbsentError) else f"{path}: {exc!r}"
