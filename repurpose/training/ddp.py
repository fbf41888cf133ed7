"""Multi-process training: `torchrun --nproc_per_node N -m repurpose.training.ddp ARGS`.

ARGS are those of `repurpose train` (`--params --windows --features --ledger --out`). Each
process trains on its share of every batch (`train.batch_size` is the global batch), gradients
are averaged by DistributedDataParallel (NCCL on CUDA, gloo on CPU), rank 0 validates and
writes the outputs. Runs without Prefect (torchrun owns the processes).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from repurpose.errors import UserError
from repurpose.params import DEFAULT_PARAMS


def build_parser() -> argparse.ArgumentParser:
    """The arguments of `repurpose train`, plus --params."""
    parser = argparse.ArgumentParser(prog="torchrun ... -m repurpose.training.ddp",
                                     description=__doc__.splitlines()[0])
    add_train_arguments(parser)
    parser.add_argument("--params", default=DEFAULT_PARAMS, type=Path)
    return parser


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Paths and switches of training (shared with `stages/train.py`)."""
    parser.add_argument("--windows", required=True, type=Path,
                        help="windows table (data/prepared/windows.parquet)")
    parser.add_argument("--features", required=True, type=Path,
                        help="folder with visual/, audio/, text/ shards (data/features)")
    parser.add_argument("--ledger", type=Path, default=None,
                        help="download ledger (data/videos/ledger.parquet); missing = no check")
    parser.add_argument("--out", required=True, type=Path, help="output folder (models)")
    parser.add_argument("--train-split", default="train", help="split to train on")
    parser.add_argument("--val-split", default="val", help="split choosing the best epoch")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                        help="continue from <out>/last if it matches params, data and code")
    from repurpose.model.registry import ARCHS

    parser.add_argument("--arch", choices=tuple(ARCHS), default=None,
                        help="model arch (default: params model.arch)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of each torchrun process."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from repurpose.params import load_params
    from repurpose.training.train import distributed_env, train_from_settings, train_settings

    world, rank, _ = distributed_env()
    if rank != 0:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        settings = train_settings(load_params(args.params), args.arch)
        result = train_from_settings(settings, args.windows, args.features, args.ledger,
                                     args.out, train_split=args.train_split,
                                     val_split=args.val_split, resume=args.resume)
    except UserError as exc:
        print(f"error (rank {rank}): {exc}", file=sys.stderr)
        return 2
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    if rank == 0:
        print(f"train (ddp, {world} processes): best epoch {result.best.get('epoch')} -> "
              f"{args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
