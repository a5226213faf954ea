"""openSMILE feature sets: `egemaps` (eGeMAPSv02) and `compare` (ComParE_2016).

LICENCE: these extractors run audEERING's `opensmile` package (Python wrapper and the bundled
openSMILE library), which is licensed for research and other non-commercial use only;
commercial use needs a licence from audEERING. It is an optional extra:
`pip install 'albsent[opensmile]'`. albsent's own code stays Apache-2.0.

Columns per clip (NAME = egemaps | compare):

    NAME_func            (n_func,) float32    the set's functionals: 88 (eGeMAPSv02), 6373 (ComParE_2016)
    NAME                 (frames, n_lld)      low-level descriptors every 10 ms: eGeMAPSv02's 25,
                                              ComParE's 65 (with `compare.lld_deltas`: + their 65 deltas)
    NAME_mean, NAME_std  (n_lld,) float32     the LLDs pooled over frames, as for every frame extractor

The sequence uses the store's `sequence_dtype`, except ComParE's, which is always float32:
its spectral variance reaches ~1e7 on speech, far past float16's 65504 (eGeMAPS stays under
~5,000; a float16 eGeMAPS sequence is clipped to +-65504 rather than stored as inf).

One openSMILE run per clip feeds every level (LLD, LLD deltas, functionals) to its own
external sink; each level's values equal `opensmile.Smile(set, level).process_signal(x, sr)`
(tests/test_opensmile.py). Samples are clipped to [-1, 32767/32768] first: openSMILE
converts to int16 by x * 32768, which wraps a peak-normalised +1.0 to -32768 (a full-scale
click). ComParE's deltas are a separate openSMILE level that ends with two more end-of-input
frames than the LLD level, and whose last few start times (up to 4 frames from the end on
EMO-DB) lag the LLD level's by one or two hops: with `lld_deltas` they are paired with the LLD
frames row by row and cut to their count (start times checked equal except in the last
TAIL_FRAMES). So the default ComParE sequence holds the 65 LLDs only; its functionals cover
LLDs and deltas either way. Frames = 2 + (samples - 960) // 160 at 16 kHz (60 ms windows,
10 ms hop); a clip under 60 ms has none and fails (quarantined as extract_error).

Voicing: a frame is voiced where the F0 LLD is > 0 (openSMILE writes 0 for unvoiced frames):
metadata `voicing`, spec stats vmean / vstd.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from albsent.config import require
from albsent.errors import ConfigError
from albsent.features.base import EXTRACTORS, FrameExtractor
from albsent.store.schema import Column, pooled_column

INSTALL = "pip install 'albsent[opensmile]'"
LICENCE = "opensmile (audEERING): research and non-commercial use only; commercial use needs an audEERING licence"
F16_MAX = float(np.finfo(np.float16).max)
TAIL_FRAMES = 5  # ComParE's delta level: end-of-input frames whose start times differ from the LLD level's
LEVEL_NAMES = {"lld": "LowLevelDescriptors", "lld_de": "LowLevelDescriptors_Deltas", "func": "Functionals"}


def import_opensmile():
    """The `opensmile` module, or a ConfigError saying how to install it."""
    try:
        import opensmile
    except ImportError as exc:
        raise ConfigError(
            f"the openSMILE extractors (egemaps, compare) need the optional 'opensmile' package ({exc}); "
            f"install it with: {INSTALL}  (licence: {LICENCE})"
        ) from None
    return opensmile


@dataclass
class EgemapsConfig:
    """eGeMAPSv02 (opensmile; research / non-commercial licence). No options: the set is fixed."""


@dataclass
class CompareConfig:
    """ComParE_2016 (opensmile; research / non-commercial licence)."""

    # true: the sequence holds the 65 LLDs then their 65 deltas (130). openSMILE gives the deltas as
    # a separate level with two more end-of-input frames, whose last timestamps disagree with the
    # LLD level's by a hop or two, so they are paired row by row and cut; hence off by default.
    lld_deltas: bool = False

    def __post_init__(self):
        require(isinstance(self.lld_deltas, bool), self, "lld_deltas", self.lld_deltas, "true or false")


_SINKS_LOCK = threading.Lock()
_SINKS: dict[tuple[str, ...], str] = {}


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _sinks_file(levels: tuple[str, ...]) -> str:
    """An openSMILE include file with one cExternalSink per level (written once per process)."""
    with _SINKS_LOCK:
        if levels not in _SINKS:
            text = "[componentInstances:cComponentManager]\n"
            text += "".join(f"instance[albsent_{lv}].type=cExternalSink\n" for lv in levels)
            text += "".join(f"\n[albsent_{lv}:cExternalSink]\nreader.dmLevel = {lv}\nblocksize = 1\n" for lv in levels)
            fd, path = tempfile.mkstemp(prefix="albsent-smile-sinks-", suffix=".conf.inc")
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            atexit.register(_remove, path)
            _SINKS[levels] = path
        return _SINKS[levels]


class OpenSmileExtractor(FrameExtractor):
    """Base of `egemaps` and `compare`: functionals + LLD frames from one openSMILE run per clip."""

    feature_set: ClassVar[str]  # opensmile.FeatureSet member name
    n_func: ClassVar[int]
    n_lld: ClassVar[int]
    frame_shift_s: ClassVar[float] = 0.010
    window_s: ClassVar[float] = 0.060  # the longest LLD window: it decides the frame count

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._smile = None

    # ---- description: columns and frame counts need no opensmile import, names and metadata do --
    @property
    def levels(self) -> tuple[str, ...]:
        return ("lld", "func")

    @property
    def hop_length(self) -> int:
        return int(round(self.frame_shift_s * self.sample_rate_hz))

    @property
    def seq_dtype(self) -> str:
        return self.sequence_dtype

    def lld_dim(self) -> int:
        return self.n_lld

    def sequence(self, f: np.ndarray) -> np.ndarray:
        if self.seq_dtype == "float16":
            return np.clip(f, -F16_MAX, F16_MAX).astype(np.float16)
        return f.astype(self.seq_dtype)

    def num_frames(self, n: int) -> int:
        win = int(round(self.window_s * self.sample_rate_hz))
        return 0 if n < win else 2 + (n - win) // self.hop_length

    def columns(self) -> list[Column]:
        d = self.lld_dim()
        cols = [Column(pooled_column(self.name, stat), (self.n_func if stat == "func" else d,), "float32", "pooled")
                for stat in ("func", "mean", "std")]
        if self.store_sequences:
            cols.insert(1, Column(self.name, (None, d), self.seq_dtype, "sequence"))
        return cols

    def _names(self, level: str) -> list[str]:
        opensmile = import_opensmile()
        smile = opensmile.Smile(getattr(opensmile.FeatureSet, self.feature_set),
                                getattr(opensmile.FeatureLevel, LEVEL_NAMES[level]))
        return list(smile.feature_names)

    def feature_names(self) -> list[str]:
        """The LLD names of the sequence columns (and of NAME_mean / NAME_std)."""
        return [n for lv in self.levels if lv != "func" for n in self._names(lv)]

    def metadata(self) -> dict:
        opensmile = import_opensmile()
        meta = super().metadata()
        meta.update({
            "frames": "2 + (samples - 60 ms) // hop_length (openSMILE's LLD frames; none under 60 ms)",
            "func_feature_names": self._names("func"),
            "feature_set": self.feature_set,
            "opensmile_version": getattr(opensmile, "__version__", None),
            "licence": LICENCE,
            "input": "samples clipped to [-1, 32767/32768] before openSMILE's int16 conversion",
        })
        return meta

    # ---- extraction -----------------------------------------------------------------------------
    def _run(self, wave: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{level: (values (rows, dim) float32, start times (rows,) s)} from one openSMILE run."""
        if self._smile is None:
            self._smile = _OneRun(self.feature_set, self.levels, self.sample_rate_hz)
        return self._smile(wave)

    def extract(self, waves: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        out = []
        for wave in waves:
            x = np.clip(np.asarray(wave, dtype=np.float32), -1.0, 32767 / 32768)
            got = self._run(x)
            lld, starts = got["lld"]
            if len(lld) == 0:
                raise ValueError(f"{self.name}: openSMILE gives no frames for a clip of {x.size} samples; "
                                 f"it needs at least {self.window_s} s "
                                 f"({int(self.window_s * self.sample_rate_hz)} samples)")
            if "lld_de" in got:
                de, de_starts = got["lld_de"]
                de, de_starts = de[: len(lld)], de_starts[: len(lld)]
                body = slice(0, max(0, len(lld) - TAIL_FRAMES))
                if len(de) != len(lld) or not np.allclose(de_starts[body], starts[body], rtol=0, atol=1e-6):
                    raise RuntimeError(f"{self.name}: openSMILE's LLD and delta frames do not line up "
                                       f"({len(lld)} vs {len(got['lld_de'][0])} frames)")
                lld = np.concatenate([lld, de], axis=1)
            func = got["func"][0]
            if func.shape != (1, self.n_func) or lld.shape[1] != self.lld_dim():
                raise RuntimeError(f"{self.name}: openSMILE returned functionals {func.shape} and LLDs {lld.shape}; "
                                   f"expected (1, {self.n_func}) and (frames, {self.lld_dim()}) (opensmile version?)")
            row = self.pooled(np.ascontiguousarray(lld, dtype=np.float32))
            row[pooled_column(self.name, "func")] = func[0].astype(np.float32)
            out.append(row)
        return out


class _OneRun:
    """One openSMILE run per clip with an external sink per level. Uses opensmile's own config
    files and options (Smile._options) and its C API wrapper as Smile._extract does, but
    initialises once and `reset()`s between clips (openSMILE's API for reruns): 5-20 ms less
    per clip, same values (tests/test_opensmile.py checks clips in a row)."""

    def __init__(self, feature_set: str, levels: tuple[str, ...], sample_rate_hz: int):
        opensmile = import_opensmile()
        from opensmile.core.config import config as oscfg
        from opensmile.core.lib import OpenSMILE

        smile = opensmile.Smile(getattr(opensmile.FeatureSet, feature_set))
        self.config_path = smile.config_path
        self.options = smile._options()
        self.options.update({
            "sink": _sinks_file(tuple(levels)),
            "source": os.path.join(smile.default_config_root, oscfg.EXTERNAL_INPUT_CONFIG),
            "sampleRate": sample_rate_hz,
            "nBits": 16,
        })
        self.source = oscfg.EXTERNAL_SOURCE_COMPONENT
        self.levels = tuple(levels)
        self.loglevel = smile.loglevel
        self._cls = OpenSMILE
        self._sm = None
        self._rows: dict[str, list] = {}
        self._starts: dict[str, list] = {}
        self._sinks = {lv: self._sink(lv) for lv in self.levels}

    def _sink(self, lv: str):
        def sink(data, meta):
            self._rows[lv].append(data.copy())
            self._starts[lv].append(meta.time)

        return sink

    def __call__(self, x: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """x: (n,) float32 in [-1, 1) -> {level: (values (rows, dim) float32, start times (rows,) s)}."""
        rows, starts = self._rows, self._starts
        for lv in self.levels:
            rows[lv], starts[lv] = [], []
        if self._sm is None:
            self._sm = self._cls()
            self._sm.initialize(config_file=self.config_path, options=self.options, loglevel=self.loglevel)
        sm = self._sm
        try:
            for lv in self.levels:  # callbacks are re-registered after every reset
                sm.external_sink_set_callback_ex(f"albsent_{lv}", self._sinks[lv])
            # the wrapper keeps every callback it was given; keep only the live ones
            kept = getattr(sm, "_callbacks", None)
            if isinstance(kept, list) and len(kept) > len(self.levels):
                del kept[: -len(self.levels)]
            sm.external_audio_source_write_data(self.source, bytes((x * 32768).astype(np.int16)))
            sm.external_audio_source_set_eoi(self.source)
            sm.run()
            sm.reset()
        except BaseException:
            self.close()  # a failed run leaves no half-used instance behind
            raise
        out = {}
        for lv in self.levels:
            vals = np.vstack(rows[lv]).astype(np.float32) if rows[lv] else np.zeros((0, 0), np.float32)
            out[lv] = (vals, np.asarray(starts[lv], dtype=np.float64))
        return out

    def close(self) -> None:
        if self._sm is not None:
            self._sm.free()
            self._sm = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


@EXTRACTORS.register("egemaps")
class EgemapsExtractor(OpenSmileExtractor):
    """eGeMAPSv02 (Eyben et al. 2016): 88 functionals, 25 LLDs. opensmile: research /
    non-commercial licence only (pip install 'albsent[opensmile]')."""

    config_cls = EgemapsConfig
    feature_set = "eGeMAPSv02"
    n_func = 88
    n_lld = 25
    voicing_feature = ("F0semitoneFrom27.5Hz_sma3nz", 0.0)  # F0 > 0: voiced


@EXTRACTORS.register("compare")
class CompareExtractor(OpenSmileExtractor):
    """ComParE_2016 (Schuller et al.): 6373 functionals, 65 LLDs (+ 65 deltas with lld_deltas). opensmile:
    research / non-commercial licence only (pip install 'albsent[opensmile]')."""

    config_cls = CompareConfig
    feature_set = "ComParE_2016"
    fusable = False  # auto selection: too big to fuse (6,373 functionals); in no pairwise fusion
    n_func = 6373
    n_lld = 65
    voicing_feature = ("F0final_sma", 0.0)  # F0 > 0: voiced

    @property
    def levels(self) -> tuple[str, ...]:
        return ("lld", "lld_de", "func") if self.config.lld_deltas else ("lld", "func")

    @property
    def seq_dtype(self) -> str:
        return "float32"  # spectral variance reaches ~1e7: float16 would store inf

    def lld_dim(self) -> int:
        return self.n_lld * (2 if self.config.lld_deltas else 1)
