"""Stage `predict`: a trained model over one split -> predictions JSONL (one line per window).

Reads params `postprocess`. Each line: `{"youtube_id", "window": [start, end], "segments":
[[start, end, score], ...]}` with the window in source seconds and segments in window seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from repurpose.runner import Mapper


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Paths of the predict stage."""
    parser.add_argument("--model", required=True, type=Path, help="trained model folder (models)")
    parser.add_argument("--windows", required=True, type=Path,
                        help="windows table (data/prepared/windows.parquet)")
    parser.add_argument("--features", required=True, type=Path,
                        help="folder with visual/, audio/, text/ shards (data/features)")
    parser.add_argument("--ledger", type=Path, default=None,
                        help="download ledger; missing = no check")
    parser.add_argument("--split", default="test", help="split to predict (default: test)")
    parser.add_argument("--out", required=True, type=Path, help="predictions JSONL to write")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")


def main(args: argparse.Namespace, mapper: Mapper | None = None) -> int:
    """Predict and print the counts."""
    del mapper
    from repurpose.model.postprocess import PostprocessConfig
    from repurpose.params import load_section
    from repurpose.training.predict import predict_split

    post = PostprocessConfig.from_section(load_section(args.params, "postprocess"))
    funnel = predict_split(args.model, args.windows, args.features, args.ledger, args.split,
                           args.out, post, device=args.device, batch_size=args.batch_size)
    print(f"predict: {funnel.windows} '{args.split}' windows, {funnel.windows_used} predicted, "
          f"{funnel.windows - funnel.windows_used} skipped (empty lines) -> {args.out}")
    return 0
