"""Device choice: the one place `auto` becomes a concrete torch device name."""

from __future__ import annotations


def resolve_device(setting: str) -> str:
    """`auto` -> cuda when torch sees a GPU, else cpu; anything else as given (cpu, cuda:1)."""
    if setting != "auto":
        return setting
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"
