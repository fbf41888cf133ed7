"""Training-step and inference timing of the clip model at the paper's sizes, in one run.

    python benchmarks/train_step.py                      # batch 16, 1,800-s windows, 3 steps
    python benchmarks/train_step.py --batch 1 --steps 2  # what a 2-core CPU can afford

For each attention implementation (`sdpa`: torch scaled_dot_product_attention; `naive`:
softmax(QK^T)V materialising the [B, H, T, T] scores) it times full training steps (forward,
focal + DIoU loss, backward, Adam step) on random inputs with the paper's dims (visual 512,
audio 2048, text 384) and sizes (82.6M parameters), after warm-up steps; then the per-window
inference time (batch 1, no grad) and the post-processing time (threshold, top-k, Soft-NMS,
cap) per window, on outputs shaped like a trained model's (1,000 candidates: a worst case).
CUDA (with bf16 autocast) when present, else CPU: on CPU a paper-size step takes minutes at
batch 16 and the naive variant may not fit in memory (about 1.7 GB of scores per attention
layer at batch 16); an out-of-memory is reported as such. This script keeps the mmct-only
attention comparison and inference timing; every arch's train step with FLOP counts, the
CLIP/Cnn14 encoders and the loader feeding the device are in benchmarks/gpu.py.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repurpose.model.config import PAPER_DIMS, REPURPOSE10K, ModelConfig  # noqa: E402
from repurpose.model.losses import LossConfig, compute_loss  # noqa: E402
from repurpose.model.network import RepurposeNet, count_parameters  # noqa: E402
from repurpose.model.postprocess import PostprocessConfig, postprocess_window  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _inputs(batch: int, seconds: int, device: torch.device, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    feats = {m: torch.randn(batch, seconds, d, generator=g).to(device)
             for m, d in PAPER_DIMS.items()}
    labels = torch.zeros(batch, seconds, dtype=torch.long)
    targets = torch.zeros(batch, seconds, 2)
    for b in range(batch):  # a 36-s clip every 120 s, like the dataset's median clip
        for start in range(10, seconds - 40, 120):
            labels[b, start:start + 37] = 1
            s = torch.arange(37, dtype=torch.float32)
            targets[b, start:start + 37, 0] = s
            targets[b, start:start + 37, 1] = 36 - s
    mask = torch.ones(batch, seconds, dtype=torch.bool)
    return {**feats, "labels": labels.to(device), "targets": targets.to(device),
            "mask": mask.to(device)}


def _amp(device: torch.device) -> tuple[bool, torch.dtype]:
    if device.type != "cuda":
        return False, torch.float32
    return True, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def time_training(cfg: ModelConfig, batch: int, seconds: int, steps: int, warmup: int,
                  device: torch.device) -> dict:
    """Mean/min seconds per training step (or the error that stopped it)."""
    torch.manual_seed(0)
    model = RepurposeNet(cfg, PAPER_DIMS).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
    data = _inputs(batch, seconds, device)
    amp = _amp(device)
    loss_cfg = LossConfig()
    times = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        for step in range(warmup + steps):
            _sync(device)
            began = time.perf_counter()
            with torch.autocast(device.type, dtype=amp[1], enabled=amp[0]):
                logits, offsets = model(data["visual"], data["audio"], data["text"],
                                        data["mask"])
            loss = compute_loss(logits, offsets, data["labels"], data["targets"], data["mask"],
                                loss_cfg)["total"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            _sync(device)
            if step >= warmup:
                times.append(time.perf_counter() - began)
    except (torch.OutOfMemoryError, RuntimeError, MemoryError) as exc:
        if "memory" not in str(exc).lower() and not isinstance(exc, MemoryError):
            raise
        return {"error": f"out of memory after {len(times)} timed steps"}
    finally:
        del model, opt
    out = {"mean_s": statistics.mean(times), "min_s": min(times), "steps": len(times),
           "windows_per_s": batch / statistics.mean(times)}
    if device.type == "cuda":
        out["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


@torch.no_grad()
def time_inference(cfg: ModelConfig, seconds: int, windows: int, device: torch.device) -> dict:
    """Seconds per window for the forward pass (batch 1) and for post-processing."""
    torch.manual_seed(0)
    model = RepurposeNet(cfg, PAPER_DIMS).to(device).eval()
    amp = _amp(device)
    post = PostprocessConfig()
    forward, postprocess, kept = [], [], []
    for k in range(windows + 1):  # the first window warms up
        data = _inputs(1, seconds, device, seed=k)
        _sync(device)
        began = time.perf_counter()
        with torch.autocast(device.type, dtype=amp[1], enabled=amp[0]):
            logits, offsets = model(data["visual"], data["audio"], data["text"], data["mask"])
        torch.sigmoid(logits.float())[0].cpu().numpy()
        offsets.float()[0].cpu().numpy()
        _sync(device)
        # untrained outputs are near-constant; post-process outputs shaped like a trained
        # model's instead: half the seconds above the threshold, offsets of 5-40 s each, so
        # top-k keeps 1,000 candidates for Soft-NMS (a worst case)
        rng = np.random.default_rng(k)
        scores = rng.uniform(0.0, 1.0, seconds)
        offs = rng.uniform(5.0, 40.0, (seconds, 2))
        mid = time.perf_counter()
        segs = postprocess_window(scores, offs, float(seconds), post)
        end = time.perf_counter()
        if k:
            forward.append(mid - began)
            postprocess.append(end - mid)
            kept.append(len(segs))
    return {"forward_s": statistics.mean(forward), "postprocess_ms": 1e3 * statistics.mean(
        postprocess), "segments": statistics.mean(kept), "windows": windows}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (and optionally save) the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="windows per step (paper 16)")
    parser.add_argument("--seconds", type=int, default=1800, help="window length (paper 1800)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--infer-windows", type=int, default=3, help="windows timed at inference")
    parser.add_argument("--attention", nargs="+", default=["sdpa", "naive"],
                        choices=["sdpa", "naive"])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cpu":
        warnings.warn("running on CPU: paper-size training steps are slow (minutes at batch 16) "
                      "and the naive attention may run out of memory; try --batch 1 --steps 2",
                      stacklevel=1)
    params = count_parameters(RepurposeNet(REPURPOSE10K, PAPER_DIMS))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(f"device {device} ({name or platform.machine()}, {torch.get_num_threads()} threads), "
          f"torch {torch.__version__}, {params / 1e6:.1f}M parameters, batch {args.batch} x "
          f"{args.seconds} s, {args.steps} timed steps after {args.warmup} warm-up")
    results: dict = {"device": str(device), "device_name": name, "torch": torch.__version__,
                     "threads": torch.get_num_threads(), "parameters": params,
                     "batch": args.batch, "seconds": args.seconds, "train": {}, "inference": {}}
    for impl in args.attention:
        cfg = ModelConfig(**{**REPURPOSE10K.to_dict(), "attention": impl})
        train = time_training(cfg, args.batch, args.seconds, args.steps, args.warmup, device)
        results["train"][impl] = train
        if "error" in train:
            print(f"  train step  {impl:<5}: {train['error']}")
        else:
            peak = f", peak {train['peak_gib']:.1f} GiB" if "peak_gib" in train else ""
            print(f"  train step  {impl:<5}: {train['mean_s']:.3f} s mean, {train['min_s']:.3f} s "
                  f"min ({train['windows_per_s']:.2f} windows/s{peak})")
    for impl in args.attention:
        cfg = ModelConfig(**{**REPURPOSE10K.to_dict(), "attention": impl})
        inf = time_inference(cfg, args.seconds, args.infer_windows, device)
        results["inference"][impl] = inf
        print(f"  inference   {impl:<5}: {inf['forward_s']:.3f} s forward + "
              f"{inf['postprocess_ms']:.2f} ms post-processing per {args.seconds}-s window "
              f"({inf['segments']:.1f} segments kept)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    results["max_rss_gib"] = rss
    print(f"  process peak RSS {rss:.1f} GiB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
