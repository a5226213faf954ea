"""Offline Albanian speech synthesis with eSpeak NG (through the `espeakng-loader` wheel's
shared library, via ctypes). Used only to build the clearly-labelled synthetic demo corpus."""

from __future__ import annotations

import ctypes
import threading

import numpy as np

# espeak_PARAMETER ids (speak_lib.h)
RATE, VOLUME, PITCH, RANGE = 1, 2, 3, 4
_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_LOCK = threading.Lock()  # the library has global state
_ENGINE: tuple | None = None  # (library, sample rate): initialised once per process


def _engine() -> tuple:
    """The library, initialised once: initialising it again while another instance lives crashed
    it (a segfault in the full test run)."""
    global _ENGINE
    with _LOCK:
        if _ENGINE is None:
            import espeakng_loader

            lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
            sr = lib.espeak_Initialize(_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
            if sr <= 0:
                raise RuntimeError("eSpeak NG failed to initialise")
            _ENGINE = (lib, sr)
        return _ENGINE


class Espeak:
    """`Espeak().say(text, voice="sq", rate=175, pitch=50, pitch_range=50) -> (samples int16, sr)`."""

    _CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

    def __init__(self):
        self.lib, self.sample_rate_hz = _engine()
        self._chunks: list[np.ndarray] = []
        self._cb = self._CALLBACK(self._collect)  # keep a reference: the library calls it

    def _collect(self, wav, n, _events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def say(self, text: str, voice: str = "sq", rate: int = 175, pitch: int = 50,
            pitch_range: int = 50) -> tuple[np.ndarray, int]:
        with _LOCK:
            # The callback is global to the library: another instance may have replaced it (and
            # been garbage-collected since, leaving a dangling pointer), so set ours every time.
            self.lib.espeak_SetSynthCallback(self._cb)
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"eSpeak NG has no voice {voice!r}")
            for param, value in ((RATE, rate), (PITCH, pitch), (RANGE, pitch_range)):
                self.lib.espeak_SetParameter(param, int(value), 0)
            self._chunks = []
            data = text.encode()
            self.lib.espeak_Synth(ctypes.c_char_p(data), len(data) + 1, 0, 1, 0, _CHARS_UTF8, None, None)
            self.lib.espeak_Synchronize()
            audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return audio, self.sample_rate_hz
