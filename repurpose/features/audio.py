"""Audio backends: one second of mono audio `[t, t + 1)` -> one vector.

- `panns-cnn14`: PANNs Cnn14 `embedding` (2048-d) of each one-second segment at 32 kHz mono, from
  the official checkpoint file (`Cnn14_mAP=0.431.pth`, zenodo record 3987831), loaded with
  `torch.load(weights_only=True)` into the `Cnn14` class of the `panns_inference` package itself
  (loaded without the package's import-time downloader: `repurpose.features.panns`).
- `logmel`: weight-free summary: per mel band, the mean and the standard deviation over the
  second of the log-mel power (dB) spectrogram (`2 * n_mels` values; Slaney mel bank from
  `librosa.filters.mel`). Needs no download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from repurpose.features import panns as cnn14
from repurpose.features.backends import Backend, WeightsMissing, files_identity, resolve_device
from repurpose.params import ParamsError
from repurpose.pervideo.backend import PRECISION_DEFAULT, check_precision, compute_precision

LOGMEL_VERSION = "logmel-v1"


class AudioBackend(Backend):
    """One-second waveforms `float32 [N, sample_rate]` -> `float32 [N, dim]`."""

    modality: ClassVar[str] = "audio"

    @property
    def sample_rate(self) -> int:
        return int(self.settings["sample_rate"])

    def embed_audio(self, segments: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class PannsCnn14(AudioBackend):
    key: ClassVar[str] = "panns-cnn14"
    defaults: ClassVar[dict[str, Any]] = {
        "weights": "models/panns/Cnn14_mAP=0.431.pth",
        **PRECISION_DEFAULT,  # fp32 | bf16 (autocast: ~1.9x faster on an AVX512-BF16 CPU)
    }
    unkeyed_defaults: ClassVar[dict[str, Any]] = PRECISION_DEFAULT

    def validate(self) -> None:
        check_precision(self)

    @property
    def sample_rate(self) -> int:
        return cnn14.SAMPLE_RATE

    @property
    def dim(self) -> int:
        return cnn14.EMBEDDING_DIM

    @property
    def params(self) -> dict[str, Any]:
        return {"sample_rate": cnn14.SAMPLE_RATE, "window": cnn14.WINDOW, "hop": cnn14.HOP,
                "mel_bins": cnn14.MEL_BINS, "fmin": cnn14.FMIN, "fmax": cnn14.FMAX,
                "segment_seconds": 1.0, "output": "embedding",
                **({} if self.settings["precision"] == "fp32" else
                   {"precision": self.settings["precision"]})}

    def weights_help(self) -> str:
        return ("download Cnn14_mAP=0.431.pth (https://zenodo.org/records/3987831) on a "
                "networked machine and put it there, or point this key at it")

    def weights_path(self) -> Path:
        path = self.setting_path("weights")
        if not path.is_file():
            raise WeightsMissing(f"params {self.where}.weights: {path} is not a file; "
                                 f"{self.weights_help()}")
        return path

    def weights_identity(self) -> str:
        return files_identity([self.weights_path()])

    def load(self) -> Any:
        path = self.weights_path()
        try:
            state = cnn14.load_checkpoint(str(path))
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint: one clear error
            raise WeightsMissing(f"params {self.where}.weights: {path}: cannot read the "
                                 f"checkpoint: {exc}") from exc
        model = cnn14.new_cnn14()
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsMissing(f"params {self.where}.weights: {path} is not a Cnn14 "
                                 f"checkpoint: {exc}") from exc
        return model.eval().to(resolve_device(self.device_setting))

    def embed_audio(self, segments: np.ndarray) -> np.ndarray:
        import torch

        model = self.model()
        with torch.inference_mode(), compute_precision(self):
            x = torch.from_numpy(np.ascontiguousarray(segments, dtype=np.float32))
            out = model(x.to(resolve_device(self.device_setting)))["embedding"]  # [N, 2048]
        return out.float().cpu().numpy()


class LogMel(AudioBackend):
    key: ClassVar[str] = "logmel"
    defaults: ClassVar[dict[str, Any]] = {
        "sample_rate": 16000,  # Hz the audio is resampled to
        "n_mels": 64,  # mel bands (the vector has 2 * n_mels values: mean, std)
        "n_fft": 400,  # STFT window (25 ms at 16 kHz)
        "hop": 160,  # STFT hop (10 ms at 16 kHz)
        "fmin": 50.0,
        "fmax": 8000.0,
    }

    def validate(self) -> None:
        s = self.settings
        for name in ("sample_rate", "n_mels", "n_fft", "hop"):
            if not isinstance(s[name], int) or isinstance(s[name], bool) or s[name] <= 0:
                raise ParamsError(f"params {self.where}.{name}: expected a positive integer")
        if not 0 <= float(s["fmin"]) < float(s["fmax"]) <= s["sample_rate"] / 2:
            raise ParamsError(f"params {self.where}: need 0 <= fmin < fmax <= sample_rate / 2")

    @property
    def dim(self) -> int:
        return 2 * int(self.settings["n_mels"])

    @property
    def params(self) -> dict[str, Any]:
        return {**self.settings, "version": LOGMEL_VERSION}

    def weights_identity(self) -> str:
        return f"none:{LOGMEL_VERSION}"

    def load(self) -> Any:
        import torch

        s = self.settings
        from librosa.filters import mel as mel_filterbank

        mel = mel_filterbank(sr=s["sample_rate"], n_fft=s["n_fft"], n_mels=s["n_mels"],
                             fmin=float(s["fmin"]), fmax=float(s["fmax"]))
        return torch.tensor(mel.T), torch.hann_window(s["n_fft"])

    def embed_audio(self, segments: np.ndarray) -> np.ndarray:
        import torch

        mel_w, window = self.model()
        s = self.settings
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(segments, dtype=np.float32))
            spec = torch.stft(x, s["n_fft"], s["hop"], window=window, center=True,
                              pad_mode="reflect", return_complex=True).abs() ** 2
            logmel = 10.0 * torch.log10(torch.clamp(spec.transpose(1, 2) @ mel_w, min=1e-10))
            out = torch.cat([logmel.mean(1), logmel.std(1)], dim=1)
        return out.numpy()
