"""The space of a sweep, with its conditional filters, and the data it needs, read once.

Filters keep only choices that fit what was sampled before them:
  classifier  `features`  -> the kinds the sampled `model` reads (pooled / sequence)
              `ssl_layer` -> the layers the sampled `ssl_model` has in the store (+ `all` for
                             torch models: a learned weighted layer sum)
  latent      `probe.attach` -> the attachment points of the sampled autoencoder
                             (`auto` = all of them)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from albsent.config import to_dict
from albsent.dataset.spec import column_info, parse, resolve
from albsent.errors import ConfigError
from albsent.sweep.config import SweepConfig, check_keys
from albsent.sweep.space import SearchSpace, fill, parse_space, short_hash

log = logging.getLogger(__name__)


def _template_kind(text: str) -> str:
    """Kind of a feature spec that may hold {placeholders} (tried with a name and a layer number)."""
    import itertools
    import re

    names = re.findall(r"\{(\w+)\}", text)
    for combo in itertools.product(("a", "1"), repeat=len(names)):
        try:
            return parse(fill(text, dict(zip(names, combo)))).kind
        except ConfigError:
            continue
    raise ConfigError(f"sweep space 'features': {text!r} is not a feature spec (see `albsent train --help`)")


@dataclass
class ClassifierFilter:
    base_model: str
    model_searched: bool
    ssl_layers: dict  # alias -> number of layers in the store
    deps = ("model", "ssl_model")  # keys the filter reads (enumerated with it)

    def _model(self, sampled: dict) -> tuple[str, object]:
        from albsent.models import get_model

        name = sampled.get("model", self.base_model)
        return name, get_model(name)

    def __call__(self, key: str, choices: list, sampled: dict) -> tuple[list, str]:
        from albsent.models import check_compatible

        name, entry = self._model(sampled)
        ctx = ("sklearn" if entry.sklearn else entry.input_kind) if self.model_searched else ""
        if key == "features":
            keep = []
            for c in choices:
                kind = _template_kind(str(c))
                try:
                    check_compatible(name, kind, str(c))
                    keep.append(c)
                except ConfigError:
                    pass
            return keep, ctx
        if key == "ssl_layer":
            alias = sampled.get("ssl_model")
            n = self.ssl_layers.get(alias)
            if n is None:
                raise ConfigError(f"sweep space 'ssl_layer': the store has no SSL column for model {alias!r}; "
                                  f"it has {sorted(self.ssl_layers) or 'none'}")
            keep = [c for c in choices if (c == "all" and not entry.sklearn) or (isinstance(c, int) and 0 <= c < n)]
            return keep, f"{alias}{'-sk' if entry.sklearn else ''}"
        return choices, ""


@dataclass
class LatentFilter:
    base: dict  # PretrainConfig as a dict
    in_dims: dict  # feature spec -> dims per frame
    deps = ()

    def __call__(self, key: str, choices: list, sampled: dict) -> tuple[list, str]:
        from albsent.config import build, merge
        from albsent.models.autoencoders import attach_points
        from albsent.models.autoencoders.config import AutoencoderConfig
        from albsent.pretrain.data import sequence_spec

        if key != "probe.attach":
            return choices, ""
        model = dict(self.base["model"])
        window = dict(self.base["window"])
        for k, v in sampled.items():
            if k.startswith("model."):
                model[k[6:]] = v
            elif k.startswith("window."):
                window[k[7:]] = v
        features = sequence_spec(sampled.get("features", self.base["features"])).text
        ae = build(AutoencoderConfig, merge(self.base["model"], model))
        points = [p.name for p in attach_points(ae, self.in_dims[features], int(window["length"]), window["target"])]
        keep = points if choices == ["auto"] else [c for c in choices if c in points]
        return keep, f"{ae.name}-{short_hash(keep)}"  # no "/": Tune unflattens on it


def build_space(config: SweepConfig, store_schema_info: dict, store: str = "") -> SearchSpace:
    """The SearchSpace of `config`, with filters computed from the store's columns."""
    params = parse_space(config.space)
    base = config.base_dict(store)
    keys = {p.key for p in params}
    if config.kind == "classifier":
        ssl = {c[4:-5]: info["shape"][0] for c, info in store_schema_info.items()
               if c.startswith("ssl_") and c.endswith("_mean") and len(info["shape"]) == 2}
        filt = ClassifierFilter(base.get("model", "mlp"), "model" in keys, ssl)
        filters = {k: filt for k in ("features", "ssl_layer") if k in keys}
    else:
        base_cfg = to_dict(config.trial_config({}))
        specs = {s for s in _feature_texts(params, base_cfg["features"], None)}
        dims = {}
        for s in specs:
            from albsent.pretrain.data import sequence_spec

            spec = sequence_spec(s)
            cols = resolve(spec, store_schema_info)
            dims[spec.text] = sum(int(v) for c in cols.values() for v in c["shape"][1:])
        filters = {"probe.attach": LatentFilter(base_cfg, dims)} if "probe.attach" in keys else {}
    space = SearchSpace(params, filters, config.placeholder_keys())
    check_keys(config, space)
    return space


def _feature_texts(params, base_features: str, space: SearchSpace | None) -> list[str]:
    if not any(p.key == "features" for p in params):
        return [base_features]
    if space is None:  # no filters needed: every declared choice (placeholders not allowed here)
        p = next(p for p in params if p.key == "features")
        return [str(v) for v in p.values]
    return sorted({fill(c.get("features", base_features), c) for c in space.enumerate(("features",))})


def feature_specs(config: SweepConfig, space: SearchSpace, store: str = "") -> list[str]:
    """Every distinct feature spec the space can produce (each is read from the store once)."""
    base = config.base_dict(store)
    base_features = base.get("features", "mfcc" if config.kind == "classifier" else "mfcc:seq")
    texts = _feature_texts(space.params, base_features, space)
    if config.kind == "latent":
        from albsent.pretrain.data import sequence_spec

        texts = sorted({sequence_spec(t).text for t in texts})
    return texts


def load_all(config: SweepConfig, space: SearchSpace, store: str) -> dict:
    """{spec: Data} (classifier) or {spec: (Frames, Data)} (latent), each spec read once."""
    from albsent.store import Store

    info = column_info(Store(store).schema)
    out: dict = {}
    for text in feature_specs(config, space, store):
        resolve(parse(text), info, store)  # a clear StoreError before any trial starts
        if config.kind == "classifier":
            from albsent.dataset.data import load_data

            group_by = config.trial_config({}, store).split.group_by
            out[text] = load_data(store, text, group_by)
        else:
            from albsent.dataset.data import load_data
            from albsent.pretrain.data import load_frames

            labeled = load_data(store, text, config.trial_config({}).probe.group_by)
            frames = load_frames(config.pretrain_store or store, text)
            out[text] = (frames, labeled)
        log.info("sweep data: %s read from %s", text, store)
    return out
