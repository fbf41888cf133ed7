"""Training losses: sigmoid focal loss, 1-D DIoU, and the optional KL "align guider".

Reference semantics: the focal loss is summed over the valid seconds, the DIoU loss over the
positive seconds (label 1), and total = (w_cls * cls + w_reg * reg) / batch size.

Align guider (the paper names a KL-divergence loss the released code lacks; ours is an
assumption, off by default): for each modality pair (visual, text), (audio, text),
(visual, audio), the per-second encoder outputs are L2-normalised and second `t` of the first
modality gets a distribution `q_t` over the valid seconds `t'` of the second, softmax of
cosine similarity / tau. Its target `p_t` is a Gaussian (sigma 1 s) around `t`: the same moment
in both modalities should match. The loss is KL(p_t || q_t) summed over valid seconds,
averaged over the pairs, divided by the batch size, and weighted by `align_weight`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

ALIGN_PAIRS = (("visual", "text"), ("audio", "text"), ("visual", "audio"))
ALIGN_SIGMA = 1.0  # seconds: width of the align guider's target around the same second


@dataclass(frozen=True)
class LossConfig:
    """Loss weights and focal parameters (keys of the `train` params section)."""

    w_cls: float = 0.2
    w_reg: float = 0.8
    focal_alpha: float = 0.7
    focal_gamma: float = 2.0
    align_weight: float = 0.0
    align_tau: float = 0.1
    w_quality: float = 1.0  # BCE of the predicted boundary quality (archs that predict one)


def sigmoid_focal_loss(logits: Tensor, labels: Tensor, alpha: float, gamma: float) -> Tensor:
    """Element-wise sigmoid focal loss (Lin et al.): alpha weighs the positives."""
    labels = labels.to(logits.dtype)
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    p_t = p * labels + (1 - p) * (1 - labels)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * labels + (1 - alpha) * (1 - labels)) * loss
    return loss


def diou_loss_1d(pred: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Element-wise 1-D distance-IoU loss of (left, right) distances [..., 2] from a second.

    Both segments contain the second, so intersection = min(l) + min(r), the enclosing segment
    is max(l) + max(r), and the centre distance is ((r - l) - (r* - l*)) / 2.
    """
    lp, rp = pred[..., 0], pred[..., 1]
    lg, rg = target[..., 0], target[..., 1]
    inter = torch.minimum(lp, lg) + torch.minimum(rp, rg)
    union = (lp + rp) + (lg + rg) - inter
    iou = inter / union.clamp(min=eps)
    enclosing = torch.maximum(lp, lg) + torch.maximum(rp, rg)
    rho = 0.5 * ((rp - lp) - (rg - lg))
    return 1.0 - iou + (rho / enclosing.clamp(min=eps)) ** 2


def align_loss(streams: Mapping[str, Tensor], mask: Tensor, tau: float) -> Tensor:
    """KL align guider summed over valid seconds and averaged over ALIGN_PAIRS (see module)."""
    t = mask.shape[1]
    pos = torch.arange(t, device=mask.device, dtype=torch.float32)
    prior = -((pos[:, None] - pos[None, :]) ** 2) / (2 * ALIGN_SIGMA**2)  # [T, T]
    key_mask = mask[:, None, :]  # [B, 1, T]
    log_p = torch.log_softmax(prior[None].masked_fill(~key_mask, float("-inf")), dim=-1)
    p = log_p.exp()  # exactly 0 at padded keys
    log_p = log_p.masked_fill(~key_mask, 0.0)
    total = mask.new_zeros((), dtype=torch.float32)
    for a, b in ALIGN_PAIRS:
        za = F.normalize(streams[a].float(), dim=-1)
        zb = F.normalize(streams[b].float(), dim=-1)
        sim = (za @ zb.transpose(1, 2)) / tau
        log_q = torch.log_softmax(sim.masked_fill(~key_mask, float("-inf")), dim=-1)
        kl = p * (log_p - log_q.masked_fill(~key_mask, 0.0))
        total = total + kl.sum(-1)[mask].sum()
    return total / len(ALIGN_PAIRS)


def segment_iou(pred: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """IoU of (left, right) distance pairs [..., 2] around the same second."""
    inter = torch.minimum(pred[..., 0], target[..., 0]) + torch.minimum(pred[..., 1],
                                                                        target[..., 1])
    union = pred.sum(-1) + target.sum(-1) - inter
    return inter / union.clamp(min=eps)


def compute_loss(logits: Tensor, offsets: Tensor, labels: Tensor, targets: Tensor, mask: Tensor,
                 cfg: LossConfig, streams: Mapping[str, Tensor] | None = None,
                 quality: Tensor | None = None) -> dict[str, Tensor]:
    """Total and parts: `cls` focal sum, `reg` DIoU sum at positives, `quality` BCE sum at
    positives (target: IoU of the predicted and true segment, detached), `align`, `total`.

    `logits` [B, T], `offsets` [B, T, 2], `labels` [B, T] (0/1), `targets` [B, T, 2],
    `mask` [B, T] (True = valid second), `quality` [B, T] logits or None.
    """
    batch = logits.shape[0]
    logits, offsets = logits.float(), offsets.float()
    cls = sigmoid_focal_loss(logits[mask], labels[mask], cfg.focal_alpha, cfg.focal_gamma).sum()
    positive = mask & (labels > 0)
    reg = diou_loss_1d(offsets[positive], targets[positive].float()).sum()
    total = (cfg.w_cls * cls + cfg.w_reg * reg) / batch
    qual = logits.new_zeros(())
    if quality is not None:
        has_target = positive & (targets.sum(-1) > 0)  # the reference's [int(a), a) rows: (0, 0)
        iou = segment_iou(offsets[has_target].detach(), targets[has_target].float())
        qual = F.binary_cross_entropy_with_logits(quality.float()[has_target], iou,
                                                  reduction="sum")
        total = total + cfg.w_quality * qual / batch
    align = logits.new_zeros(())
    if cfg.align_weight > 0:
        if streams is None:
            raise ValueError("align_weight > 0 needs the model's streams (return_streams=True)")
        align = align_loss(streams, mask, cfg.align_tau) / batch
        total = total + cfg.align_weight * align
    return {"total": total, "cls": cls.detach(), "reg": reg.detach(), "quality": qual.detach(),
            "align": align.detach()}
