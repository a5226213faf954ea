"""Config dataclasses from YAML with typed `--set key=value` overrides.

Every config is a dataclass; `build(cls, data)` constructs one from a nested dict,
rejecting unknown keys (listing the valid ones) and values of the wrong type.
Overrides are parsed with `yaml.safe_load`, never `eval`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from albsent.errors import ConfigError

T = TypeVar("T")
_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")  # 1e-3, 2.5E+4: numbers YAML 1.1 leaves as text


def require(ok: bool, owner: object, field: str, value: Any, expected: str) -> None:
    """Raise ConfigError in the scikit-learn style when `ok` is false."""
    if not ok:
        name = owner if isinstance(owner, str) else type(owner).__name__
        raise ConfigError(f"The '{field}' parameter of {name} must be {expected}. Got {value!r} instead.")


# numpy's and scikit-learn's seeds must lie in [0, 2**32 - 1]; albsent derives seeds such as
# seed + 1 + fold from the configured one, so a configured seed keeps below 2**31 to leave room.
SEED_MAX = 2**31 - 1


def require_seed(owner: object, seed: Any, field: str = "seed") -> None:
    require(isinstance(seed, int) and 0 <= seed <= SEED_MAX, owner, field, seed, f"an int in [0, {SEED_MAX}]")


def _convert(tp: Any, value: Any, where: str) -> Any:
    """`value` read from YAML or --set, checked against (and converted to) the field type `tp`;
    `where` is the key path the error names."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        return _convert_union(tp, value, where)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"'{where}' must be one of {list(get_args(tp))}. Got {value!r} instead.")
        return value
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, where)
    if origin in (list, tuple):
        return _convert_list(tp, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"'{where}' must be a mapping. Got {value!r} instead.")
        kt, vt = get_args(tp) or (Any, Any)
        return {_convert(kt, k, where): _convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    return _convert_scalar(tp, value, where)


def _convert_union(tp: Any, value: Any, where: str) -> Any:
    args = get_args(tp)
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in (a for a in args if a is not type(None)):
        try:
            return _convert(arg, value, where)
        except ConfigError as exc:
            errors.append(str(exc))
    raise ConfigError(errors[0] if len(errors) == 1 else f"'{where}': {value!r} matches none of {tp}")


def _convert_dataclass(tp: Any, value: Any, where: str) -> Any:
    if isinstance(value, tp):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"'{where}' must be a mapping of {tp.__name__} fields. Got {value!r} instead.")
    return build(tp, value, prefix=f"{where}.")


def _convert_list(tp: Any, value: Any, where: str) -> list:
    if isinstance(value, str):  # `--set features=mfcc,shortterm`
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"'{where}' must be a list. Got {value!r} instead.")
    item = get_args(tp)[0] if get_args(tp) else Any
    return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]


# scalar field type -> (accepts(value), what the error says it must be); bools are not numbers here
_SCALARS = {
    bool: (lambda v: isinstance(v, bool), "true or false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an int"),
    float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    str: (lambda v: isinstance(v, str), "a string"),
}


def _convert_scalar(tp: Any, value: Any, where: str) -> Any:
    if tp not in _SCALARS:
        return value
    if tp is float and isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
        value = float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string; it is a number
    accepts, expected = _SCALARS[tp]
    if not accepts(value):
        raise ConfigError(f"'{where}' must be {expected}. Got {value!r} instead.")
    return float(value) if tp is float else value


def build(cls: type[T], data: dict | None = None, prefix: str = "") -> T:
    """Construct dataclass `cls` from a nested dict; unknown keys are an error."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        renamed = getattr(cls, "RENAMED", {})  # {old key: new key} of renamed fields
        moved = "".join(f"; {prefix + k} is now {prefix + renamed[k]}" for k in unknown if k in renamed)
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)}{moved}; "
            f"valid keys{' under ' + prefix.rstrip('.') if prefix else ''}: {', '.join(sorted(fields))}"
        )
    kwargs = {name: _convert(hints[name], value, prefix + name) for name, value in data.items()}
    return cls(**kwargs)


def parse_overrides(sets: list[str] | tuple[str, ...]) -> dict:
    """`["a.b=1", "c=[x, y]"]` -> `{"a": {"b": 1}, "c": ["x", "y"]}` (values parsed as YAML literals)."""
    out: dict = {}
    for item in sets:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return out


def merge(base: dict, extra: dict) -> dict:
    """Deep-merge `extra` into a copy of `base`."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def check_out_folder(out: str | Path, flag: str = "--out") -> None:
    """An output folder given as an existing file is an error before any work starts (URIs pass)."""
    if "://" not in str(out) and Path(out).is_file():
        raise ConfigError(f"{flag} {out} is a file; expected a folder to write into (a new or an empty one)")


EXTENDS = "extends"  # top-level key of a config file: the file(s) it starts from


def read_yaml(path: str | Path) -> dict:
    """A YAML config file as a dict, with its `extends:` files read first.

    `extends: FILE` (or a list of files, applied in order), relative to the including file's folder,
    names files whose keys this one deep-merges over: mappings merge key by key, anything else
    (lists included) is replaced. Files may extend files; a cycle is a ConfigError naming them."""
    return _read_yaml(Path(path), ())


def _read_yaml(path: Path, chain: tuple[Path, ...]) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}" + (f" (extended by {chain[-1]})" if chain else ""))
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:  # syntax errors, and tags safe_load refuses (e.g. !!python/object)
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{at}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")
    if EXTENDS not in data:
        return data
    raw = data.pop(EXTENDS)
    parents = [raw] if isinstance(raw, str) else raw
    if not isinstance(parents, list) or not all(isinstance(p, str) and p.strip() for p in parents):
        raise ConfigError(f"{path}: '{EXTENDS}' must be a file name or a list of file names (relative to "
                          f"{path.parent}). Got {raw!r} instead.")
    chain = (*chain, path.resolve())
    base: dict = {}
    for name in parents:
        parent = (path.parent / name).resolve()
        if parent in chain:
            loop = [*chain[chain.index(parent):], parent]
            raise ConfigError("config files extend each other in a cycle: " + " -> ".join(map(str, loop)))
        base = merge(base, _read_yaml(parent, chain))
    return merge(base, data)


def load(cls: type[T], path: str | Path | None = None, sets=(), extra: dict | None = None) -> T:
    """Config file, then `extra` (CLI flags), then `--set` overrides, in increasing precedence. A
    file's `tracking:` section is albsent.tracking's (where to log the run), not the stage's."""
    data = read_yaml(path) if path else {}
    data.pop("tracking", None)
    data = merge(data, extra or {})
    data = merge(data, parse_overrides(list(sets)))
    return build(cls, data)


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def stable_hash(data: Any) -> str:
    """sha256 of canonical JSON: the same config always has the same hash."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Human-readable differences between two nested dicts: `["mfcc.n_mfcc: 40 -> 20"]`."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += diff(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def to_yaml(config: Any) -> str:
    data = to_dict(config) if dataclasses.is_dataclass(config) else config
    return yaml.safe_dump(data, sort_keys=False)


def dump_yaml(config: Any, path: str | Path) -> None:
    Path(path).write_text(to_yaml(config))
