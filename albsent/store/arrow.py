"""numpy <-> plain Arrow types (fixed_size_list / list), no extension types, so pandas,
pyarrow and duckdb read the store without albsent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

DTYPES = {"float16": pa.float16(), "float32": pa.float32()}


def scalar(v):
    """A manifest or store value as Arrow wants it: None for every pandas 'missing' (None, NaN, NA)."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    return v


def arrow_type(shape: tuple[int | None, ...], dtype: str) -> pa.DataType:
    """(None, 40) float16 -> list<fixed_size_list<halffloat, 40>>; (13, 768) -> fsl<fsl<float, 768>, 13>."""
    t = DTYPES[dtype]
    for dim in reversed(shape):
        t = pa.list_(t) if dim is None else pa.list_(t, dim)
    return t


def to_arrow(values: list[np.ndarray], shape: tuple[int | None, ...], dtype: str) -> pa.Array:
    """Build one column from per-row arrays of `shape` (None = variable length, first axis only)."""
    np_dtype = np.dtype(dtype)
    fixed = shape[1:] if shape and shape[0] is None else shape
    flat = (np.concatenate([np.ascontiguousarray(v, dtype=np_dtype).reshape(-1) for v in values]) if values
            else np.zeros(0, np_dtype))
    arr: pa.Array = pa.array(flat, type=DTYPES[dtype])
    for dim in reversed(fixed):
        arr = pa.FixedSizeListArray.from_arrays(arr, dim)
    if shape and shape[0] is None:
        lengths = np.array([len(v) for v in values], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        arr = pa.ListArray.from_arrays(pa.array(offsets), arr)
    return arr


def _flat_values(col: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[int]]:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    dims = []
    while pa.types.is_fixed_size_list(arr.type):
        dims.append(arr.type.list_size)
        arr = arr.flatten()
    return arr.to_numpy(zero_copy_only=False), dims


def to_matrix(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed-shape column -> (rows, *shape) numpy array."""
    values, dims = _flat_values(col)
    return values.reshape(-1, *dims)


def to_sequences(col: pa.ChunkedArray | pa.Array) -> list[np.ndarray]:
    """A list<fixed_size_list> column -> list of (frames, *shape) arrays (views into one buffer)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    offsets = arr.offsets.to_numpy()
    values, dims = _flat_values(arr.values)
    values = values.reshape(-1, *dims)
    start = offsets[0]
    return [values[a - start : b - start] for a, b in zip(offsets[:-1], offsets[1:])]
