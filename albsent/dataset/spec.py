"""Feature SPEC: which store columns a model reads, and how they become arrays.

Grammar (whitespace ignored)::

    SPEC   := POOLED ('+' POOLED)*            pooled vectors, concatenated       -> X: (rows, dim)
            | FRAME ('+' FRAME)* ':seq'       frame sequences, concatenated per frame
                                                                                 -> X: list of (frames, dim)
            | 'ssl:' ALIAS ':all'             every SSL layer, for a learned softmax-weighted
                                              layer sum                          -> X: (rows, layers, hidden)
            | 'ssl:' ALIAS ':seq:' LAYER      one SSL layer's frame sequence     -> X: list of (frames, hidden)
    POOLED := NAME                            columns NAME_mean + NAME_std (e.g. mfcc, shortterm)
            | NAME '.mean' | NAME '.std'      only one of the two
            | 'ssl:' ALIAS ':' LAYER (',' LAYER)*   layers of column ssl_ALIAS_mean (layers, hidden),
                                              concatenated
    FRAME  := NAME                            the sequence column NAME (frames, dim)

Examples: ``mfcc``, ``mfcc+shortterm``, ``mfcc:seq``, ``mfcc+shortterm:seq``, ``ssl:hubert:9``,
``ssl:hubert:6,9,12``, ``ssl:hubert:all``, ``ssl:hubert:seq:9``, ``mfcc+ssl:hubert:12``.

`parse` checks syntax only; `resolve` checks the columns against a store's schema and returns
their shapes and dtypes, which travel with a trained model so `predict` can rebuild the same
arrays from freshly extracted features (`assemble`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from albsent.errors import ConfigError, StoreError

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
KINDS = ("pooled", "layers", "sequence")


@dataclass(frozen=True)
class Part:
    column: str
    layers: tuple[int, ...] | None = None  # pooled SSL: rows of the (layers, hidden) value to take


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
        f"invalid feature spec {text!r}: {why}. Expected e.g. mfcc, mfcc+shortterm, mfcc:seq, "
        "ssl:hubert:9, ssl:hubert:6,9,12, ssl:hubert:all or ssl:hubert:seq:9 (see `albsent train --help`)"
    )


def _layers(text: str, raw: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in raw.split(","))
    except ValueError:
        raise _bad(text, f"layer list {raw!r} is not comma-separated integers") from None
    if any(v < 0 for v in out) or len(set(out)) != len(out):
        raise _bad(text, f"layer list {raw!r} must hold distinct non-negative integers")
    return out


def parse(text: str) -> FeatureSpec:
    spec = "".join(str(text).split())
    if not spec:
        raise _bad(text, "it is empty")
    if spec.startswith("ssl:") and "+" not in spec:
        bits = spec.split(":")
        if len(bits) >= 3 and not NAME.match(bits[1]):
            raise _bad(text, f"SSL alias {bits[1]!r} is not a name")
        if len(bits) == 3 and bits[2] == "all":
            return FeatureSpec(spec, "layers", (Part(f"ssl_{bits[1]}_mean"),))
        if len(bits) == 4 and bits[2] == "seq":
            layers = _layers(spec, bits[3])
            if len(layers) != 1:
                raise _bad(text, "a frame-sequence spec takes exactly one layer")
            layer = layers[0]
            return FeatureSpec(spec, "sequence", (Part(f"ssl_{bits[1]}_l{layer}"),))
    seq = spec.endswith(":seq")
    body = spec[: -len(":seq")] if seq else spec
    parts: list[Part] = []
    for item in body.split("+"):
        if item.startswith("ssl:"):
            bits = item.split(":")
            if seq or len(bits) != 3 or not NAME.match(bits[1]) or bits[2] in ("all", "seq"):
                raise _bad(text, f"{item!r}: an SSL part inside a '+' list must be ssl:ALIAS:LAYERS")
            parts.append(Part(f"ssl_{bits[1]}_mean", _layers(text, bits[2])))
            continue
        name, _, stat = item.partition(".")
        if not NAME.match(name) or (stat and (seq or stat not in ("mean", "std"))):
            raise _bad(text, f"{item!r} is not a feature name (optionally .mean or .std)")
        if seq:
            parts.append(Part(name))
        else:
            parts += [Part(f"{name}_{s}") for s in ((stat,) if stat else ("mean", "std"))]
    if len(set(parts)) != len(parts):
        raise _bad(text, "a part is repeated")
    return FeatureSpec(spec, "sequence" if seq else "pooled", tuple(parts))


def column_info(schema: pa.Schema) -> dict[str, dict]:
    """{column: {"shape": [None | int, ...], "dtype": "float16" | "float32"}} for array columns."""
    out = {}
    for f in schema:
        t, shape = f.type, []
        while pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_large_list(t):
            shape.append(t.list_size if pa.types.is_fixed_size_list(t) else None)
            t = t.value_type
        if shape and pa.types.is_floating(t):
            out[f.name] = {"shape": shape, "dtype": str(t.to_pandas_dtype().__name__)}
    return out


def resolve(spec: FeatureSpec, info: dict[str, dict], store: str = "the store") -> dict[str, dict]:
    """Check that `spec` fits columns `info` (from `column_info`); return the info of its columns."""
    missing = [c for c in spec.columns if c not in info]
    if missing:
        hint = ", ".join(sorted(info))
        raise StoreError(
            f"{store}: feature spec {spec.text!r} needs column(s) {missing}, which the store lacks; "
            f"its feature columns: {hint}. Extract them first (albsent extract --features ...)"
        )
    for p in spec.parts:
        shape = info[p.column]["shape"]
        want_seq = spec.kind == "sequence"
        if (shape[0] is None) != want_seq:
            raise StoreError(f"{store}: column {p.column!r} has shape {shape}, not a {'frame sequence' if want_seq else 'pooled vector'} as spec {spec.text!r} needs")
        if spec.kind == "layers" and len(shape) != 2:
            raise StoreError(f"{store}: column {p.column!r} has shape {shape}; ':all' needs (layers, hidden)")
        if p.layers is not None:
            if len(shape) != 2:
                raise StoreError(f"{store}: column {p.column!r} has shape {shape}; layer selection needs (layers, hidden)")
            bad = [v for v in p.layers if v >= shape[0]]
            if bad:
                raise ConfigError(f"feature spec {spec.text!r}: layer(s) {bad} out of range; {p.column} has layers 0..{shape[0] - 1}")
    return {c: info[c] for c in spec.columns}


def assemble(spec: FeatureSpec, cols: dict[str, list[np.ndarray]], info: dict[str, dict]):
    """Per-row arrays of each column (as stored or as an extractor returns them) -> model input.

    pooled: (rows, dim) float32; layers: (rows, layers, hidden) float32;
    sequence: list of (frames, dim) float32. Values are first cast to the stored dtype, so
    freshly extracted features equal what the store holds."""
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
    for p in spec.parts:
        arr = np.stack(rows(p.column))  # (rows, *shape)
        if p.layers is not None:
            arr = arr[:, list(p.layers), :]
        blocks.append(arr.reshape(arr.shape[0], -1))
    return np.concatenate(blocks, axis=1).astype(np.float32)
