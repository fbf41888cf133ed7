"""The `train` params section."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from repurpose.model.losses import LossConfig
from repurpose.params import ParamsError, config_from_section

SECTION = "train"
SELECT = ("map", "precision", "f1", "recall", "loss")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedule, loss weights, device and data loading."""

    seed: int = 0
    epochs: int = 30
    warmup_epochs: int = 2
    batch_size: int = 2
    patience: int = 5  # stop after this many epochs without a better val metric; 0 = never
    optimizer: str = "adam"  # adam (reference: L2 weight decay) | adamw
    lr: float = 1e-3
    weight_decay: float = 1e-4
    grad_clip: float = 1.0  # max gradient norm; 0 = off (reference)
    w_cls: float = 0.2
    w_reg: float = 0.8
    focal_alpha: float = 0.7
    focal_gamma: float = 2.0
    align_weight: float = 0.0
    align_tau: float = 0.1
    w_quality: float = 1.0  # weight of the boundary-quality BCE (archs that predict one)
    select_metric: str = "map"  # val metric (avg over thresholds) choosing the best epoch
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "auto"  # auto (bf16/fp16 autocast on CUDA) | off
    num_workers: int = 0
    cache_videos: int = 64

    def __post_init__(self) -> None:
        if self.epochs < 1 or not 0 <= self.warmup_epochs <= self.epochs:
            raise ParamsError(f"params {SECTION}: need epochs >= 1 and 0 <= warmup_epochs <= "
                              f"epochs, got {self.epochs} and {self.warmup_epochs}")
        if self.patience < 0:
            raise ParamsError(f"params {SECTION}.patience: must be >= 0")
        if self.batch_size < 1 or self.lr <= 0 or self.num_workers < 0:
            raise ParamsError(f"params {SECTION}: batch_size >= 1, lr > 0, num_workers >= 0")
        choices = {"optimizer": ("adam", "adamw"), "select_metric": SELECT,
                   "device": ("auto", "cpu", "cuda"), "amp": ("auto", "off")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ParamsError(f"params {SECTION}.{name}: {getattr(self, name)!r} is not one "
                                  f"of {', '.join(allowed)}")

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> TrainConfig:
        """Read the `train` section (every key required, unknown keys are an error)."""
        return config_from_section(cls, dict(section), SECTION)

    def loss(self) -> LossConfig:
        """The loss part."""
        return LossConfig(self.w_cls, self.w_reg, self.focal_alpha, self.focal_gamma,
                          self.align_weight, self.align_tau, self.w_quality)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, the same keys as the params section."""
        return asdict(self)
