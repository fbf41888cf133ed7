"""`linear`: a per-second linear (or one-hidden-layer MLP) classifier, the strong simple baseline.

Each modality's vector is layer-normalised (no affine: feature scales differ by backend), the
three are concatenated, and one linear map (or `hidden` > 0: Linear-ReLU-Linear) gives a clip
logit and two regression outputs per second; no second sees any other, so everything temporal
comes from the decoder (`runs` groups contiguous seconds). Offsets are
`softplus(x) * reg_scale` seconds. Losses are the mmct ones (focal + DIoU).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repurpose.model.base import ArchOutput, per_second_output
from repurpose.model.config import MODALITIES
from repurpose.model.losses import LossConfig, compute_loss
from repurpose.params import ParamsError


@dataclass(frozen=True)
class LinearConfig:
    """The `model.linear` params section."""

    hidden: int = 0  # 0 = linear; > 0 = one hidden ReLU layer of this width
    dropout: float = 0.0  # dropout on the concatenated inputs
    reg_scale: float = 30.0  # seconds per regression unit

    def __post_init__(self) -> None:
        if self.hidden < 0 or not 0 <= self.dropout < 1 or self.reg_scale <= 0:
            raise ParamsError("params model.linear: need hidden >= 0, 0 <= dropout < 1, "
                              "reg_scale > 0")


class LinearNet(nn.Module):
    """Per-second features -> (logit, left, right) with no temporal context."""

    def __init__(self, cfg: LinearConfig, dims: Mapping[str, int]):
        super().__init__()
        self.cfg = cfg
        self.dims = {m: int(dims[m]) for m in MODALITIES}
        width = sum(self.dims.values())
        out = 3
        if cfg.hidden:
            self.net = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(width, cfg.hidden),
                                     nn.ReLU(), nn.Linear(cfg.hidden, out))
        else:
            self.net = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(width, out))

    def forward(self, visual: Tensor, audio: Tensor, text: Tensor, mask: Tensor,
                return_streams: bool = False) -> ArchOutput:
        """Inputs [B, T, D_m], mask [B, T] -> per-second output."""
        del return_streams
        parts = [F.layer_norm(x.float(), x.shape[-1:]) for x in (visual, audio, text)]
        y = self.net(torch.cat(parts, dim=-1))  # [B, T, 3]
        offsets = F.softplus(y[..., 1:]) * self.cfg.reg_scale  # [B, T, 2]
        return per_second_output(y[..., 0], offsets, mask)

    def loss(self, out: ArchOutput, batch: dict, cfg: LossConfig) -> dict[str, Tensor]:
        """Focal + DIoU, as for mmct."""
        return compute_loss(out.logits, out.offsets, batch["labels"], batch["targets"],
                            batch["mask"], cfg)
