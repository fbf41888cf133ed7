"""The one inference path: planned windows -> model -> per-window outputs -> decoder -> segments.

`predict`, validation inside training and `repurpose clip` all go through `run_model` and
`decode_outputs`, so they read features, pick the device and batch, and post-process the same
way (the decoder and protocol come from the `PostprocessConfig` they are given).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from repurpose.model.config import MODALITIES
from repurpose.model.decoders import WindowOutput, decode_window
from repurpose.model.losses import LossConfig
from repurpose.model.postprocess import PostprocessConfig
from repurpose.training.dataset import WindowDataset, collate, epoch_batches
from repurpose.training.index import WindowPlan


def amp_settings(device: torch.device, mode: str) -> tuple[bool, torch.dtype]:
    """(autocast on?, dtype): bf16 where supported, else fp16 (with a grad scaler)."""
    if device.type != "cuda" or mode == "off":
        return False, torch.float32
    return True, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def to_device(batch: dict, device: torch.device) -> dict:
    """Move the tensors of a collated batch; the feature vectors become float32 there (the
    loader keeps the shards' float16: half the bytes to pad, pass and copy)."""
    out = {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
           for k, v in batch.items()}
    for m in MODALITIES:
        if isinstance(out.get(m), torch.Tensor):
            out[m] = out[m].float()
    return out


def _window_outputs(out, batch: dict) -> list[WindowOutput]:  # noqa: ANN001
    """Split a batch's ArchOutput into per-window numpy outputs trimmed to valid rows."""
    scores = torch.sigmoid(out.logits.float()).cpu().numpy()  # [B, T]
    offsets = out.offsets.float().cpu().numpy()  # [B, T, 2]
    cand_scores = out.cand_scores.float().cpu().numpy()  # [B, N]
    cand_segments = out.cand_segments.float().cpu().numpy()  # [B, N, 2]
    cand_mask = out.cand_mask.cpu().numpy()  # [B, N]
    result = []
    for row, n in enumerate(batch["lengths"].tolist()):
        keep = cand_mask[row]
        result.append(WindowOutput(scores[row, :n], offsets[row, :n], cand_segments[row][keep],
                                   cand_scores[row][keep]))
    return result


@torch.no_grad()
def run_model(model: torch.nn.Module, dataset: WindowDataset, device: torch.device,
              batch_size: int, loss_cfg: LossConfig | None = None,
              amp: tuple[bool, torch.dtype] = (False, torch.float32), num_workers: int = 0
              ) -> tuple[dict[int, WindowOutput], float]:
    """Per dataset index its WindowOutput; mean loss per window when `loss_cfg` is given."""
    was_training = model.training
    model.eval()
    outputs: dict[int, WindowOutput] = {}
    loss_sum = 0.0
    loader = DataLoader(dataset, batch_sampler=epoch_batches(len(dataset), batch_size, 0, 0,
                                                             shuffle=False),
                        collate_fn=collate, num_workers=num_workers)
    for batch in loader:
        b = to_device(batch, device)
        with torch.autocast(device.type, dtype=amp[1], enabled=amp[0]):
            out = model(b["visual"], b["audio"], b["text"], b["mask"])
        if loss_cfg is not None:
            parts = model.loss(out, b, dataclasses.replace(loss_cfg, align_weight=0.0))
            loss_sum += float(parts["total"]) * len(batch["index"])
        for idx, window_out in zip(batch["index"], _window_outputs(out, batch), strict=True):
            outputs[idx] = window_out
    model.train(was_training)
    return outputs, loss_sum / max(1, len(dataset))


def decode_outputs(plans: Sequence[WindowPlan], outputs: dict[int, WindowOutput],
                   post: PostprocessConfig) -> dict[str, np.ndarray]:
    """window_id -> segments [[start, end, score], ...] (window seconds), best first."""
    return {plan.window.window_id: decode_window(outputs[i], plan.window.duration, post)
            for i, plan in enumerate(plans)}


def predict_plans(model: torch.nn.Module, plans: Sequence[WindowPlan], features: str,
                  device: torch.device, post: PostprocessConfig, batch_size: int = 8,
                  cache_videos: int = 64) -> tuple[dict[str, np.ndarray], dict[int, WindowOutput]]:
    """Segments per window id and the raw outputs of every planned window."""
    dataset = WindowDataset(list(plans), features, cache_videos)
    with torch.inference_mode():
        outputs, _ = run_model(model, dataset, device, batch_size,
                               amp=amp_settings(device, "auto"))
    return decode_outputs(plans, outputs, post), outputs
