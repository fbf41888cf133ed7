"""GPU check in one short script: train steps of every model arch, CLIP ViT-B/32 and Cnn14 speed,
and the training loader feeding the device; FLOPs so a step time can be projected.

    python benchmarks/gpu.py                                      # CUDA, paper sizes
    python benchmarks/gpu.py --device cpu --batch 1 --seconds 300 --steps 1 \
        --encoder-batch 4 --loader-batches 2                      # a 2-core CPU, reduced

Train step (forward, the arch's own loss, backward, Adam) at batch `--batch` x `--seconds`
with the paper's input dims (512/2048/384), bf16 autocast on CUDA (float32 on CPU),
torch SDPA attention; `mmct` at the paper's 82.6M-parameter sizes, `linear` and `tal` at
their params.yaml sizes. FLOPs are counted with torch.utils.flop_counter.FlopCounterMode for
one step at the run's size, and for the forward pass at `--paper-batch` x `--paper-seconds`
on the meta device (no compute), so a paper-size step (~3x its forward) can be projected
from any device. The encoders are the real classes (transformers' CLIPVisionModelWithProjection
at ViT-B/32 sizes, panns_inference's Cnn14) with random weights: speed only, never features.
The loader row times `WindowDataset` + `collate` + copy to the device over real-like
synthetic shards at paper dims (`repurpose.quality.shapes`), alone and with a train step
of `--loader-arch` (mmct by default) on every batch.
Every row names the device (CUDA card, or the CPU model from /proc/cpuinfo).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repurpose.inference import to_device  # noqa: E402
from repurpose.model.config import PAPER_DIMS, REPURPOSE10K  # noqa: E402
from repurpose.model.registry import ARCHS, ModelSpec, arch_spec  # noqa: E402
from repurpose.splits.labels import window_labels, window_targets  # noqa: E402
from repurpose.training.config import TrainConfig  # noqa: E402
from repurpose.training.dataset import collate  # noqa: E402

REAL = sorted((Path(__file__).resolve().parents[2] / "shared/data/repurpose10k").glob("*.json"))


def device_name(device: torch.device) -> str:
    """The CUDA card's name, or the CPU model from /proc/cpuinfo."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    return "cpu"


def sync(device: torch.device) -> None:
    """Wait for queued device work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def amp_for(device: torch.device) -> tuple[bool, torch.dtype]:
    """bf16 autocast on CUDA (fp16 where bf16 is missing), none on CPU."""
    if device.type != "cuda":
        return False, torch.float32
    return True, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def make_batch(batch: int, seconds: int, device: torch.device, seed: int = 0) -> dict:
    """A collated batch like the loader's: random vectors, a 36-s clip every 120 s."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(batch):
        clips = [(float(s), float(s + 36)) for s in range(10, seconds - 40, 120)] or [(1.0, 2.0)]
        labels = window_labels(float(seconds - 1), clips)
        items.append({"window_id": f"w{i}", "duration": float(seconds - 1), "index": i,
                      **{m: torch.from_numpy(rng.standard_normal((len(labels), d),
                                                                 dtype=np.float32))
                         for m, d in PAPER_DIMS.items()},
                      "labels": torch.from_numpy(labels.astype(np.int64)),
                      "targets": torch.from_numpy(window_targets(float(seconds - 1), clips)),
                      "clips": torch.tensor(clips, dtype=torch.float32)})
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v
            for k, v in collate(items).items()}


def build(arch: str, device: torch.device | str) -> torch.nn.Module:
    """`mmct` at the paper's sizes; other archs at their config defaults (= params.yaml)."""
    config = REPURPOSE10K if arch == "mmct" else arch_spec(arch).config_class()()
    return ModelSpec(arch, config).build(PAPER_DIMS).to(device)


def step_fn(model: torch.nn.Module, batch: dict, device: torch.device):  # noqa: ANN201
    """One training step (forward, loss, backward, Adam) as a closure."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_cfg = TrainConfig().loss()
    amp = amp_for(device)

    def step() -> float:
        with torch.autocast(device.type, dtype=amp[1], enabled=amp[0]):
            out = model(batch["visual"], batch["audio"], batch["text"], batch["mask"])
        parts = model.loss(out, batch, loss_cfg)
        opt.zero_grad(set_to_none=True)
        parts["total"].backward()
        opt.step()
        return float(parts["total"].detach())
    return step


def timed(fn, steps: int, warmup: int, device: torch.device) -> dict:  # noqa: ANN001
    """Mean/min seconds per call after `warmup` untimed calls, and peak device memory."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps):
        sync(device)
        began = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - began)
    out = {"mean_s": statistics.mean(times), "min_s": min(times)}
    if device.type == "cuda":
        out["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


def count_flops(fn) -> int:  # noqa: ANN001
    """FLOPs of one call of `fn` (torch's flop counter: matmuls, convolutions, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def paper_forward_flops(arch: str, batch: int, seconds: int) -> int | None:
    """Forward FLOPs at batch x seconds on the meta device (no compute); None if the arch's
    forward needs real values."""
    try:
        model = build(arch, "meta")
        inputs = {m: torch.empty(batch, seconds, d, device="meta") for m, d in PAPER_DIMS.items()}
        mask = torch.ones(batch, seconds, dtype=torch.bool, device="meta")
        with torch.no_grad():
            return count_flops(lambda: model(inputs["visual"], inputs["audio"], inputs["text"],
                                             mask))
    except Exception:  # noqa: BLE001 - data-dependent ops cannot run on meta
        return None


def train_rows(a: argparse.Namespace, device: torch.device) -> list[dict]:
    """Every arch: step time at the run's size, its FLOPs, and paper-size forward FLOPs."""
    rows = []
    for arch in a.archs:
        torch.manual_seed(0)
        model = build(arch, device).train()
        batch = make_batch(a.batch, a.seconds, device)
        step = step_fn(model, batch, device)
        flops = count_flops(step)  # also the first warm-up step
        t = timed(step, a.steps, max(0, a.warmup - 1), device)
        params = sum(p.numel() for p in model.parameters())
        paper = paper_forward_flops(arch, a.paper_batch, a.paper_seconds)
        rows.append({"what": f"train step {arch}", "config": f"{params / 1e6:.1f}M params, "
                     f"batch {a.batch} x {a.seconds} s", "per_s": 1 / t["mean_s"],
                     "items_per_s": a.batch / t["mean_s"], "unit": "windows", **t,
                     "flops": flops, "paper_fwd_flops": paper})
        del model, step, batch
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def encoder_rows(a: argparse.Namespace, device: torch.device) -> list[dict]:
    """CLIP ViT-B/32 images/s and Cnn14 one-second segments/s (random weights, speed only)."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from repurpose.features.panns import SAMPLE_RATE, new_cnn14

    amp = amp_for(device)
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(attn_implementation="sdpa"))
    cnn = new_cnn14()
    cases = [("CLIP ViT-B/32", clip, torch.randn(a.encoder_batch, 3, 224, 224), "frames"),
             ("Cnn14", cnn, torch.randn(a.encoder_batch, SAMPLE_RATE) * 0.1, "1-s segments")]
    rows = []
    for name, model, x, unit in cases:
        model = model.to(device).eval()
        x = x.to(device)

        def forward(model: torch.nn.Module = model, x: torch.Tensor = x) -> None:
            with torch.inference_mode(), torch.autocast(device.type, dtype=amp[1],
                                                        enabled=amp[0]):
                model(x)
        flops = count_flops(forward)
        t = timed(forward, a.steps, a.warmup, device)
        params = sum(p.numel() for p in model.parameters())
        rows.append({"what": f"{name} forward", "config": f"{params / 1e6:.1f}M params, batch "
                     f"{a.encoder_batch}", "per_s": 1 / t["mean_s"],
                     "items_per_s": a.encoder_batch / t["mean_s"], "unit": unit, **t,
                     "flops": flops})
        model.cpu()
    return rows


def loader_rows(a: argparse.Namespace, device: torch.device) -> list[dict]:
    """The training loader over real-like shards: to the device alone, and with mmct steps."""
    from torch.utils.data import DataLoader

    from repurpose.quality.shapes import feature_rows, real_like_splits, write_feature_shards
    from repurpose.splits.schema import load_split
    from repurpose.splits.windows import windows_table, write_windows
    from repurpose.training.dataset import WindowDataset, epoch_batches
    from repurpose.training.index import index_features, load_plans

    n = a.batch * a.loader_batches
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        items = real_like_splits(REAL, n, seed=1, shares=(("train", 1.0),))["train"]
        (root / "train.json").write_text(json.dumps(items))
        write_windows(root / "w.parquet",
                      windows_table(load_split(root / "train.json", "train").unique_entries()))
        write_feature_shards(root / "f", feature_rows(items), PAPER_DIMS, n_shards=16)
        plans, _ = load_plans(root / "w.parquet", "train", index_features(root / "f"), None)
        batches = epoch_batches(len(plans), a.batch, seed=0, epoch=0)[: a.loader_batches]
        torch.manual_seed(0)
        model = build(a.loader_arch, device).train()
        rows = []
        for train in (False, True):  # a fresh dataset each pass: no warm video cache
            loader = DataLoader(WindowDataset(plans, root / "f"), batch_sampler=batches,
                                collate_fn=collate,
                                num_workers=a.workers, pin_memory=device.type == "cuda")
            began, windows, seconds = time.perf_counter(), 0, 0
            for batch in loader:
                b = to_device(batch, device)  # as training does: float32 on the device
                if train:
                    step_fn(model, b, device)()
                windows += len(batch["index"])
                seconds += int(batch["lengths"].sum())
            sync(device)
            wall = time.perf_counter() - began
            rows.append({"what": "loader -> device" + (f" + {a.loader_arch} step" if train else ""),
                         "config": f"{a.workers} workers, batch {a.batch}, mean window "
                         f"{seconds / max(1, windows):.0f} s", "per_s": len(batches) / wall,
                         "items_per_s": windows / wall, "unit": "windows",
                         "mean_s": wall / len(batches), "min_s": float("nan"), "flops": None})
    return rows


def print_rows(rows: list[dict], name: str) -> None:
    """One line per measurement, each naming the device."""
    print(f"{'device':<28} {'what':<28} {'config':<40} {'steps/s':>8} {'items/s':>9} "
          f"{'ms/step':>9} {'GFLOP/step':>10} {'TFLOP/s':>8} {'peak GiB':>8}")
    for r in rows:
        tflops = r["flops"] / r["mean_s"] / 1e12 if r.get("flops") else float("nan")
        gflop = r["flops"] / 1e9 if r.get("flops") else float("nan")
        print(f"{name[:28]:<28} {r['what']:<28} {r['config'][:40]:<40} {r['per_s']:>8.3f} "
              f"{r['items_per_s']:>9.2f} {1e3 * r['mean_s']:>9.1f} {gflop:>10.1f} "
              f"{tflops:>8.3f} {r.get('peak_gib', float('nan')):>8.2f}  ({r['unit']})")


def print_projection(rows: list[dict], a: argparse.Namespace, name: str) -> None:
    """Paper-size step FLOPs (3x the meta-device forward) and the step time they imply."""
    print(f"projection to batch {a.paper_batch} x {a.paper_seconds} s (train step ~ 3x forward "
          f"FLOPs; counted on the meta device):")
    for r in rows:
        if not r["what"].startswith("train step"):
            continue
        if r.get("paper_fwd_flops") is None:
            print(f"  {r['what']}: forward needs real values (not countable on meta); scale "
                  f"this run's {r['flops'] / 1e9:.1f} GFLOP by the batch x seconds ratio")
            continue
        step = 3 * r["paper_fwd_flops"]
        achieved = r["flops"] / r["mean_s"]
        print(f"  {r['what']}: {step / 1e9:,.0f} GFLOP per step; at this run's "
              f"{achieved / 1e12:.3f} TFLOP/s on {name}: {step / achieved:.1f} s; at 100 / 300 "
              f"TFLOP/s sustained bf16: {step / 100e12 * 1e3:.0f} / {step / 300e12 * 1e3:.0f} ms")


def main(argv: list[str] | None = None) -> int:
    """Run every part and print the rows and the projection."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--batch", type=int, default=16, help="windows per step (paper 16)")
    p.add_argument("--seconds", type=int, default=1800, help="window length (paper 1800)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (>= 1)")
    p.add_argument("--archs", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    p.add_argument("--paper-batch", type=int, default=16)
    p.add_argument("--paper-seconds", type=int, default=1800)
    p.add_argument("--encoder-batch", type=int, default=256, help="frames / segments per call")
    p.add_argument("--loader-batches", type=int, default=8, help="0 = skip the loader rows")
    p.add_argument("--workers", type=int, default=4, help="loader worker processes")
    p.add_argument("--loader-arch", default="mmct", choices=list(ARCHS),
                   help="arch trained on the loader's batches (real window lengths)")
    p.add_argument("--skip-encoders", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--json", type=Path, help="also write the rows here")
    a = p.parse_args(argv)
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available()
                          else "cpu" if a.device == "auto" else a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    name = device_name(device)
    reduced = a.batch < a.paper_batch or a.seconds < a.paper_seconds
    print(f"device {device}: {name}; torch {torch.__version__}, {torch.get_num_threads()} CPU "
          f"threads, load {os.getloadavg()}; autocast {amp_for(device)}"
          + ("; REDUCED sizes (not the paper's)" if reduced else ""), flush=True)
    rows = train_rows(a, device)
    if not a.skip_encoders:
        rows += encoder_rows(a, device)
    if a.loader_batches:
        rows += loader_rows(a, device)
    print_rows(rows, name)
    print_projection(rows, a, name)
    print(f"load after {os.getloadavg()}")
    if a.json:
        a.json.write_text(json.dumps({"device": name, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
