"""Augmented copies of a clip for training (`albsent extract --augment SPEC`).

A copy is the trimmed recording changed the way another recording of the same utterance could
differ: its speed (tempo and pitch together, as Kaldi's speed perturbation), its pitch, its
level and the noise around it. audiomentations does the signal work; this module only draws
each copy's parameters, seeded by (seed, utterance id, copy), so a rerun or another machine
gives the same copy, and records them (`params`) in the copy's store row.

    config = parse_spec("speed=0.9/1.1,pitch=2,gain=6,snr=10-20,copies=2")
    params = draw(config, "emodb/03a01Fa", copy=1)      # {"copy": 1, "speed": 1.1, "snr_db": 13.2, ...}
    y = apply(x, 16000, params)                          # (n',) float32; n' = n / speed

The copies are stored as rows beside their source (same utterance id and speaker,
`augment_of` = the source's id) and read only by `albsent train --augmented`, which puts them in
training parts next to their source and never in validation or test (albsent.dataset.data).
"""

from __future__ import annotations

import random
import re
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from albsent.config import require
from albsent.errors import ConfigError

TRANSFORMS = ("speed", "pitch_semitones", "gain_db", "snr_db")  # in the order they are applied


@dataclass
class AugmentConfig:
    copies: int = 0  # augmented copies per clip; 0: none
    seed: int = 0
    speed: list[float] = field(default_factory=list)  # one factor per copy from this list, e.g. [0.9, 1.1]
    pitch_semitones: float = 0.0  # shift drawn uniformly in [-x, x]; 0: off
    gain_db: float = 0.0  # level change drawn uniformly in [-x, x] dB; 0: off
    snr_db: list[float] = field(default_factory=list)  # white noise at an SNR drawn in [low, high] dB; []: off
    p: float = 0.5  # chance that each transform is applied to a copy (at least one always is)

    def __post_init__(self):
        require(0 <= self.copies <= 20, self, "copies", self.copies, "an int in [0, 20]")
        require(all(0.5 <= s <= 2.0 and s != 1.0 for s in self.speed), self, "speed", self.speed,
                "a list of factors in [0.5, 2], none equal to 1")
        require(0 <= self.pitch_semitones <= 12, self, "pitch_semitones", self.pitch_semitones,
                "a float in [0, 12] (0: off)")
        require(0 <= self.gain_db <= 40, self, "gain_db", self.gain_db, "a float in [0, 40] (0: off)")
        require(self.snr_db == [] or (len(self.snr_db) == 2 and -10 <= self.snr_db[0] <= self.snr_db[1] <= 80),
                self, "snr_db", self.snr_db, "[] (off) or [low, high] with -10 <= low <= high <= 80")
        require(0 < self.p <= 1, self, "p", self.p, "a float in (0, 1]")
        require(self.copies == 0 or self.enabled(), self, "copies", self.copies,
                "0 when no transform is set (speed, pitch_semitones, gain_db or snr_db)")

    def enabled(self) -> list[str]:
        """The transforms this config applies, in TRANSFORMS order."""
        on = {"speed": bool(self.speed), "pitch_semitones": self.pitch_semitones > 0, "gain_db": self.gain_db > 0,
              "snr_db": bool(self.snr_db)}
        return [t for t in TRANSFORMS if on[t]]


DEFAULT_SPEC = "speed=0.9/1.1,pitch=2,gain=6,snr=10-20,copies=1"
_RANGE = re.compile(r"^(-?[0-9.]+)(?:-(-?[0-9.]+))?$")  # 10-20, 15, -5-5
_KEYS = {"copies": "copies", "seed": "seed", "speed": "speed", "pitch": "pitch_semitones", "gain": "gain_db",
         "snr": "snr_db", "noise": "snr_db", "p": "p"}


def parse_spec(spec: str) -> AugmentConfig:
    """`--augment SPEC` -> AugmentConfig. SPEC: "default" (DEFAULT_SPEC) or comma-separated
    key=value with keys copies, seed, p, speed=A/B/.., pitch=SEMITONES, gain=DB, snr=LOW-HIGH
    (noise= is the same). Transforms not named are off; copies defaults to 1."""
    text = DEFAULT_SPEC if spec.strip() == "default" else spec
    values: dict = {"copies": 1}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in _KEYS:
            raise ConfigError(f"--augment: {item!r} is not KEY=VALUE with KEY one of {', '.join(_KEYS)} "
                              f"(e.g. {DEFAULT_SPEC!r}, or 'default')")
        name = _KEYS[key.strip()]
        try:
            if name == "speed":
                values[name] = [float(v) for v in value.split("/")]
            elif name == "snr_db":
                m = _RANGE.match(value.strip())
                if not m:
                    raise ValueError(value)
                values[name] = [float(m.group(1)), float(m.group(2) or m.group(1))]
            elif name in ("copies", "seed"):
                values[name] = int(value)
            else:
                values[name] = float(value)
        except ValueError:
            raise ConfigError(f"--augment: {key.strip()}={value!r} is not a number"
                              f"{' list like 0.9/1.1' if name == 'speed' else ''}"
                              f"{' range like 10-20' if name == 'snr_db' else ''}") from None
    return AugmentConfig(**values)


def draw(config: AugmentConfig, utterance_id: str, copy: int) -> dict:
    """The parameters of copy `copy` (1-based) of one clip: {"copy": k, transform: value, ...} with
    only the applied transforms. Deterministic in (config.seed, utterance_id, copy)."""
    rng = np.random.default_rng([config.seed, zlib.crc32(utterance_id.encode()), copy])
    names = config.enabled()
    chosen = [t for t in names if rng.random() < config.p]
    if not chosen:
        chosen = [names[int(rng.integers(len(names)))]]
    # every value is drawn, applied or not, so switching one transform off never shifts another's value
    drawn = {"speed": lambda: float(rng.choice(config.speed)),
             "pitch_semitones": lambda: float(rng.uniform(-config.pitch_semitones, config.pitch_semitones)),
             "gain_db": lambda: float(rng.uniform(-config.gain_db, config.gain_db)),
             "snr_db": lambda: float(rng.uniform(*config.snr_db))}
    out: dict = {"copy": copy}
    for t in names:
        value = drawn[t]()
        if t in chosen:
            out[t] = round(value, 4)
    out["noise_seed"] = int(rng.integers(2**31))
    return out


@contextmanager
def _seeded(seed: int):
    """Seed the global `random` and `np.random` states audiomentations draws from, and restore them."""
    py, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)


def require_installed() -> None:
    """A ConfigError naming the extra when audiomentations is missing (checked before extracting)."""
    try:
        import audiomentations  # noqa: F401
    except ImportError as exc:
        raise ConfigError("--augment needs audiomentations: pip install 'albsent[augment]'") from exc


def transforms(params: dict, sample_rate_hz: int) -> list:
    """audiomentations transforms (p=1, fixed values) that apply `params`."""
    require_installed()
    from audiomentations import AddGaussianSNR, Gain, PitchShift, Resample

    out = []
    if "speed" in params:  # resampled to sr / speed and played at sr: `speed` times faster, pitch with it
        rate = int(round(sample_rate_hz / params["speed"]))
        out.append(Resample(min_sample_rate=rate, max_sample_rate=rate, p=1.0))
    if "pitch_semitones" in params:
        s = params["pitch_semitones"]
        out.append(PitchShift(min_semitones=s, max_semitones=s, p=1.0))
    if "gain_db" in params:
        g = params["gain_db"]
        out.append(Gain(min_gain_db=g, max_gain_db=g, p=1.0))
    if "snr_db" in params:
        s = params["snr_db"]
        out.append(AddGaussianSNR(min_snr_db=s, max_snr_db=s, p=1.0))
    return out


def apply(samples: np.ndarray, sample_rate_hz: int, params: dict) -> np.ndarray:
    """(n,) float32 mono at sample_rate_hz -> the copy `params` (from `draw`) describes, float32."""
    x = np.ascontiguousarray(samples, dtype=np.float32)
    with _seeded(params.get("noise_seed", 0)):
        for t in transforms(params, sample_rate_hz):
            x = t(samples=x, sample_rate=sample_rate_hz)
    return np.asarray(x, dtype=np.float32)
