"""The training loop: warm-up + cosine schedule, val-based model selection, resumable, DDP-ready.

One epoch = every train window once, in a seeded order that depends only on (seed, epoch),
so a run resumed from `<out>/last/` takes exactly the steps the uninterrupted run would have.
After each epoch the model is scored on the **val** split (loss, and the segment metrics after
post-processing); the best epoch by `train.select_metric` is written to
`<out>/model.safetensors`. Curves go to `<out>/curves.csv` (one row per epoch, DVC plots).
Under `torchrun`, rank 0 validates and writes; every rank trains its share of each batch.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io as _io
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from repurpose import devices, io
from repurpose.evaluation.metrics import WindowResult, evaluate_windows
from repurpose.model.config import ModelConfig
from repurpose.model.losses import LossConfig, compute_loss
from repurpose.model.network import RepurposeNet
from repurpose.model.postprocess import PostprocessConfig, postprocess_window
from repurpose.training import checkpoint
from repurpose.training.config import TrainConfig
from repurpose.training.dataset import WindowDataset, collate, epoch_batches

log = logging.getLogger(__name__)

BEST_WEIGHTS = "model.safetensors"
CURVES = "curves.csv"
CURVE_COLUMNS = ("epoch", "lr", "train_loss", "train_cls", "train_reg", "train_align",
                 "val_loss", "val_precision", "val_recall", "val_f1", "val_map", "best",
                 "seconds")


class TrainingInterrupted(RuntimeError):
    """Raised by `fit(stop_after_steps=...)`: simulates a crash for tests."""


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda when available, else cpu."""
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    return torch.device(devices.resolve_device(name))


def amp_settings(device: torch.device, mode: str) -> tuple[bool, torch.dtype]:
    """(autocast on?, dtype): bf16 where supported, else fp16 (with a grad scaler)."""
    if device.type != "cuda" or mode == "off":
        return False, torch.float32
    return True, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 0 at `total`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / span)))


def to_device(batch: dict, device: torch.device) -> dict:
    """Move the tensors of a collated batch."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}


@torch.no_grad()
def infer(model: torch.nn.Module, dataset: WindowDataset, device: torch.device, batch_size: int,
          loss_cfg: LossConfig | None = None, amp: tuple[bool, torch.dtype] = (False, None),
          num_workers: int = 0) -> tuple[dict[int, tuple[np.ndarray, np.ndarray]], float]:
    """Scores (sigmoid) and offsets per dataset index; mean loss per window if `loss_cfg`."""
    was_training = model.training
    model.eval()
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    loss_sum = 0.0
    batches = epoch_batches(len(dataset), batch_size, 0, 0, shuffle=False)
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=collate,
                        num_workers=num_workers)
    for batch in loader:
        b = to_device(batch, device)
        with torch.autocast(device.type, dtype=amp[1], enabled=amp[0]):
            logits, offsets = model(b["visual"], b["audio"], b["text"], b["mask"])
        if loss_cfg is not None:
            parts = compute_loss(logits, offsets, b["labels"], b["targets"], b["mask"],
                                 dataclasses.replace(loss_cfg, align_weight=0.0))
            loss_sum += float(parts["total"]) * len(batch["index"])
        scores = torch.sigmoid(logits.float()).cpu().numpy()
        offs = offsets.float().cpu().numpy()
        for row, (idx, n) in enumerate(zip(batch["index"], batch["lengths"].tolist(),
                                           strict=True)):
            out[idx] = (scores[row, :n], offs[row, :n])
    model.train(was_training)
    return out, loss_sum / max(1, len(dataset))


def score_outputs(dataset: WindowDataset, outputs: dict[int, tuple[np.ndarray, np.ndarray]],
                  post: PostprocessConfig, thresholds: tuple[float, ...]) -> dict:
    """Post-process model outputs and compute the segment metrics against the windows' clips."""
    windows = []
    for i, plan in enumerate(dataset.plans):
        scores, offsets = outputs[i]
        w = plan.window
        segs = postprocess_window(scores, offsets, w.duration, post)
        windows.append(WindowResult(w.window_id, w.duration, segs, np.asarray(w.clips)))
    return evaluate_windows(windows, thresholds)


@dataclass
class FitResult:
    """What `fit` did: history of every epoch so far, the best epoch, this call's step losses."""

    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=dict)
    step_losses: list[float] = field(default_factory=list)
    resumed_from_epoch: int | None = None
    n_parameters: int = 0
    device: str = "cpu"


def _curves_csv(history: list[dict]) -> str:
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CURVE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row.get(k, "") for k in CURVE_COLUMNS})
    return buf.getvalue()


def _better(candidate: dict, best: dict, metric: str) -> bool:
    if not best:
        return True
    if metric == "loss":
        return candidate["val_loss"] < best["val_loss"]
    return candidate[f"val_{metric}"] > best[f"val_{metric}"]


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def fit(model_cfg: ModelConfig, dims: dict[str, int], cfg: TrainConfig, post: PostprocessConfig,
        thresholds: tuple[float, ...], train_ds: WindowDataset, val_ds: WindowDataset,
        out_dir: str | os.PathLike[str], fingerprint: str, *, resume: bool = True,
        world: int = 1, rank: int = 0, device: torch.device | None = None,
        stop_after_steps: int | None = None,
        on_epoch: Callable[[dict], None] | None = None) -> FitResult:
    """Train, validate and checkpoint every epoch; see the module docstring."""
    out = Path(out_dir)
    device = device or resolve_device(cfg.device)
    amp = amp_settings(device, cfg.amp)
    torch.manual_seed(cfg.seed)
    model = RepurposeNet(model_cfg, dims).to(device)
    result = FitResult(n_parameters=sum(p.numel() for p in model.parameters()),
                       device=str(device))
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(epoch_batches(len(train_ds), cfg.batch_size, cfg.seed, 0,
                                        world=world, rank=rank))
    if steps_per_epoch == 0:
        raise ValueError("no usable train windows")
    total_steps = cfg.epochs * steps_per_epoch
    warmup_steps = cfg.warmup_epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, functools.partial(lr_factor, warmup=warmup_steps, total=total_steps))
    scaler = torch.amp.GradScaler(device.type,
                                  enabled=amp[0] and amp[1] == torch.float16)
    start_epoch = 0
    loaded = checkpoint.load_checkpoint(out, device) if resume else None
    if loaded is not None:
        weights, state = loaded
        if state.get("fingerprint") != fingerprint:
            log.warning("%s/%s belongs to other params or data: starting afresh",
                        out, checkpoint.LAST)
        else:
            model.load_state_dict(weights)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            _set_rng_state(state["rng"])
            start_epoch = int(state["epoch"])
            result.history = list(state["history"])
            result.best = dict(state["best"])
            result.resumed_from_epoch = start_epoch
            log.info("resuming after epoch %d from %s/%s", start_epoch, out, checkpoint.LAST)
    if rank == 0:
        _restore_outputs(out, result)
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=model_cfg.caption_layers == 0)
    loss_cfg = cfg.loss()
    want_streams = loss_cfg.align_weight > 0
    steps_done = 0
    for epoch in range(start_epoch, cfg.epochs):
        began = time.perf_counter()
        net.train()
        batches = epoch_batches(len(train_ds), cfg.batch_size, cfg.seed, epoch,
                                world=world, rank=rank)
        loader = DataLoader(train_ds, batch_sampler=batches, collate_fn=collate,
                            num_workers=cfg.num_workers)
        sums = torch.zeros(5, dtype=torch.float64)  # total, cls, reg, align, windows
        lr_now = optimizer.param_groups[0]["lr"]
        for batch in loader:
            b = to_device(batch, device)
            with torch.autocast(device.type, dtype=amp[1], enabled=amp[0]):
                outputs = net(b["visual"], b["audio"], b["text"], b["mask"],
                              return_streams=want_streams)
            streams = outputs[2] if want_streams else None
            parts = compute_loss(outputs[0], outputs[1], b["labels"], b["targets"], b["mask"],
                                 loss_cfg, streams)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(parts["total"]).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            n = len(batch["index"])
            loss_value = float(parts["total"].detach())
            sums += torch.tensor([loss_value * n, float(parts["cls"]), float(parts["reg"]),
                                  float(parts["align"]) * n, n], dtype=torch.float64)
            result.step_losses.append(loss_value)
            steps_done += 1
            if stop_after_steps is not None and steps_done >= stop_after_steps:
                raise TrainingInterrupted(f"stopped after {steps_done} steps (epoch {epoch})")
        if world > 1:
            import torch.distributed as dist

            dist.all_reduce(sums)
        n = max(1.0, float(sums[4]))
        row = {"epoch": epoch + 1, "lr": lr_now, "train_loss": float(sums[0]) / n,
               "train_cls": float(sums[1]) / n, "train_reg": float(sums[2]) / n,
               "train_align": float(sums[3]) / n}
        if rank == 0:
            _validate_and_save(model, row, cfg, post, thresholds, val_ds, device, amp, out,
                               result, optimizer, scheduler, scaler, fingerprint, epoch,
                               time.perf_counter() - began)
            if on_epoch is not None:
                on_epoch(row)
        if world > 1:
            import torch.distributed as dist

            dist.barrier()
    if rank != 0 and world > 1:  # other ranks learn the history from rank 0's checkpoint
        loaded = checkpoint.load_checkpoint(out, "cpu")
        if loaded is not None:
            result.history, result.best = list(loaded[1]["history"]), dict(loaded[1]["best"])
    return result


def _validate_and_save(model, row, cfg, post, thresholds, val_ds, device, amp, out, result,  # noqa: ANN001
                       optimizer, scheduler, scaler, fingerprint, epoch, seconds) -> None:
    """Rank 0's end of epoch: val scores, best weights, curves, checkpoint."""
    if len(val_ds):
        outputs, val_loss = infer(model, val_ds, device, max(1, cfg.batch_size), cfg.loss(),
                                  amp, cfg.num_workers)
        metrics = score_outputs(val_ds, outputs, post, thresholds)
        row.update({"val_loss": val_loss, **{f"val_{m}": metrics[m]["avg"]
                                              for m in ("precision", "recall", "f1", "map")}})
        improved = _better(row, result.best, cfg.select_metric)
    else:
        log.warning("no usable val windows: keeping the last epoch as the model")
        improved = True
    row["best"] = int(improved)
    row["seconds"] = round(seconds, 3)
    if improved:
        checkpoint.save_weights(out / BEST_WEIGHTS, model.state_dict())
        result.best = {k: v for k, v in row.items() if k != "best"}
    result.history.append(row)
    io.write_text(out / CURVES, _curves_csv(result.history))
    checkpoint.save_checkpoint(out, model.state_dict(), best=out / BEST_WEIGHTS, state={
        "epoch": epoch + 1, "fingerprint": fingerprint,
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(), "rng": _rng_state(),
        "history": result.history, "best": result.best,
    })
    val = (f"val loss {row['val_loss']:.4f} map {row['val_map']:.4f} "
           f"precision {row['val_precision']:.4f}" if "val_loss" in row else "no val")
    log.info("epoch %d/%d: train loss %.4f, %s%s (%.1fs)", epoch + 1, cfg.epochs,
             row["train_loss"], val, "  *best*" if improved else "", seconds)


def _restore_outputs(out: Path, result: FitResult) -> None:
    """Rewrite the best weights and curves from the checkpoint if they went missing (DVC
    deletes a stage's outputs before running it; `last/` is kept as a persistent output)."""
    best = out / checkpoint.LAST / checkpoint.BEST
    if not (out / BEST_WEIGHTS).is_file() and best.is_file():
        with io.atomic_path(out / BEST_WEIGHTS) as tmp:
            shutil.copyfile(best, tmp)
    if result.history:
        io.write_text(out / CURVES, _curves_csv(result.history))
