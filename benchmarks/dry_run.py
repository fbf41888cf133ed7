"""Whole-dataset dry run: prepare, train, predict and evaluate at two scales, time and memory.

    python benchmarks/dry_run.py                                 # 250 and 1,000 videos
    python benchmarks/dry_run.py --scales 40 160                 # quicker
    python benchmarks/dry_run.py --reuse /tmp/repurpose-bench/n1000   # shards left by loader.py

At each scale it writes split files shaped like Repurpose-10K's (every entry of a real video
from the shipped val/test files, drawn with replacement; videos dealt 80/10/10 to
train/val/test like the real ~9K/1.1K/1.1K samples) and random float16 feature shards at the
paper's dims (512/2048/384, 256 shards) through the real writer, then runs the stages' own
`main` functions, each in a fresh process: `prepare` (split JSON -> windows table), `train`
(one epoch of params.yaml's `--arch` model, default linear, over every train window, val
scored), `predict` (test split) and `evaluate` (with baselines). Per step: wall seconds,
peak RSS, cost per video, and the ratio between the two scales against the ratio of videos
(1.0 per 1.0 = linear), then the linear projection to the full dataset (8.4K videos,
16.3M s). No signal in the vectors: the metrics are noise; only time and memory mean
something.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FULL_VIDEOS = 8400
FULL_SECONDS = 16.3e6
PAPER = {"visual": 512, "audio": 2048, "text": 384}
REAL = sorted((Path(__file__).resolve().parents[2] / "shared/data/repurpose10k").glob("*.json"))
STEPS = ("prepare", "train", "predict", "evaluate")


def generate(data: Path, n_videos: int, n_shards: int, seed: int) -> None:
    """Split files (`data/splits/*.json`) and shards (`data/features/`) for `n_videos`."""
    from repurpose.quality.shapes import feature_rows, real_like_splits, write_feature_shards

    splits = real_like_splits(REAL, n_videos, seed)
    (data / "splits").mkdir(parents=True, exist_ok=True)
    for name, items in splits.items():
        (data / "splits" / f"{name}.json").write_text(json.dumps(items))
    rows = feature_rows(e for items in splits.values() for e in items)
    write_feature_shards(data / "features", rows, PAPER, n_shards, seed=seed)


def write_params(path: Path, batch: int, arch: str) -> None:
    """The repository's params.yaml (its small CPU models and post-processing) with `arch`,
    one epoch of `batch` windows, no warm-up, on CPU, and `prepare` reading train/val/test."""
    import yaml

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params["prepare"] = {"dataset": "dry-run", "splits": ["train", "val", "test"]}
    params["model"]["arch"] = arch
    params["train"].update({"epochs": 1, "warmup_epochs": 0, "patience": 0, "batch_size": batch,
                            "num_workers": 0, "device": "cpu"})
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def run_step(step: str, data: Path, work: Path) -> None:
    """Call the stage's own `main` as its DVC command would (paths of `work` and `data`)."""
    from argparse import Namespace

    params = work / "params.yaml"
    windows = work / "prepared" / "windows.parquet"
    if step == "prepare":
        from stages.prepare import main
        args = Namespace(params=params, splits_dir=data / "splits", out=work / "prepared")
    elif step == "train":
        from stages.train import main
        args = Namespace(params=params, windows=windows, features=data / "features", ledger=None,
                         out=work / "models", train_split="train", val_split="val",
                         resume=False, arch=None)
    elif step == "predict":
        from stages.predict import main
        args = Namespace(params=params, model=work / "models", windows=windows,
                         features=data / "features", ledger=None, split="test",
                         out=work / "predictions.jsonl", device="cpu", batch_size=8)
    else:
        from stages.evaluate import main
        args = Namespace(params=params, gt=data / "splits" / "test.json",
                         pred=work / "predictions.jsonl", out=work / "metrics.json",
                         buckets_out=None, baselines_out=work / "baselines.json",
                         baseline_lengths=None)
    rc = main(args)
    if rc:
        raise SystemExit(rc)


def step_in_process(step: str, data: Path, work: Path, threads: int) -> dict:
    """One step in a fresh interpreter: wall seconds and peak RSS (its own and its children's)."""
    cmd = [sys.executable, __file__, "--step", step, "--data", str(data), "--work", str(work),
           "--threads", str(threads)]
    began = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise RuntimeError(f"step {step} failed ({done.returncode})")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = time.perf_counter() - began
    result["log"] = [line for line in done.stdout.splitlines()[:-1] if line.strip()][-3:]
    return result


def one_step(a: argparse.Namespace) -> dict:
    """`--step`: run it here, return wall seconds and peak RSS."""
    import torch

    torch.set_num_threads(a.threads)
    began = time.perf_counter()
    run_step(a.step, a.data, a.work)
    wall = time.perf_counter() - began
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"wall_s": wall, "peak_rss_mb": max(me, kids) / 1024}


def scale_run(n: int, data: Path, work: Path, a: argparse.Namespace) -> list[dict]:
    """Every step at one scale (data generated unless present)."""
    from repurpose.quality.shapes import feature_rows

    if not (data / "features").is_dir():
        began = time.perf_counter()
        generate(data, n, a.shards, a.seed)
        print(f"  generated {n} videos in {time.perf_counter() - began:.0f} s", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    write_params(work / "params.yaml", a.batch, a.arch)
    entries = [e for p in sorted((data / "splits").glob("*.json"))
               for e in json.loads(p.read_text())]
    rows = feature_rows(entries)
    seconds = int(sum(len(r) for r in rows.values()))
    out = []
    for step in STEPS:
        r = step_in_process(step, data, work, a.threads)
        out.append({"step": step, "videos": len(rows), "seconds": seconds,
                    "windows": len(entries), **r})
        print(f"  {n} videos, {step}: {r['wall_s']:.1f} s, {r['peak_rss_mb']:.0f} MB, load "
              f"{os.getloadavg()[0]:.2f} | {' / '.join(r['log'])[:150]}", flush=True)
    return out


def print_table(small: list[dict], large: list[dict]) -> None:
    """Step, videos, seconds, wall, peak RSS, per-video cost, ratio between the scales."""
    print(f"{'step':<9} {'videos':>6} {'seconds':>10} {'wall s':>8} {'peak RSS MB':>11} "
          f"{'ms/video':>9} {'wall ratio':>10} {'RSS ratio':>9} {'videos ratio':>12} "
          f"{'full-size wall s':>16}")
    for s, big in zip(small, large, strict=True):
        for r in (s, big):
            print(f"{r['step']:<9} {r['videos']:>6} {r['seconds']:>10,} {r['wall_s']:>8.2f} "
                  f"{r['peak_rss_mb']:>11.0f} {1e3 * r['wall_s'] / r['videos']:>9.1f}", end="")
            if r is big:
                print(f" {big['wall_s'] / s['wall_s']:>10.2f} "
                      f"{big['peak_rss_mb'] / s['peak_rss_mb']:>9.2f} "
                      f"{big['videos'] / s['videos']:>12.2f} "
                      f"{big['wall_s'] * FULL_SECONDS / big['seconds']:>16.0f}")
            else:
                print()


def main(argv: list[str] | None = None) -> int:
    """Both scales, the table, the projection; delete what was generated."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scales", type=int, nargs=2, default=[250, 1000], help="videos per scale")
    p.add_argument("--shards", type=int, default=256, help="shards per modality (real: 256)")
    p.add_argument("--batch", type=int, default=8, help="train.batch_size")
    p.add_argument("--arch", default="linear", help="model.arch (linear: the loader, indexing, "
                   "validation and writing dominate, not the network)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per step")
    p.add_argument("--root", type=Path, default=Path("/tmp/repurpose-dry-run"))
    p.add_argument("--reuse", type=Path, help="data folder (splits/, features/) of the larger "
                   "scale, e.g. left by `loader.py --keep` (not deleted)")
    p.add_argument("--keep", action="store_true", help="keep what was generated")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.step:
        print(json.dumps(one_step(a)))
        return 0
    print(f"arch {a.arch}, batch {a.batch}; load {os.getloadavg()}, {os.cpu_count()} CPUs, "
          f"torch threads {a.threads}, "
          f"disk free {shutil.disk_usage(a.root.parent).free / 1e9:.0f} GB")
    results = []
    try:
        for k, n in enumerate(sorted(a.scales)):
            data = a.reuse if (k == 1 and a.reuse) else a.root / f"n{n}"
            results.append(scale_run(n, data, a.root / f"work-n{n}", a))
    finally:
        if not a.keep:
            shutil.rmtree(a.root, ignore_errors=True)
            print(f"deleted {a.root}")
    print_table(*results)
    big = results[1][0]
    print(f"full size: x{FULL_SECONDS / big['seconds']:.1f} the seconds, "
          f"x{FULL_VIDEOS / big['videos']:.1f} the videos of the larger scale; load after "
          f"{os.getloadavg()}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
