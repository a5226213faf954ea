"""Feature SPEC: which store columns a model reads, and how they become arrays.

Grammar (whitespace ignored)::

    SPEC   := POOLED ('+' POOLED)*            pooled vectors, concatenated       -> X: (rows, dim)
            | FRAME ('+' FRAME)* ':seq'       frame sequences, concatenated per frame
                                                                                 -> X: list of (frames, dim)
            | 'ssl:' ALIAS ':all'             every SSL layer, for a learned softmax-weighted
                                              layer sum                          -> X: (rows, layers, hidden)
            | 'ssl:' ALIAS ':seq:' LAYER      one SSL layer's frame sequence     -> X: list of (frames, hidden)
    POOLED := NAME                            NAME.mean,std: columns NAME_mean + NAME_std (e.g. mfcc, shortterm)
            | NAME '.' STAT (',' STAT)*       the listed statistics of NAME, concatenated in that order
            | 'ssl:' ALIAS ':' LAYER (',' LAYER)*   layers of column ssl_ALIAS_mean (layers, hidden),
                                              concatenated
    STAT   := 'mean' | 'std' | 'func'         stored pooled columns NAME_mean, NAME_std, NAME_func
            | 'p'NN | 'range' | 'slope' | 'skew' | 'kurt' | 'vmean' | 'vstd'
                                              pooled at load (and predict) time from the frame
                                              sequence column NAME (albsent.features.pooling)
            | 'rich'                          mean,std,p20,p50,p80,range,slope,skew,kurt, then vmean,vstd
                                              where NAME has a voicing flag
    FRAME  := NAME                            the sequence column NAME (frames, dim)

Examples: ``mfcc``, ``mfcc+shortterm``, ``mfcc.rich``, ``mfcc.mean,std,p50``, ``shortterm.rich``
(with vmean, vstd when f0 is on), ``egemaps.func``, ``egemaps.rich``, ``mfcc.rich+egemaps.func``,
``mfcc:seq``, ``mfcc+shortterm:seq``, ``ssl:hubert:9``, ``ssl:hubert:6,9,12``, ``ssl:hubert:all``,
``ssl:hubert:seq:9``, ``mfcc+ssl:hubert:12``, ``ssl:hubert:9+ssl_hubert_l9.p20,p80,slope`` (statistics of
a stored SSL layer sequence; its mean/std live in ssl_hubert_mean, so `.rich` does not apply).

Which column a stat reads is fixed by the grammar, not by the store: `mean`, `std` and `func`
always read the stored pooled column (so `mfcc` and `mfcc.mean,std` read exactly what was
stored), every other stat is computed from the sequence column. So `FeatureSpec.columns` lists
the columns from the text alone, and `predict` extracts exactly those. The statistics are
stat-major: `mfcc.p20,p50` is the 120 p20 values, then the 120 p50 values. Voiced-only stats
use the voicing flag the store metadata records for the sequence (`column_info`: shortterm's
voicing_prob > 0.5, egemaps / compare F0 > 0); it travels in the resolved column info, so
`assemble` pools the same frames the same way at load and at predict time.

`parse` checks syntax only; `resolve` checks the columns against a store's schema and returns
their shapes, dtypes and voicing flags, which travel with a trained model so `predict` can
rebuild the same arrays from freshly extracted features (`assemble`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from albsent.errors import ConfigError, StoreError
from albsent.features.pooling import PRESETS, RICH, VOICED, is_stat, pool_rows
from albsent.store.schema import POOLED_STATS, layer_column, parse_column, pooled_column, sequence_column, ssl_group

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
KINDS = ("pooled", "layers", "sequence")
STORED_STATS = POOLED_STATS  # read from the stored column NAME_<stat>


@dataclass(frozen=True)
class Part:
    """One block of the model input. `column` is read from the store; `layers` picks rows of a
    pooled SSL (layers, hidden) value; `stats` (pooled specs) are computed from the frame
    sequence `column`, and those also in `optional` (rich's vmean, vstd) are left out where the
    column has no voicing flag."""

    column: str
    layers: tuple[int, ...] | None = None
    stats: tuple[str, ...] | None = None
    optional: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeatureSpec:
    text: str
    kind: str  # "pooled" | "layers" | "sequence"
    parts: tuple[Part, ...]

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(p.column for p in self.parts))


def _bad(text: str, why: str) -> ConfigError:
    return ConfigError(
        f"invalid feature spec {text!r}: {why}. Expected e.g. mfcc, mfcc+shortterm, mfcc.rich, mfcc.mean,std,p50, "
        "egemaps.func, mfcc:seq, ssl:hubert:9, ssl:hubert:6,9,12, ssl:hubert:all or ssl:hubert:seq:9 "
        "(see `albsent train --help`)"
    )


def _layers(text: str, raw: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in raw.split(","))
    except ValueError:
        raise _bad(text, f"layer list {raw!r} is not comma-separated integers") from None
    if any(v < 0 for v in out) or len(set(out)) != len(out):
        raise _bad(text, f"layer list {raw!r} must hold distinct non-negative integers")
    return out


def _stat_parts(text: str, item: str, name: str, raw: str) -> list[Part]:
    """`mfcc`, `rich,func` -> parts: a stored column per mean/std/func, one pooled part per run of other stats."""
    stats: list[str] = []
    optional: set[str] = set()
    for s in raw.split(","):
        if s in PRESETS:
            stats += PRESETS[s]
            if s == "rich":
                stats += VOICED
                optional |= set(VOICED)
        elif s in STORED_STATS or is_stat(s):
            stats.append(s)
        else:
            raise _bad(text, f"{item!r}: unknown statistic {s!r}; "
                             f"known: {', '.join(STORED_STATS + RICH[2:] + VOICED)}, "
                             "pNN (NN in 0..100) and the preset rich")
    if len(set(stats)) != len(stats):
        raise _bad(text, f"{item!r} repeats a statistic")
    parts: list[Part] = []
    run: list[str] = []

    def flush():
        if run:
            parts.append(Part(sequence_column(name), stats=tuple(run), optional=tuple(s for s in run if s in optional)))
            run.clear()

    for s in stats:
        if s in STORED_STATS:
            flush()
            parts.append(Part(pooled_column(name, s)))
        else:
            run.append(s)
    flush()
    return parts


def _units(parts) -> list[tuple]:
    """What each part contributes, for the repeat check: a stored column (and layers) or (column, stat)."""
    out: list[tuple] = []
    for p in parts:
        out += [(p.column, s) for s in p.stats] if p.stats is not None else [(p.column, p.layers)]
    return out


def parse(text: str) -> FeatureSpec:
    spec = "".join(str(text).split())
    if not spec:
        raise _bad(text, "it is empty")
    if spec.startswith("ssl:") and "+" not in spec:
        whole = _parse_ssl_alone(text, spec)
        if whole is not None:
            return whole
    seq = spec.endswith(":seq")
    body = spec[: -len(":seq")] if seq else spec
    parts: list[Part] = []
    for item in body.split("+"):
        parts += _parse_item(text, item, seq)
    if len(set(_units(parts))) != len(_units(parts)):
        raise _bad(text, "a part is repeated")
    return FeatureSpec(spec, "sequence" if seq else "pooled", tuple(parts))


def _parse_ssl_alone(text: str, spec: str) -> FeatureSpec | None:
    """The specs an SSL part has only on its own: ssl:ALIAS:all, ssl:ALIAS:seq:LAYER (else None)."""
    bits = spec.split(":")
    if len(bits) >= 3 and not NAME.match(bits[1]):
        raise _bad(text, f"SSL alias {bits[1]!r} is not a name")
    if len(bits) == 3 and bits[2] == "all":
        return FeatureSpec(spec, "layers", (Part(pooled_column(ssl_group(bits[1]), "mean")),))
    if len(bits) == 4 and bits[2] == "seq":
        layers = _layers(spec, bits[3])
        if len(layers) != 1:
            raise _bad(text, "a frame-sequence spec takes exactly one layer")
        return FeatureSpec(spec, "sequence", (Part(layer_column(bits[1], layers[0])),))
    return None


def _parse_item(text: str, item: str, seq: bool) -> list[Part]:
    """One '+'-separated item of a spec -> its parts (`seq`: the spec ends in ':seq')."""
    if item.startswith("ssl:"):
        bits = item.split(":")
        if seq or len(bits) != 3 or not NAME.match(bits[1]) or bits[2] in ("all", "seq"):
            raise _bad(text, f"{item!r}: an SSL part inside a '+' list must be ssl:ALIAS:LAYERS")
        return [Part(pooled_column(ssl_group(bits[1]), "mean"), _layers(text, bits[2]))]
    name, dot, stats = item.partition(".")
    if not NAME.match(name):
        raise _bad(text, f"{item!r} is not a feature name (optionally .STATS, e.g. mfcc.mean or mfcc.rich)")
    if seq:
        if dot:
            raise _bad(text, f"{item!r}: a ':seq' spec takes whole frame sequences, not statistics")
        return [Part(sequence_column(name))]
    if dot and not stats:
        raise _bad(text, f"{item!r}: no statistic after '.'")
    return _stat_parts(text, item, name, stats or "mean,std")


def column_info(schema: pa.Schema, meta: dict | None = None) -> dict[str, dict]:
    """{column: {"shape": [None | int, ...], "dtype": "float16" | "float32"}} for array columns;
    a sequence column with a voicing flag also gets "voicing": {"feature", "index", "threshold"}
    (frames with value > threshold at that feature index are voiced). `meta`: the store metadata
    (default: the schema's b"albsent" metadata)."""
    out = {}
    for f in schema:
        t, shape = f.type, []
        while pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_large_list(t):
            shape.append(t.list_size if pa.types.is_fixed_size_list(t) else None)
            t = t.value_type
        if shape and pa.types.is_floating(t):
            out[f.name] = {"shape": shape, "dtype": str(t.to_pandas_dtype().__name__)}
    if meta is None and schema.metadata and b"albsent" in schema.metadata:
        meta = json.loads(schema.metadata[b"albsent"])
    for col, flag in voicing_flags(meta or {}).items():
        if col in out and out[col]["shape"][0] is None:
            out[col]["voicing"] = flag
    return out


def voicing_flags(meta: dict) -> dict[str, dict]:
    """{sequence column: voicing flag} from the store metadata's extractors. Stores written before
    extractors recorded `voicing` get it from the extractor's declared voicing feature and the
    stored feature names (shortterm with f0)."""
    from albsent.features import EXTRACTORS
    from albsent.features.base import voicing_flag

    out = {}
    for name, ext in (meta.get("extractors") or {}).items():
        flag = ext.get("voicing")
        if flag is None and name in EXTRACTORS and ext.get("feature_names"):
            flag = voicing_flag(EXTRACTORS[name], list(ext["feature_names"]))
        if flag is None:
            continue
        for col, shape in (ext.get("columns") or {}).items():
            if shape and shape[0] is None and len(shape) == 2 and shape[1] == len(ext.get("feature_names") or []):
                out[col] = dict(flag)
    return out


def _stats(p: Part, info: dict) -> tuple[str, ...]:
    """The statistics part `p` computes, given its column's info (rich's vmean, vstd need a voicing flag)."""
    return tuple(s for s in p.stats or () if s not in p.optional or "voicing" in info)


def _feature_of(column: str) -> str:
    """mfcc_mean -> mfcc; any other column is its own feature (ssl_hubert_l9 -> ssl_hubert_l9)."""
    c = parse_column(column)
    return c.group if c.kind == "pooled" else column


def _missing(spec: FeatureSpec, p: Part, info: dict[str, dict], store: str) -> StoreError:
    cols = ", ".join(sorted(info)) or "none"
    if p.stats is not None:
        return StoreError(
            f"{store}: feature spec {spec.text!r} pools {','.join(p.stats)} "
            f"from the frame sequence column {p.column!r}, "
            f"which the store lacks (extract {p.column!r} with sequences: true); its feature columns: {cols}")
    name = _feature_of(p.column)
    have = [s for s in STORED_STATS if pooled_column(name, s) in info]
    seq = name in info and info[name]["shape"][0] is None
    what = f"stored statistics of {name!r}: {', '.join(have) or 'none'}"
    if seq:
        pooled = RICH[2:] + (VOICED if "voicing" in info[name] else ())
        what += f"; pooled from its frame sequence: {', '.join(pooled)}, pNN"
    return StoreError(
        f"{store}: feature spec {spec.text!r} needs column {p.column!r}, which the store lacks; {what}. "
        f"Its feature columns: {cols}. " + ("Ask for those statistics, or extract" if seq else "Extract")
        + " the feature first (albsent extract --features ...)")


def resolve(spec: FeatureSpec, info: dict[str, dict], store: str = "the store") -> dict[str, dict]:
    """Check that `spec` fits columns `info` (from `column_info`); return the info of its columns."""
    for p in spec.parts:
        if p.column not in info:
            raise _missing(spec, p, info, store)
    for p in spec.parts:
        _check_part(spec, p, info[p.column], store)
    return {c: info[c] for c in spec.columns}


def _check_part(spec: FeatureSpec, p: Part, col: dict, store: str) -> None:
    """One part against its column's info ({"shape": ..., "voicing"?: ...})."""
    shape = col["shape"]
    want_seq = spec.kind == "sequence" or p.stats is not None
    if (shape[0] is None) != want_seq:
        need = "frame sequence" if want_seq else "pooled vector"
        raise StoreError(f"{store}: column {p.column!r} has shape {shape}, "
                         f"not a {need} as spec {spec.text!r} needs")
    if spec.kind == "layers" and len(shape) != 2:
        raise StoreError(f"{store}: column {p.column!r} has shape {shape}; ':all' needs (layers, hidden)")
    if p.layers is not None:
        if len(shape) != 2:
            raise StoreError(f"{store}: column {p.column!r} has shape {shape}; "
                             "layer selection needs (layers, hidden)")
        bad = [v for v in p.layers if v >= shape[0]]
        if bad:
            raise ConfigError(f"feature spec {spec.text!r}: layer(s) {bad} out of range; "
                              f"{p.column} has layers 0..{shape[0] - 1}")
    if p.stats is not None:
        _check_stats(spec, p, col, store)


def _check_stats(spec: FeatureSpec, p: Part, col: dict, store: str) -> None:
    shape = col["shape"]
    if len(shape) != 2:
        raise StoreError(f"{store}: column {p.column!r} has shape {shape}; "
                         "pooling statistics needs (frames, dim)")
    wanted_voiced = [s for s in p.stats if s in VOICED and s not in p.optional]
    if wanted_voiced and "voicing" not in col:
        raise ConfigError(
            f"feature spec {spec.text!r}: {', '.join(wanted_voiced)} need a voicing flag, "
            f"and {p.column!r} has none "
            "in this store (voicing flags: shortterm with f0 on, egemaps, compare); use e.g. "
            f"{p.column}.rich, which leaves them out")


def assemble(spec: FeatureSpec, cols: dict[str, list[np.ndarray]], info: dict[str, dict]):
    """Per-row arrays of each column (as stored or as an extractor returns them) -> model input.

    pooled: (rows, dim) float32; layers: (rows, layers, hidden) float32;
    sequence: list of (frames, dim) float32. Values are first cast to the stored dtype, so
    freshly extracted features equal what the store holds; statistics of a frame sequence are
    then pooled from those values (pooling.pool_rows), at load time and at predict time alike."""
    def rows(col: str) -> list[np.ndarray]:
        dt = np.dtype(info[col]["dtype"])
        return [np.asarray(v).astype(dt, copy=False).astype(np.float32) for v in cols[col]]

    if spec.kind == "sequence":
        per_part = [rows(p.column) for p in spec.parts]
        out = []
        for i, frames in enumerate(zip(*per_part)):
            lengths = {f.shape[0] for f in frames}
            if len(lengths) > 1:
                raise StoreError(f"row {i}: columns {spec.columns} have different frame counts {sorted(lengths)}; "
                                 "only features with the same frame shift can be concatenated per frame")
            out.append(np.concatenate([f.reshape(f.shape[0], -1) for f in frames], axis=1))
        return out
    if spec.kind == "layers":
        return np.stack(rows(spec.parts[0].column)).astype(np.float32)
    blocks = []
    seqs: dict[str, list[np.ndarray]] = {}
    for p in spec.parts:
        if p.stats is not None:
            blocks.append(_pooled_stats(p, seqs.setdefault(p.column, rows(p.column)), info[p.column]))
            continue
        arr = np.stack(rows(p.column))  # (rows, *shape)
        if p.layers is not None:
            arr = arr[:, list(p.layers), :]
        blocks.append(arr.reshape(arr.shape[0], -1))
    return np.concatenate(blocks, axis=1).astype(np.float32)


def _pooled_stats(p: Part, seqs: list[np.ndarray], info: dict) -> np.ndarray:
    """Statistics of part p over each row's frames: (rows, len(stats) * dim), stat-major."""
    stats = _stats(p, info)
    voiced = None
    if any(s in VOICED for s in stats):
        flag = info.get("voicing")
        if flag is None:
            raise ConfigError(f"{p.column!r} has no voicing flag; "
                              f"{', '.join(s for s in stats if s in VOICED)} need one")
        k, thr = int(flag["index"]), float(flag["threshold"])
        voiced = [f[:, k] > thr for f in seqs]
    got = pool_rows(seqs, stats, voiced)
    dim = int(info["shape"][1])
    return np.concatenate([got[s].reshape(len(seqs), dim) for s in stats], axis=1)
