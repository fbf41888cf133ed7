"""PANNs Cnn14 (Kong et al. 2020, "PANNs: Large-Scale Pretrained Audio Neural Networks"), written
out here so the official checkpoint loads without the `panns_inference` wrapper (which fetches
files at import time) or torchlibrosa/librosa.

Published architecture, with the parameter names of the official code so that the released
checkpoint (`Cnn14_mAP=0.431.pth`: a dict whose `'model'` entry is the state_dict) loads with
`strict=True`: log-mel front end (STFT as two Conv1d with a Hann-windowed DFT basis, n_fft 1024,
hop 320, centre/reflect padding; 64 Slaney mel bands 50-14000 Hz; 10*log10 power, no top_db),
BatchNorm over mel bins, six conv blocks (64..2048 channels, 2x2 average pooling except the
last), mean over frequency, max + mean over time, fc1 + ReLU = the 2048-d `embedding`, then the
527-class AudioSet head. Input: 32 kHz mono waveforms `[B, samples]`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SAMPLE_RATE = 32000
WINDOW = 1024
HOP = 320
MEL_BINS = 64
FMIN = 50.0
FMAX = 14000.0
CLASSES = 527
EMBEDDING_DIM = 2048


def hann_window(n: int) -> np.ndarray:
    """Periodic Hann window (scipy's `get_window('hann', n, fftbins=True)`)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale (librosa's default, htk=False)."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz)
                    / logstep, mels)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), freqs)


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax), Slaney scale and norm: [mels, bins]."""
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    return (weights * enorm[:, None]).astype(np.float32)


class STFT(nn.Module):
    """|STFT| parts by convolution with a windowed DFT basis (torchlibrosa's layout)."""

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        bins = n_fft // 2 + 1
        self.conv_real = nn.Conv1d(1, bins, n_fft, stride=hop_length, bias=False)
        self.conv_imag = nn.Conv1d(1, bins, n_fft, stride=hop_length, bias=False)
        k = np.arange(n_fft)
        basis = np.exp(-2j * np.pi * np.outer(k, k[:bins]) / n_fft) * hann_window(n_fft)[:, None]
        self.conv_real.weight.data = torch.tensor(np.real(basis).T, dtype=torch.float32)[:, None]
        self.conv_imag.weight.data = torch.tensor(np.imag(basis).T, dtype=torch.float32)[:, None]
        for p in self.parameters():
            p.requires_grad = False

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.pad(x[:, None, :], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        real = self.conv_real(x)[:, None].transpose(2, 3)
        imag = self.conv_imag(x)[:, None].transpose(2, 3)
        return real, imag  # [B, 1, frames, bins]


class Spectrogram(nn.Module):
    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        self.stft = STFT(n_fft, hop_length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        real, imag = self.stft(x)
        return real ** 2 + imag ** 2


class LogmelFilterBank(nn.Module):
    def __init__(self, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float,
                 amin: float = 1e-10):
        super().__init__()
        self.amin = amin
        self.melW = nn.Parameter(torch.tensor(mel_filterbank(sr, n_fft, n_mels, fmin, fmax).T),
                                 requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mel = torch.matmul(x, self.melW)
        return 10.0 * torch.log10(torch.clamp(mel, min=self.amin))  # ref 1.0, no top_db


class ConvBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, pool_size: tuple[int, int] = (2, 2)) -> torch.Tensor:
        x = F.relu_(self.bn1(self.conv1(x)))
        x = F.relu_(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool_size)


class Cnn14(nn.Module):
    """PANNs Cnn14; `forward` returns {'clipwise_output', 'embedding'} like the original."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, window_size: int = WINDOW,
                 hop_size: int = HOP, mel_bins: int = MEL_BINS, fmin: float = FMIN,
                 fmax: float = FMAX, classes_num: int = CLASSES):
        super().__init__()
        self.spectrogram_extractor = Spectrogram(window_size, hop_size)
        self.logmel_extractor = LogmelFilterBank(sample_rate, window_size, mel_bins, fmin, fmax)
        self.bn0 = nn.BatchNorm2d(mel_bins)
        widths = [1, 64, 128, 256, 512, 1024, 2048]
        for i in range(6):
            setattr(self, f"conv_block{i + 1}", ConvBlock(widths[i], widths[i + 1]))
        self.fc1 = nn.Linear(2048, 2048, bias=True)
        self.fc_audioset = nn.Linear(2048, classes_num, bias=True)

    def forward(self, waveform: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.spectrogram_extractor(waveform)  # [B, 1, frames, bins]
        x = self.logmel_extractor(x)  # [B, 1, frames, mels]
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i in range(1, 7):
            block = getattr(self, f"conv_block{i}")
            x = block(x, pool_size=(2, 2) if i < 6 else (1, 1))
            x = F.dropout(x, p=0.2, training=self.training)
        x = torch.mean(x, dim=3)
        x = torch.max(x, dim=2).values + torch.mean(x, dim=2)
        x = F.dropout(x, p=0.5, training=self.training)
        x = F.relu_(self.fc1(x))
        embedding = F.dropout(x, p=0.5, training=self.training)
        clipwise = torch.sigmoid(self.fc_audioset(x))
        return {"clipwise_output": clipwise, "embedding": embedding}


def load_checkpoint(path: str, map_location: str = "cpu") -> dict[str, torch.Tensor]:
    """The state_dict of an official PANNs checkpoint (`{'model': state_dict, ...}`),
    read with `weights_only=True`. Also accepts a bare state_dict."""
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if isinstance(ckpt, dict) and "model" in ckpt and isinstance(ckpt["model"], dict):
        return ckpt["model"]
    if isinstance(ckpt, dict) and "conv_block1.conv1.weight" in ckpt:
        return ckpt
    raise ValueError(f"{path}: not a PANNs checkpoint (expected a dict with a 'model' state_dict)")
