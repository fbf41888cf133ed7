"""Stage `train`: windows + feature shards -> models/ (best weights on val, model.json, curves).

Reads params `model`, `train`, `postprocess` and `evaluate.thresholds` (val metrics choose the
best epoch). Writes `<out>/model.safetensors`, `<out>/model.json`, `<out>/curves.csv` and the
resume state `<out>/last/`; an interrupted run continues from there when params, data and code
are unchanged. Multi-process: `torchrun --nproc_per_node N -m repurpose.training.ddp` with
the same arguments. torch is imported only when the stage runs.
"""

from __future__ import annotations

import argparse

from repurpose.runner import Mapper
from repurpose.training.ddp import add_train_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Paths of the train stage."""
    add_train_arguments(parser)


def main(args: argparse.Namespace, mapper: Mapper | None = None) -> int:
    """Train and print where the best model is."""
    del mapper  # one training process; multi-process goes through torchrun
    from repurpose.params import load_params
    from repurpose.training.train import train_from_settings, train_settings

    settings = train_settings(load_params(args.params), args.arch)  # parsed once, here
    result = train_from_settings(settings, args.windows, args.features, args.ledger, args.out,
                                 train_split=args.train_split, val_split=args.val_split,
                                 resume=args.resume)
    best = result.best
    scores = ", ".join(f"{k} {best[k]:.4f}" for k in ("val_map", "val_precision", "val_loss")
                       if k in best)
    resumed = (f", resumed after epoch {result.resumed_from_epoch}"
               if result.resumed_from_epoch is not None else "")
    print(f"train: {len(result.history)} epochs on {result.device}{resumed}; best epoch "
          f"{best.get('epoch')} ({scores}) -> {args.out}")
    return 0
