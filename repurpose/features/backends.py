"""Feature backends: one registry keyed by the string used everywhere (the interface itself:
`repurpose.pervideo.backend`).

The same key names a backend in `params.yaml` (`extract.<modality>.backend`, `embed_text.backend`),
on the CLI (`--backend`) and in the API (`get_backend(modality, key, settings)`; a whole section
is read by `repurpose.features.config`). The `embed_*` methods: frames `uint8 [N, H, W, 3]`
(visual), one-second waveforms `float32 [N, sample_rate]` (audio) or strings (text) ->
`float32 [N, dim]`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from repurpose.params import ParamsError
from repurpose.pervideo.backend import (  # noqa: F401 - re-exported for the backends
    PACKAGE,
    Backend,
    WeightsMissing,
    cached,
    clear_model_cache,
    files_identity,
    l2_normalize,
    quiet_transformers,
    resolve_device,
    sha256_file,
)

MODALITIES = ("visual", "audio", "text")

# modality -> key -> "module:Class", imported lazily (torch/transformers only when used)
REGISTRY: dict[str, dict[str, str]] = {
    "visual": {
        "clip-vit-b32": "repurpose.features.visual:ClipViTB32",
        "efficientnet-lite0": "repurpose.features.visual:EfficientNetLite0",
    },
    "audio": {
        "panns-cnn14": "repurpose.features.audio:PannsCnn14",
        "logmel": "repurpose.features.audio:LogMel",
    },
    "text": {
        "minilm": "repurpose.features.text:MiniLM",
    },
}


def backend_keys(modality: str) -> list[str]:
    """Registered keys of a modality."""
    return sorted(REGISTRY[modality])


def backend_class(modality: str, key: str) -> type[Backend]:
    """The class registered under `key` for `modality`."""
    if modality not in REGISTRY:
        raise ParamsError(f"unknown modality {modality!r} (choose one of {', '.join(MODALITIES)})")
    if key not in REGISTRY[modality]:
        raise ParamsError(f"unknown {modality} backend {key!r} "
                          f"(choose one of {', '.join(backend_keys(modality))})")
    module, name = REGISTRY[modality][key].split(":")
    return getattr(importlib.import_module(module), name)


def get_backend(modality: str, key: str, settings: Mapping[str, Any] | None = None,
                device: str = "auto", where: str = "") -> Backend:
    """Build backend `key` of `modality` from its own settings (the params sub-section named
    after its key, e.g. `extract.visual.clip-vit-b32`; absent keys take the backend's
    defaults). `where` names the modality's section in error messages."""
    cls = backend_class(modality, key)
    where = where or modality
    own = settings or {}
    if not isinstance(own, Mapping):
        raise ParamsError(f"params {where}.{key}: expected a mapping of settings, got {own!r}")
    return cls(dict(own), where=f"{where}.{key}", device=device)
