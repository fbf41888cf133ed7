"""What every model arch returns, and the per-second candidate rule the per-second archs share.

An arch is an `nn.Module` with `forward(visual, audio, text, mask) -> ArchOutput` and
`loss(out, batch, cfg) -> {"total", ...}`. Inference never looks inside an arch: decoders read
only the per-second scores/offsets and the candidate segments of an `ArchOutput`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class ArchOutput:
    """One forward pass over a batch of windows (T seconds, N candidates)."""

    logits: Tensor  # [B, T] per-second clip logit: per-second AUC and the "runs" decoder
    offsets: Tensor  # [B, T, 2] per-second (left, right) distances in seconds, >= 0
    cand_scores: Tensor  # [B, N] candidate ranking score in [0, 1]
    cand_segments: Tensor  # [B, N, 2] candidate (start, end) in window seconds
    cand_mask: Tensor  # [B, N] True where the candidate is real
    extras: dict = field(default_factory=dict)  # what the arch's loss needs


def per_second_output(logits: Tensor, offsets: Tensor, mask: Tensor,
                      quality: Tensor | None = None, extras: dict | None = None) -> ArchOutput:
    """Candidates of a per-second arch: second s proposes [s - left, s + right] (the reference
    rule), ranked by sigmoid(logit), times sigmoid(quality) when the arch predicts one."""
    b, t = logits.shape  # [B, T]
    s = torch.arange(t, device=logits.device, dtype=offsets.dtype)[None, :]  # [1, T]
    segments = torch.stack([s - offsets[..., 0], s + offsets[..., 1]], dim=-1)  # [B, T, 2]
    scores = torch.sigmoid(logits.float())
    if quality is not None:
        scores = torch.sqrt(scores * torch.sigmoid(quality.float()))
    return ArchOutput(logits, offsets, scores, segments, mask, extras or {})


def input_dims(dims: Mapping[str, int]) -> dict[str, int]:
    """Per-modality input widths, checked: every one of visual, audio, text must be given."""
    from repurpose.model.config import MODALITIES

    missing = [m for m in MODALITIES if m not in dims]
    if missing:
        raise ValueError(f"input dims missing for {', '.join(missing)}")
    return {m: int(dims[m]) for m in MODALITIES}
