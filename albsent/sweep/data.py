"""The data of a sweep: every feature spec its space can produce, each read from the store once
on the driver (what a trial reads for its spec is up to its kind, albsent.sweep.kinds)."""

from __future__ import annotations

import logging

from albsent.dataset.spec import column_info, parse, resolve
from albsent.sweep.config import SweepConfig
from albsent.sweep.space import SearchSpace

log = logging.getLogger(__name__)


def feature_specs(config: SweepConfig, space: SearchSpace, store: str = "") -> list[str]:
    """Every distinct feature spec the space can produce (as the trials' configs spell it)."""
    texts = space.values("features", config.trial_config({}, store).features)
    return sorted({config.sweep_kind.canonical_features(t) for t in texts})


def load_all(config: SweepConfig, space: SearchSpace, store: str) -> dict:
    """{spec: what a trial of that spec reads} (SweepKind.load), each spec read once."""
    from albsent.store import Store

    info = column_info(Store(store).schema)
    out: dict = {}
    for text in feature_specs(config, space, store):
        resolve(parse(text), info, store)  # a clear StoreError before any trial starts
        out[text] = config.sweep_kind.load(config, text, store)
        log.info("sweep data: %s read from %s", text, store)
    return out
