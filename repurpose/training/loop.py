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
import functools
import io as _io
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from repurpose import devices, io
from repurpose.evaluation.metrics import WindowResult, evaluate_windows
from repurpose.inference import amp_settings, decode_outputs, run_model, to_device
from repurpose.model.decoders import WindowOutput
from repurpose.model.postprocess import PostprocessConfig
from repurpose.model.registry import ModelSpec
from repurpose.training import checkpoint
from repurpose.training.config import TrainConfig
from repurpose.training.dataset import WindowDataset, collate, epoch_batches

log = logging.getLogger(__name__)

BEST_WEIGHTS = "model.safetensors"
CURVES = "curves.csv"
CURVE_COLUMNS = ("epoch", "lr", "train_loss", "train_cls", "train_reg", "train_align",
                 "val_loss", "val_precision", "val_recall", "val_f1", "val_map", "best")
# no wall-clock column: curves.csv and model.json are DVC outputs and must be bit-reproducible


class TrainingInterrupted(RuntimeError):
    """Raised by `fit(stop_after_steps=...)`: simulates a crash for tests."""


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda when available, else cpu."""
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    return torch.device(devices.resolve_device(name))


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 0 at `total`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / span)))


def score_outputs(dataset: WindowDataset, outputs: dict[int, WindowOutput],
                  post: PostprocessConfig, thresholds: tuple[float, ...]) -> dict:
    """Decode model outputs and compute the segment metrics against the windows' clips."""
    segments = decode_outputs(dataset.plans, outputs, post)
    windows = [WindowResult(p.window.window_id, p.window.duration,
                            segments[p.window.window_id], np.asarray(p.window.clips))
               for p in dataset.plans]
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


@dataclass
class Trainer:
    """The objects one training run mutates."""

    model: torch.nn.Module
    net: torch.nn.Module  # `model`, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    device: torch.device
    amp: tuple[bool, torch.dtype]


def build_trainer(spec: ModelSpec, dims: dict[str, int], cfg: TrainConfig, steps_per_epoch: int,
                  device: torch.device, world: int) -> Trainer:
    """Seeded model, optimizer, warm-up + cosine schedule and grad scaler."""
    amp = amp_settings(device, cfg.amp)
    torch.manual_seed(cfg.seed)
    model = spec.build(dims).to(device)
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, functools.partial(
        lr_factor, warmup=cfg.warmup_epochs * steps_per_epoch,
        total=cfg.epochs * steps_per_epoch))
    scaler = torch.amp.GradScaler(device.type, enabled=amp[0] and amp[1] == torch.float16)
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True)
    return Trainer(model, net, optimizer, scheduler, scaler, device, amp)


def resume_state(trainer: Trainer, out: Path, fingerprint: str, result: FitResult) -> int:
    """Load `<out>/last/` into the trainer if it belongs to this run; the epoch to start at."""
    loaded = checkpoint.load_checkpoint(out, trainer.device)
    if loaded is None:
        return 0
    weights, state = loaded
    if state.get("fingerprint") != fingerprint:
        log.warning("%s/%s belongs to other params or data: starting afresh", out,
                    checkpoint.LAST)
        return 0
    trainer.model.load_state_dict(weights)
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"])
    result.history = list(state["history"])
    result.best = dict(state["best"])
    result.resumed_from_epoch = int(state["epoch"])
    log.info("resuming after epoch %d from %s/%s", result.resumed_from_epoch, out,
             checkpoint.LAST)
    return result.resumed_from_epoch


def patience_exhausted(history: list[dict], patience: int) -> bool:
    """True when the last `patience` epochs brought no new best (patience 0: never)."""
    if patience <= 0 or not history:
        return False
    since_best = 0
    for row in reversed(history):
        if row.get("best"):
            break
        since_best += 1
    return since_best >= patience


def train_epoch(trainer: Trainer, train_ds: WindowDataset, cfg: TrainConfig, epoch: int,
                world: int, rank: int, result: FitResult, budget: list[int] | None,
                want_streams: bool) -> dict:
    """One pass over this rank's batches; the epoch's mean losses (all ranks reduced)."""
    trainer.net.train()
    batches = epoch_batches(len(train_ds), cfg.batch_size, cfg.seed, epoch, world=world,
                            rank=rank)
    loader = DataLoader(train_ds, batch_sampler=batches, collate_fn=collate,
                        num_workers=cfg.num_workers)
    loss_cfg = cfg.loss()
    sums = torch.zeros(5, dtype=torch.float64)  # total, cls, reg, align, windows
    lr_now = trainer.optimizer.param_groups[0]["lr"]
    bar = tqdm(loader, total=len(batches), desc=f"epoch {epoch + 1}/{cfg.epochs}",
               unit="batch", leave=False, disable=None if rank == 0 else True, file=sys.stderr)
    for batch in bar:
        b = to_device(batch, trainer.device)
        with torch.autocast(trainer.device.type, dtype=trainer.amp[1], enabled=trainer.amp[0]):
            extra = {"return_streams": True} if want_streams else {}  # the align guider's input
            out = trainer.net(b["visual"], b["audio"], b["text"], b["mask"], **extra)
        parts = trainer.model.loss(out, b, loss_cfg)
        trainer.optimizer.zero_grad(set_to_none=True)
        trainer.scaler.scale(parts["total"]).backward()
        if cfg.grad_clip > 0:
            trainer.scaler.unscale_(trainer.optimizer)
            torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), cfg.grad_clip)
        trainer.scaler.step(trainer.optimizer)
        trainer.scaler.update()
        trainer.scheduler.step()
        n = len(batch["index"])
        loss_value = float(parts["total"].detach())
        sums += torch.tensor([loss_value * n, float(parts["cls"]), float(parts["reg"]),
                              float(parts.get("align", 0.0)) * n, n], dtype=torch.float64)
        result.step_losses.append(loss_value)
        bar.set_postfix(loss=f"{loss_value:.3f}")
        if budget is not None:
            budget[0] -= 1
            if budget[0] <= 0:
                raise TrainingInterrupted(f"stopped after the step budget (epoch {epoch})")
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(sums)
    n = max(1.0, float(sums[4]))
    return {"epoch": epoch + 1, "lr": lr_now, "train_loss": float(sums[0]) / n,
            "train_cls": float(sums[1]) / n, "train_reg": float(sums[2]) / n,
            "train_align": float(sums[3]) / n}


def fit(spec: ModelSpec, dims: dict[str, int], cfg: TrainConfig, post: PostprocessConfig,
        thresholds: tuple[float, ...], train_ds: WindowDataset, val_ds: WindowDataset,
        out_dir: str | os.PathLike[str], fingerprint: str, *, resume: bool = True,
        world: int = 1, rank: int = 0, device: torch.device | None = None,
        stop_after_steps: int | None = None,
        on_epoch: Callable[[dict], None] | None = None) -> FitResult:
    """Train, validate and checkpoint every epoch, stop early on `cfg.patience`; see module."""
    out = Path(out_dir)
    device = device or resolve_device(cfg.device)
    steps_per_epoch = len(epoch_batches(len(train_ds), cfg.batch_size, cfg.seed, 0,
                                        world=world, rank=rank))
    if steps_per_epoch == 0:
        raise ValueError("no usable train windows")
    trainer = build_trainer(spec, dims, cfg, steps_per_epoch, device, world)
    result = FitResult(n_parameters=sum(p.numel() for p in trainer.model.parameters()),
                       device=str(device))
    start_epoch = resume_state(trainer, out, fingerprint, result) if resume else 0
    if rank == 0:
        _restore_outputs(out, result)
    budget = [stop_after_steps] if stop_after_steps is not None else None
    want_streams = cfg.align_weight > 0
    for epoch in range(start_epoch, cfg.epochs):
        if patience_exhausted(result.history, cfg.patience):
            log.info("early stop: no better val %s for %d epochs", cfg.select_metric,
                     cfg.patience)
            break
        began = time.perf_counter()
        row = train_epoch(trainer, train_ds, cfg, epoch, world, rank, result, budget,
                          want_streams)
        if rank == 0:
            _validate_and_save(trainer, row, cfg, post, thresholds, val_ds, out, result,
                               fingerprint, epoch, time.perf_counter() - began)
            if on_epoch is not None:
                on_epoch(row)
        if world > 1:
            import torch.distributed as dist

            dist.barrier()
            _sync_history(result, out)
    return result


def _sync_history(result: FitResult, out: Path) -> None:
    """Other ranks learn the history (for early stopping) from rank 0's checkpoint."""
    import torch.distributed as dist

    if dist.get_rank() == 0:
        return
    loaded = checkpoint.load_checkpoint(out, "cpu")
    if loaded is not None:
        result.history, result.best = list(loaded[1]["history"]), dict(loaded[1]["best"])


def _validate_and_save(trainer: Trainer, row: dict, cfg: TrainConfig,
                       post: PostprocessConfig, thresholds: tuple[float, ...],
                       val_ds: WindowDataset, out: Path, result: FitResult, fingerprint: str,
                       epoch: int, seconds: float) -> None:
    """Rank 0's end of epoch: val scores, best weights, curves, checkpoint."""
    model = trainer.model
    if len(val_ds):
        outputs, val_loss = run_model(model, val_ds, trainer.device, max(1, cfg.batch_size),
                                      cfg.loss(), trainer.amp, cfg.num_workers)
        metrics = score_outputs(val_ds, outputs, post, thresholds)
        row.update({"val_loss": val_loss, **{f"val_{m}": metrics[m]["avg"]
                                              for m in ("precision", "recall", "f1", "map")}})
        improved = _better(row, result.best, cfg.select_metric)
    else:
        log.warning("no usable val windows: keeping the last epoch as the model")
        improved = True
    row["best"] = int(improved)
    if improved:
        checkpoint.save_weights(out / BEST_WEIGHTS, model.state_dict())
        result.best = {k: v for k, v in row.items() if k != "best"}
    result.history.append(row)
    io.write_text(out / CURVES, _curves_csv(result.history))
    checkpoint.save_checkpoint(out, model.state_dict(), best=out / BEST_WEIGHTS, state={
        "epoch": epoch + 1, "fingerprint": fingerprint,
        "optimizer": trainer.optimizer.state_dict(), "scheduler": trainer.scheduler.state_dict(),
        "scaler": trainer.scaler.state_dict(), "rng": _rng_state(),
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
