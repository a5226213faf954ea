"""Both stages in one Ray-free call, for a sweep trial or a script:
`pretrain_and_probe(config, frames, data)` pretrains on `frames` (every row of a store, labels
ignored: albsent.dataset.data.load_frames), then probes `config.probe` on the labelled `data`
(load_data), with no round trip through disk.

`on_step(stage, step, metrics)` is called with stage "pretrain" at every validation pass and
"probe" after every fold, so a Tune trainable can `tune.report` from it."""

from __future__ import annotations

from albsent.dataset.data import Data
from albsent.pretrain.config import PretrainConfig
from albsent.pretrain.loop import pretrain
from albsent.pretrain.probe import probe


def pretrain_and_probe(config: PretrainConfig, frames: Data, data: Data, on_step=None, out_dir=None) -> dict:
    """-> the probe's metrics (probe at the top level, "baseline", "probe") plus "pretrain": the
    autoencoder's final metrics. `data` must hold the same feature spec as `config.features`."""
    report = (lambda stage: (lambda step, m: on_step(stage, step, m))) if on_step else (lambda stage: None)
    result = pretrain(config, frames, on_step=report("pretrain"), out_dir=out_dir)
    metrics = probe(config.probe, result.as_pretrained(str(out_dir or "")), data, on_step=report("probe"))
    metrics["pretrain"] = dict(result.metrics)
    return metrics
