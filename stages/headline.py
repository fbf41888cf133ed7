"""Stage `headline`: evaluate's per-threshold metrics -> the four averages DVC shows.

    repurpose headline --metrics metrics/test.json --out metrics/headline.json

Reads no params. The output is small on purpose: `dvc exp show` and `dvc metrics diff` list
precision, recall, f1 and map (averages over tIoU 0.5-0.9) in four columns.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from repurpose import io
from repurpose.errors import UserError
from repurpose.evaluation.headline import METRICS, headline
from repurpose.runner import Mapper


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Input and output of the headline stage."""
    parser.add_argument("--metrics", required=True, type=Path, help="evaluate's metrics JSON")
    parser.add_argument("--out", required=True, type=Path, help="headline metrics JSON to write")


def main(args: argparse.Namespace, mapper: Mapper | None = None) -> int:
    """Write the averages of `--metrics` to `--out` and print them."""
    del mapper  # no per-video work
    try:
        result = json.loads(args.metrics.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{args.metrics}: cannot read the metrics JSON ({exc})") from exc
    numbers = headline(result) if isinstance(result, dict) else {}
    missing = [m for m in METRICS if m not in numbers]
    if missing:
        raise UserError(f"{args.metrics}: no average for {', '.join(missing)}")
    io.write_json(args.out, numbers)
    print("headline: " + "  ".join(f"{k} {v:.4f}" for k, v in numbers.items()))
    return 0
