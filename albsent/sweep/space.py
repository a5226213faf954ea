"""Search spaces: YAML -> a define-by-run function for Optuna, conditional parameters included.

One entry per searched config key (dotted keys reach nested fields, e.g. `split.folds`,
`window.length`, `probe.attach`), sampled in the order written::

    lr:          {loguniform: [1.0e-5, 1.0e-2]}
    dropout:     {uniform: [0.0, 0.5]}
    hidden_size: {choice: [64, 128, 256], when: {model: [mlp, bilstm_attn]}}
    epochs:      {int: [20, 100], step: 10}          # also {logint: [lo, hi]}
    model:       {choice: [mlp, bilstm_attn, sklearn_logreg]}
    features:    {choice: [mfcc, "mfcc:seq", "ssl:{ssl_model}:{ssl_layer}"]}
    ssl_model:   {choice: [hubert, wavlm], when: {features: "ssl:{ssl_model}:{ssl_layer}"}}
    ssl_layer:   {choice: [3, 6, 9, 12, all], when: {features: "ssl:{ssl_model}:{ssl_layer}"}}

Conditions: `when: {KEY: value | [values]}` samples the key only when every named key has
one of the values (else the base config's value is kept). A choice may be *filtered* by what
was sampled before it (a model's attachment points, the feature kinds a classifier reads, the
layers an SSL model has): a `Filter` returns the valid subset, and the Optuna parameter is then
named `KEY[context]`, because Optuna needs one fixed choice list per parameter name.
`{name}` placeholders in string values are filled from other sampled keys when resolving
(`PLACEHOLDER`, the one definition: a name may be dotted, `{window.length}`); keys that only
serve placeholders (no '.' and not a config field) never reach the config. A leaf: it imports
no other albsent.sweep module (albsent.sweep.config.build_space puts a sweep's space together:
its kind's filters and the key checks).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from albsent.errors import ConfigError

DISTRIBUTIONS = ("choice", "uniform", "loguniform", "int", "logint")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def placeholders(text) -> list[str]:
    """'ssl:{ssl_model}:{ssl_layer}' -> ['ssl_model', 'ssl_layer'] (nothing for a non-string)."""
    return PLACEHOLDER.findall(text) if isinstance(text, str) else []


# A filter gets (key, declared choices, values sampled so far) and returns (valid choices, context).
Filter = Callable[[str, list, dict], "tuple[list, str]"]


@dataclass(frozen=True)
class Param:
    key: str
    dist: str  # one of DISTRIBUTIONS
    values: tuple  # choice: the choices; others: (low, high)
    step: float | int | None = None
    when: tuple = ()  # ((key, (allowed values...)), ...)

    @property
    def log(self) -> bool:
        return self.dist in ("loguniform", "logint")

    def active(self, sampled: dict) -> bool:
        return all(k in sampled and sampled[k] in allowed for k, allowed in self.when)


def _check_range(where: str, dist: str, values: Any, step: Any) -> None:
    """A range distribution's [low, high] and optional step."""
    ok = (isinstance(values, list) and len(values) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values))
    if not ok or values[0] >= values[1]:
        raise ConfigError(f"{where}: '{dist}' must be [low, high] finite numbers with low < high. "
                          f"Got {values!r} instead.")
    if dist in ("loguniform", "logint") and values[0] <= 0:
        raise ConfigError(f"{where}: '{dist}' needs low > 0. Got {values!r} instead.")
    if dist in ("int", "logint") and not all(isinstance(v, int) for v in values):
        raise ConfigError(f"{where}: '{dist}' bounds must be ints. Got {values!r} instead.")
    if step is not None and not (isinstance(step, (int, float)) and not isinstance(step, bool)
                                 and math.isfinite(step) and step > 0):
        raise ConfigError(f"{where}: 'step' must be a finite number > 0. Got {step!r} instead.")


def parse_param(key: str, spec: Any) -> Param:
    where = f"sweep space '{key}'"
    if not isinstance(spec, dict):
        spec = {"choice": [spec]}  # a constant
    spec = dict(spec)
    when_raw = spec.pop("when", {}) or {}
    step = spec.pop("step", None)
    dists = [k for k in spec if k in DISTRIBUTIONS]
    unknown = sorted(set(spec) - set(DISTRIBUTIONS))
    if unknown or len(dists) != 1:
        raise ConfigError(f"{where}: expected exactly one of {', '.join(DISTRIBUTIONS)} "
                          f"(plus optional 'when', 'step'); got {sorted(spec) or 'nothing'}")
    dist = dists[0]
    values = spec[dist]
    if dist == "choice":
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: 'choice' must be a non-empty list. Got {values!r} instead.")
        if len({repr(v) for v in values}) != len(values):
            raise ConfigError(f"{where}: 'choice' lists a value twice: {values!r}")
    else:
        _check_range(where, dist, values, step)
    if not isinstance(when_raw, dict):
        raise ConfigError(f"{where}: 'when' must map keys to a value or list of values. Got {when_raw!r} instead.")
    when = tuple((k, tuple(v) if isinstance(v, list) else (v,)) for k, v in when_raw.items())
    return Param(key, dist, tuple(values), step, when)


def parse_space(raw: dict | None) -> list[Param]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError("sweep 'space' must be a non-empty mapping of config keys to distributions "
                          "(see configs/sweeps/)")
    params = [parse_param(str(k), v) for k, v in raw.items()]
    seen: set[str] = set()
    for p in params:
        for k, _ in p.when:
            if k not in seen:
                raise ConfigError(f"sweep space '{p.key}': 'when' refers to '{k}', "
                                  "which must be a space key listed before it")
        seen.add(p.key)
    return params


def short_hash(values) -> str:
    return hashlib.sha1(repr(list(values)).encode()).hexdigest()[:6]


@dataclass
class SearchSpace:
    """Picklable define-by-run space: `space(optuna_trial) -> None` samples every active key;
    `resolve(params)` turns the sampled Optuna parameters into config overrides."""

    params: list[Param]
    filters: dict[str, Filter] = field(default_factory=dict)  # key -> filter (must be picklable)
    placeholders_only: tuple[str, ...] = ()  # keys used only to fill {placeholders}

    def __call__(self, trial) -> None:
        self.sample(trial)

    def sample(self, trial) -> dict:
        """Sample with an Optuna trial (or anything with suggest_*); returns {key: value} of active keys."""
        out: dict = {}
        for p in self.params:
            if not p.active(out):
                continue
            name, choices = p.key, list(p.values)
            if p.dist == "choice" and p.key in self.filters:
                choices, ctx = self.filters[p.key](p.key, choices, out)
                if not choices:
                    raise ConfigError(f"sweep space '{p.key}': no valid choice given {out} (declared {list(p.values)})")
                if ctx:
                    name = f"{p.key}[{ctx}]"
            if p.dist == "choice":
                out[p.key] = trial.suggest_categorical(name, choices) if len(choices) > 1 else choices[0]
            elif p.dist in ("uniform", "loguniform"):
                out[p.key] = trial.suggest_float(name, float(p.values[0]), float(p.values[1]), log=p.log,
                                                 step=None if p.log else p.step)
            else:
                out[p.key] = trial.suggest_int(name, p.values[0], p.values[1], log=p.log, step=int(p.step or 1))
        return out

    def from_optuna(self, params: dict) -> dict:
        """Optuna parameter names (`KEY[ctx]`) -> {KEY: value}; single-choice keys are re-derived."""
        return self.sample(_Replay(params))

    def resolve(self, params: dict) -> dict:
        """Sampled {KEY: value} (Optuna names accepted) -> nested config overrides, placeholders filled."""
        sampled = self.from_optuna(params)
        flat = {k: fill(v, sampled) for k, v in sampled.items() if k not in self.placeholders_only}
        out: dict = {}
        for key, value in flat.items():
            node = out
            parts = key.split(".")
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        return out

    def enumerate(self, keys: tuple[str, ...], limit: int = 10000) -> list[dict]:
        """Every combination of the (choice-only) keys `keys` and their conditions, e.g. all feature
        specs a space can produce. Numeric keys among them are enumerated when integer."""
        combos: list[dict] = [{}]
        wanted = set(keys) | self._deps(keys)
        for p in self.params:
            if p.key not in wanted:
                continue
            new = []
            for c in combos:
                if not p.active(c):
                    new.append(c)
                    continue
                choices = list(p.values)
                if p.dist == "choice" and p.key in self.filters:
                    choices, _ = self.filters[p.key](p.key, choices, c)
                elif p.dist in ("int", "logint"):
                    choices = list(range(p.values[0], p.values[1] + 1, int(p.step or 1)))
                elif p.dist != "choice":
                    raise ConfigError(f"sweep space '{p.key}': a continuous range cannot decide which data to load; "
                                      "use 'choice'")
                new += [{**c, p.key: v} for v in choices]
            combos = new
            if len(combos) > limit:
                raise ConfigError(f"sweep space: more than {limit} combinations of {keys}; narrow the choices")
        return combos

    def values(self, key: str, default) -> list:
        """Every value `key` can take (placeholders filled; `default` where it is not sampled), sorted."""
        if not any(p.key == key for p in self.params):
            return [default]
        return sorted({fill(c.get(key, default), c) for c in self.enumerate((key,))}, key=str)

    def _deps(self, keys) -> set[str]:
        """Keys that `keys` depend on through `when` or placeholders (transitively)."""
        deps, todo = set(), list(keys)
        by_key = {p.key: p for p in self.params}
        while todo:
            p = by_key.get(todo.pop())
            if p is None:
                continue
            refs = [k for k, _ in p.when] + [m for v in p.values for m in placeholders(v)]
            refs += list(getattr(self.filters.get(p.key), "deps", ()))  # what a filter reads
            for r in refs:
                if r not in deps:
                    deps.add(r)
                    todo.append(r)
        return deps


class _Replay:
    """Stands in for an Optuna trial: returns recorded values (for `resolve`)."""

    def __init__(self, params: dict):
        self.params = params

    def _get(self, name, default=None):
        if name in self.params:
            return self.params[name]
        if default is not None:
            return default
        raise ConfigError(f"sweep trial parameters lack '{name}' (have {sorted(self.params)}); was the space changed?")

    def suggest_categorical(self, name, choices):
        return self._get(name)

    def suggest_float(self, name, low, high, log=False, step=None):
        return float(self._get(name))

    def suggest_int(self, name, low, high, log=False, step=1):
        return int(self._get(name))


def fill(value, sampled: dict):
    """'ssl:{ssl_model}:{ssl_layer}' -> 'ssl:hubert:9' from the sampled keys."""
    if not isinstance(value, str) or "{" not in value:
        return value

    def sub(m):
        if m.group(1) not in sampled:
            raise ConfigError(f"sweep space: placeholder {{{m.group(1)}}} in {value!r} is not a sampled key "
                              f"(active keys: {sorted(sampled)}); give it a 'when' matching this value")
        return str(sampled[m.group(1)])

    return PLACEHOLDER.sub(sub, value)
