"""Offline text-to-speech: the espeak-ng library shipped by the `espeakng-loader` wheel, via ctypes.

No system package and no network: `espeakng_loader` carries `libespeak-ng.so` and its voice
data. espeak-ng keeps global state, so every call holds one process-wide lock and runs in a
freshly loaded private copy of the library (see `_Espeak`): the samples of a text depend only
on its arguments, never on what was spoken before, in this process or another.
"""

from __future__ import annotations

import atexit
import ctypes
import shutil
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

# espeak_AUDIO_OUTPUT / espeak_POSITION_TYPE / flags, from espeak-ng's speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of calling exit() on missing data
# espeak_PARAMETER
_RATE = 1
_PITCH = 3

DEFAULT_VOICE = "en-us"

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class SpeechError(RuntimeError):
    """espeak-ng could not be loaded or failed to synthesise a text."""


class _Espeak:
    """One freshly loaded copy of the library: its own static state, closed after one use.

    espeak-ng keeps state between utterances in static variables that neither
    `espeak_Terminate` nor `espeak_Initialize` resets (the same text spoken after another
    came out 1-15 samples longer or shorter), so the order in which a thread pool happened to
    speak lines changed every spoken line's length. Loading a private copy of the shared
    object and unloading it after each text makes the output depend on the arguments only.
    """

    def __init__(self) -> None:
        lib_path, data_path = _private_library()
        try:
            lib = ctypes.CDLL(str(lib_path))
        except OSError as exc:
            raise SpeechError(f"cannot load espeak-ng from {lib_path}: {exc}") from exc
        _declare(lib)
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_path).encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            _unload(lib)
            raise SpeechError(f"espeak_Initialize failed ({rate}) with data path {data_path}")
        self.lib = lib
        self.sample_rate = int(rate)
        self.chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: C holds only a pointer
        lib.espeak_SetSynthCallback(self._callback)

    def close(self) -> None:
        """Terminate and unload this copy, so the next load starts from a clean state."""
        self.lib.espeak_Terminate()
        _unload(self.lib)

    def _on_audio(self, wav, n_samples, events) -> int:  # noqa: ANN001 - ctypes arguments
        del events
        if wav and n_samples > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        return 0  # 0 = go on synthesising

    def synth(self, text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
        lib = self.lib
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise SpeechError(f"espeak-ng has no voice {voice!r}")
        lib.espeak_SetParameter(_RATE, int(rate), 0)
        lib.espeak_SetParameter(_PITCH, int(pitch), 0)
        self.chunks = []
        data = text.encode("utf-8")
        buf = ctypes.create_string_buffer(data)  # NUL-terminated
        err = lib.espeak_Synth(buf, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != 0:
            raise SpeechError(f"espeak_Synth failed ({err}) for {text!r}")
        err = lib.espeak_Synchronize()
        if err != 0:
            raise SpeechError(f"espeak_Synchronize failed ({err}) for {text!r}")
        chunks, self.chunks = self.chunks, []
        return np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)


def _declare(lib: ctypes.CDLL) -> None:
    """Argument and result types of the espeak-ng functions used here."""
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.argtypes = []
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_Terminate.argtypes = []
    lib.espeak_Terminate.restype = ctypes.c_int


def _unload(lib: ctypes.CDLL) -> None:
    import _ctypes

    _ctypes.dlclose(lib._handle)


_private: tuple[Path, Path] | None = None


def _private_library() -> tuple[Path, Path]:
    """(a copy of libespeak-ng.so only this module loads, the voice data folder)."""
    global _private
    if _private is None:
        try:
            import espeakng_loader

            lib_path = Path(espeakng_loader.get_library_path())
            data_path = Path(espeakng_loader.get_data_path())
            folder = Path(tempfile.mkdtemp(prefix="repurpose-espeak-"))
            copy = folder / "libespeak-ng-private.so"
            shutil.copyfile(lib_path, copy)
        except Exception as exc:  # noqa: BLE001 - any failure means "TTS unavailable"
            raise SpeechError(
                f"cannot load espeak-ng from the 'espeakng-loader' package: {exc}"
            ) from exc
        atexit.register(shutil.rmtree, folder, True)
        _private = (copy, data_path)
    return _private


_lock = threading.Lock()
_rate: int | None = None


def sample_rate() -> int:
    """The rate espeak-ng synthesises at (22050 Hz for its voices)."""
    global _rate
    with _lock:
        if _rate is None:
            engine = _Espeak()
            _rate = engine.sample_rate
            engine.close()
        return _rate


def speak(
    text: str, voice: str = DEFAULT_VOICE, rate: int = 175, pitch: int = 50
) -> tuple[np.ndarray, int]:
    """Synthesise `text`: (mono int16 samples, sample rate). `rate` is words per minute,
    `pitch` 0-100. Deterministic: the same arguments give the same samples, whatever was
    spoken before and in whichever process."""
    samples, sr = _speak_cached(text, voice, int(rate), int(pitch))
    return samples.copy(), sr


@lru_cache(maxsize=256)
def _speak_cached(text: str, voice: str, rate: int, pitch: int) -> tuple[np.ndarray, int]:
    if not text.strip():
        raise SpeechError("nothing to say: empty text")
    with _lock:
        engine = _Espeak()
        try:
            samples = engine.synth(text, voice, rate, pitch)
        finally:
            engine.close()
        sr = engine.sample_rate
    if samples.size == 0:
        raise SpeechError(f"espeak-ng produced no audio for {text!r}")
    samples.setflags(write=False)
    return samples, sr
