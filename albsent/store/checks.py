"""What `albsent verify` checks a store's metadata and parts against, without trusting either.

- `meta_faults(meta)`: whether a metadata dict (`_albsent.json`, or a part's embedded copy) agrees
  with itself: its `config_hash` is the hash of its `config`, each feature group's hash and config
  are those of the config's section, and each group's columns are what that config gives. An
  edited hash, config value or column shape is found here, so the metadata (not the parts) is
  blamed for it. What columns a config gives is the extractors' knowledge: the store imports no
  albsent.features; albsent.features.config installs its rule here (`use_column_rule`) when
  imported, and without one the recorded shapes alone are judged.
- `implied_types(meta)`: the Arrow type of every column a part written with `meta` holds, by
  name. Column order is not identity (the metadata's JSON is written with sorted keys); a part is
  judged against this, never against the other parts.
- `statistics_faults(path, fs, table)`: Parquet column statistics (footer min / max / null count)
  that do not bound the values they describe. Readers (pyarrow filters, duckdb, polars) skip row
  groups by them, so a wrong one silently drops rows; the footer has no checksum, so only
  recomputing them from the (checksummed) values can tell.
- `unexpected_entries(store)`: files and folders in the store folder that pandas, pyarrow and
  duckdb would read as rows but that are not albsent parts.
"""

from __future__ import annotations

from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from albsent.config import stable_hash
from albsent.store.arrow import arrow_type
from albsent.store.schema import AUGMENT_FIELDS, BASE_FIELDS, parse_column

REQUIRED = ("config", "config_hash", "extractors", "extra_columns")


def meta_faults(meta) -> list[str]:
    """What is wrong with a store metadata dict on its own terms (empty: consistent)."""
    if not isinstance(meta, dict):
        return [f"not a JSON object ({type(meta).__name__})"]
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        return [f"no {', '.join(missing)}"]
    config, extractors = meta["config"], meta["extractors"]
    if not isinstance(config, dict) or not isinstance(extractors, dict) or not isinstance(meta["extra_columns"], list):
        return ["config, extractors or extra_columns has the wrong type"]
    faults = []
    if stable_hash(config) != meta["config_hash"]:
        faults.append(f"config_hash {meta['config_hash']!r} is not the hash of its config ({stable_hash(config)!r})")
    if sorted(extractors) != sorted(config.get("features") or []):
        faults.append(f"extractors {sorted(extractors)} differ from config.features {config.get('features')}")
    for name, ext in extractors.items():
        faults += _extractor_faults(name, ext, config.get(name))
    return faults or _column_faults(config, extractors)


def _extractor_faults(name: str, ext, section) -> list[str]:
    """extractors.NAME against config.NAME (its section of the extract config)."""
    if not isinstance(ext, dict) or not isinstance(ext.get("columns"), dict):
        return [f"extractors.{name} has no columns"]
    faults = []
    if "config_hash" in ext and ext["config_hash"] != stable_hash(section):
        faults.append(f"extractors.{name}.config_hash is not the hash of config.{name}")
    own = ext.get("config")
    if isinstance(own, dict) and isinstance(section, dict):
        changed = sorted(k for k, v in section.items() if k in own and own[k] != v)
        if changed:
            faults.append(f"extractors.{name}.config differs from config.{name} in {changed}")
    return faults


def _column_faults(config: dict, extractors: dict) -> list[str]:
    """Recorded columns that do not follow from the config (checked once the rest is consistent)."""
    built = _built_columns(config)
    if built is None:
        return []
    faults = []
    for name, ext in extractors.items():
        have = {c: _shape(s) for c, s in ext["columns"].items()}
        want = {c: shape for c, (shape, _) in built.get(name, {}).items()}
        if name in built and have != want:
            diff = sorted(c for c in set(have) | set(want) if have.get(c) != want.get(c))
            faults.append(f"extractors.{name}.columns do not follow from its config ({', '.join(diff)}: "
                          f"{[have.get(c) for c in diff]} recorded, {[want.get(c) for c in diff]} from the config)")
    return faults


def _shape(s) -> tuple:
    return tuple(None if d is None else int(d) for d in s)


# A stored config -> {group: {column: (shape, dtype)}} its extractors write, or None when they cannot
# be built here (e.g. an SSL model that is not on this machine). Installed by albsent.features.config.
ColumnRule = Callable[[dict], "dict[str, dict[str, tuple]] | None"]
_column_rule: list[ColumnRule] = []


def use_column_rule(rule: ColumnRule) -> None:
    """Install the rule that says which columns a stored config gives (albsent.features.config does)."""
    _column_rule[:] = [rule]


def _built_columns(config: dict) -> dict[str, dict[str, tuple]] | None:
    """The installed column rule's answer for `config`; None (judge the recorded shapes alone) without one."""
    return _column_rule[0](config) if _column_rule else None


def implied_types(meta: dict) -> dict[str, pa.DataType]:
    """{column: Arrow type} of a part written with `meta`. Shapes come from the metadata; the
    float width from the extractors its config builds, else from the rule they follow (pooled
    statistics float32, frame sequences the store's sequence_dtype)."""
    types = {f.name: f.type for f in BASE_FIELDS}
    if (meta["config"].get("augment") or {}).get("copies"):
        types.update({f.name: f.type for f in AUGMENT_FIELDS})
    types.update({c: pa.string() for c in meta.get("extra_columns", [])})
    built = _built_columns(meta["config"]) or {}
    seq_dtype = meta["config"].get("sequence_dtype", "float16")
    for name, ext in meta["extractors"].items():
        for col, shape in ext["columns"].items():
            shape = _shape(shape)
            dtype = (built.get(name, {}).get(col) or (None, None))[1]
            if dtype is None:
                dtype = "float32" if parse_column(col).kind == "pooled" else seq_dtype
            types[col] = arrow_type(shape, dtype)
    return types


def type_faults(schema: pa.Schema, expected: dict[str, pa.DataType]) -> list[str]:
    """Columns missing, extra, or of another type than `expected` (by name; order ignored)."""
    have = {f.name: f.type for f in schema}
    faults = []
    missing = [c for c in expected if c not in have]
    extra = [c for c in have if c not in expected]
    if missing:
        faults.append(f"no column(s) {missing}")
    if extra:
        faults.append(f"column(s) {extra} the metadata does not list")
    wrong = [f"{c}: {have[c]} (expected {t})" for c, t in expected.items() if c in have and have[c] != t]
    if wrong:
        faults.append("column type(s) differ from the metadata's: " + "; ".join(wrong))
    return faults


def statistics_faults(path: str, fs: pafs.FileSystem, table: pa.Table) -> list[str]:
    """Column chunks whose footer statistics do not describe their values (min above the
    smallest value, max below the largest, or a wrong null count)."""
    with fs.open_input_file(path) as fh:
        md = pq.ParquetFile(fh).metadata
    faults, start = [], 0
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        rows = table.slice(start, rg.num_rows)
        start += rg.num_rows
        for j in range(rg.num_columns):
            chunk = rg.column(j)
            name, stats = chunk.path_in_schema, chunk.statistics
            if stats is None or "." in name or name not in rows.column_names:
                continue
            col = rows.column(name)
            if stats.null_count is not None and stats.has_null_count and stats.null_count != col.null_count:
                faults.append(f"{name} (row group {g}): null count {stats.null_count}, {col.null_count} in the data")
            if not stats.has_min_max or col.null_count == len(col):
                continue
            mm = pc.min_max(col).as_py()
            if _above(stats.min, mm["min"]) or _above(mm["max"], stats.max):
                faults.append(f"{name} (row group {g}): min/max {stats.min!r}/{stats.max!r}, "
                              f"{mm['min']!r}/{mm['max']!r} in the data")
    return faults


def _above(a, b) -> bool:
    """a > b, for statistics of any comparable type (bytes vs str compared as text)."""
    if isinstance(a, bytes) and isinstance(b, str):
        a = a.decode(errors="replace")
    if isinstance(b, bytes) and isinstance(a, str):
        b = b.decode(errors="replace")
    try:
        return a > b
    except TypeError:
        return a != b


def unexpected_entries(fs: pafs.FileSystem, root: str) -> list[str]:
    """Names in the store folder that readers of the folder would take for data but that are not
    parts: anything not named part-*.parquet, except the `_` and `.` names readers skip."""
    try:
        infos = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    except (NotADirectoryError, OSError):
        return []
    out = []
    for i in infos:
        name = i.base_name
        if name.startswith(("_", ".")):
            continue
        if i.type == pafs.FileType.File and name.startswith("part-") and name.endswith(".parquet"):
            continue
        out.append(name + ("/" if i.type == pafs.FileType.Directory else ""))
    return sorted(out)
