"""Predict with a saved run on new audio, Ray-free, with the store's own preprocessing and
extractors (rebuilt from the extract config recorded in the bundle), so features match the
store exactly.

A run trained with --folds K holds K models (RUN/fold-k/); their probabilities are averaged.
Per file: the label and class probabilities; a store of whole utterances is predicted from the
whole utterance, a segmented store from the mean over segments. `segments_s` (or a segmented
store) adds a per-window timeline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from albsent.audio.io import AUDIO_EXTENSIONS, decode
from albsent.audio.preprocess import preprocess
from albsent.config import build
from albsent.dataset.spec import FeatureSpec, assemble
from albsent.errors import AlbsentError, InputError
from albsent.features.base import extract_all
from albsent.train.checkpoint import Bundle, BundleError, bundle_model, load_bundle
from albsent.train.loop import Normalizer, predict_proba, stride_frames

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    path: str
    label: str | None = None
    probs: dict[str, float] = field(default_factory=dict)
    segments: list[dict] = field(default_factory=list)  # {start_s, end_s, label, probs}
    error: str | None = None


def run_bundles(run: str | Path) -> list[Bundle]:
    """The model of RUN, or the K fold models of a cross-validated RUN."""
    run = Path(run)
    if (run / "model.json").is_file():
        return [load_bundle(run)]
    folds = sorted(run.glob("fold-*/model.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    if folds:
        return [load_bundle(p.parent) for p in folds]
    raise BundleError(f"{run}: no saved model (model.json, or fold-*/model.json for a --folds run); "
                      "expected the --out folder of `albsent train`")


def expand_inputs(inputs: list[str]) -> list[str]:
    """Files as given; folders searched recursively for audio. A missing path is kept (it fails per file)."""
    out: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
            if not found:
                log.warning("%s: no audio files found", p)
            out += found
        else:
            out.append(str(p))
    if not out:
        raise InputError(f"no audio to predict in {inputs}")
    return out


class Predictor:
    def __init__(self, run: str | Path):
        from albsent.pipeline.config import ExtractConfig, build_extractors

        self.bundles = run_bundles(run)
        first = self.bundles[0].meta
        self.labels = list(first["labels"])
        if any(b.meta["labels"] != self.labels or b.meta["features"]["spec"] != first["features"]["spec"] for b in self.bundles):
            raise BundleError(f"{run}: fold models disagree on labels or feature spec")
        self.models = [bundle_model(b) for b in self.bundles]
        self.norms = [Normalizer.from_json(b.meta.get("normalization")) for b in self.bundles]
        feats = first["features"]
        from albsent.dataset.spec import parse

        self.spec: FeatureSpec = parse(feats["spec"])
        self.columns: dict = feats["columns"]
        self.stride = int(feats.get("frame_stride", 1))
        self.extract_config = build(ExtractConfig, first["extract_config"])
        needed = set(self.spec.columns)
        self.extractors = [e for e in build_extractors(self.extract_config) if needed & {c.name for c in e.columns()}]

    def _probs(self, waves: list[np.ndarray]) -> np.ndarray:
        """(clips, classes) mean probabilities of all models for these waveforms."""
        rows = extract_all(self.extractors, waves)
        X = stride_frames(assemble(self.spec, {c: [r[c] for r in rows] for c in self.spec.columns}, self.columns), self.stride)
        out = [predict_proba(m, norm(X) if norm else X) for m, norm in zip(self.models, self.norms)]
        return np.mean(out, axis=0)

    def _named(self, p: np.ndarray) -> tuple[str, dict[str, float]]:
        return self.labels[int(p.argmax())], {lab: round(float(q), 6) for lab, q in zip(self.labels, p)}

    def predict_file(self, path: str, segments_s: float | None = None) -> Prediction:
        audio = self.extract_config.audio
        dec = decode(path)
        utt, segs = preprocess(dec.samples, dec.sample_rate_hz, audio, path)
        probs = self._probs([s.samples for s in segs])  # (segments or 1, classes)
        label, named = self._named(probs.mean(0))
        out = Prediction(path, label, named)
        if audio.segment_s > 0 or segments_s:
            if audio.segment_s <= 0:  # whole-utterance store: cut the timeline windows here
                _, segs = preprocess(dec.samples, dec.sample_rate_hz, replace(audio, segment_s=segments_s, segment_hop_s=None), path)
                probs = self._probs([s.samples for s in segs])
            for s, p in zip(segs, probs):
                lab, named = self._named(p)
                out.segments.append({"start_s": round(s.start_s, 3), "end_s": round(s.end_s, 3), "label": lab, "probs": named})
        return out

    def predict(self, inputs: list[str], segments_s: float | None = None):
        """Yield one Prediction per audio file; a file that cannot be used yields one with `error`."""
        for path in expand_inputs(inputs):
            try:
                yield self.predict_file(path, segments_s)
            except Exception as exc:  # one bad file must not stop the rest
                msg = str(exc) if isinstance(exc, AlbsentError) else f"{path}: {exc!r}"
                log.debug("prediction failed for %s", path, exc_info=True)
                yield Prediction(path, error=msg)
