"""Weights in safetensors; the resumable training state as a torch file loaded weights-only.

`<out>/last/` holds the state after the last finished epoch: `model.safetensors` and
`state.pt` (optimizer, scheduler, grad scaler, RNG states, epoch, history, best so far and the
fingerprint of the params, data and code it belongs to) and `best.safetensors` (the best
weights so far). It is replaced whole (atomic folder swap),
so an interruption leaves the previous epoch's state intact.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from repurpose import io

LAST = "last"
WEIGHTS = "model.safetensors"
STATE = "state.pt"
BEST = "best.safetensors"


def save_weights(path: str | os.PathLike[str], state_dict: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> None:
    """Atomically write a state dict as safetensors (tensors copied to contiguous CPU)."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    with io.atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        tmp.chmod(0o666 & ~io.UMASK)  # safetensors recreates the file as 0600


def load_weights(path: str | os.PathLike[str], device: str | torch.device = "cpu"
                 ) -> dict[str, torch.Tensor]:
    """Read a safetensors state dict."""
    return load_file(str(path), device=str(device))


def save_checkpoint(out_dir: str | os.PathLike[str], state_dict: dict[str, torch.Tensor],
                    state: dict[str, Any], best: str | os.PathLike[str] | None = None) -> None:
    """Replace `<out_dir>/last/` with the given weights, training state and a copy of the
    best weights file `best` (so the best model survives its output being deleted)."""
    with io.atomic_dir(Path(out_dir) / LAST) as tmp:
        save_weights(tmp / WEIGHTS, state_dict)
        with io.atomic_path(tmp / STATE) as path:
            torch.save(state, path)
        if best is not None and Path(best).is_file():
            shutil.copyfile(best, tmp / BEST)


def load_checkpoint(out_dir: str | os.PathLike[str], device: str | torch.device = "cpu"
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The last checkpoint's weights and state, or None if there is none."""
    folder = Path(out_dir) / LAST
    if not (folder / WEIGHTS).is_file() or not (folder / STATE).is_file():
        return None
    state = torch.load(folder / STATE, map_location=device, weights_only=True)
    return load_weights(folder / WEIGHTS, device), state
