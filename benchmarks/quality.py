"""Model quality on planted-signal features: every arch, same budget, same held-out windows.

    python benchmarks/quality.py                          # medium level, paper dims, 10 epochs
    python benchmarks/quality.py --levels easy medium hard one-modality --out reports/quality.json
    python benchmarks/quality.py --archs mmct-reference mmct --decoders   # the root cause

Prints, per level, a Markdown table under the reference protocol (threshold 0.5, 10-90 s,
Soft-NMS, per-minute cap) and under the uncapped protocol: precision / recall / F1 / mAP
(averages over tIoU 0.5-0.9), per-second AUC, train time and best epoch for every arch x
decoder, beside random and evenly spaced segments and the ground truth through the cap.
The generator and the runner live in `repurpose.quality` (tests use the same code).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repurpose.quality.bench import (  # noqa: E402
    Budget,
    format_diagnostics,
    format_table,
    run_level,
)
from repurpose.quality.planted import LEVELS, PlantedSpec  # noqa: E402


def main() -> int:
    """Run the benchmark and print the tables."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--levels", nargs="+", default=["medium"], choices=sorted(LEVELS))
    p.add_argument("--archs", nargs="+", default=["linear", "mmct", "tal"])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--train", type=int, default=40, help="train windows")
    p.add_argument("--val", type=int, default=10, help="val windows")
    p.add_argument("--test", type=int, default=24, help="test windows")
    p.add_argument("--max-window", type=int, default=1800)
    p.add_argument("--small-dims", action="store_true", help="dims 64/64/64, not 512/2048/384")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smooth", type=int, default=5, help="runs/hybrid: moving-average width (s)")
    p.add_argument("--gap", type=int, default=0,
                   help="runs/hybrid: runs at most this many seconds apart merge")
    p.add_argument("--strength", type=float, default=None,
                   help="override the levels' per-second signal strength (SNR)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--set", nargs="*", default=[], metavar="ARCH.KEY=VALUE",
                   help="override an arch config value, e.g. mmct.head_activation=true")
    p.add_argument("--out", type=Path, default=None, help="write all rows as JSON here")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("repurpose.training.loop").setLevel(logging.INFO)
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides: dict[str, dict] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        arch, _, name = key.partition(".")
        overrides.setdefault(arch, {})[name] = yaml.safe_load(value)
    budget = Budget(epochs=args.epochs, d_model=args.d_model, batch_size=args.batch_size,
                    lr=args.lr, seed=args.seed, smooth=args.smooth, gap=args.gap,
                    overrides=overrides)
    spec = PlantedSpec(counts={"train": args.train, "val": args.val, "test": args.test},
                       max_window=args.max_window, seed=args.seed)
    if args.small_dims:
        spec = replace(spec, dims={"visual": 64, "audio": 64, "text": 64})
    print(f"# quality benchmark: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, budget "
          f"{asdict(budget)}, windows {spec.counts}, dims {spec.dims}")
    results = {}
    for level in args.levels:
        began = time.perf_counter()
        difficulty = LEVELS[level]
        if args.strength is not None:
            difficulty = replace(difficulty, strength=args.strength)
        with tempfile.TemporaryDirectory(prefix="quality-") as tmp:
            table = run_level(Path(tmp), difficulty, args.archs, budget, spec)
        results[level] = table
        for protocol, rows in table.items():
            print(f"\n## {level} ({difficulty}), {protocol} protocol\n")
            print(format_table(rows))
        print("\n" + format_diagnostics(table["capped"]))
        print(f"\n({level}: {time.perf_counter() - began:.0f} s)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"budget": asdict(budget), "spec": asdict(spec),
                                        "results": results}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
