"""A feature modality's params section (`extract.visual`, `extract.audio`, `embed_text`) as one
typed object, read strictly at the stage edge; the library's feature code takes only these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from repurpose.features.assembly import check_dtype
from repurpose.features.backends import backend_keys, get_backend
from repurpose.features.shards import FeatureMeta
from repurpose.params import ParamsError, config_from_section, require
from repurpose.pervideo.backend import Backend
from repurpose.pervideo.results import check_positive_int


@dataclass(frozen=True)
class ModalitySettings:
    """The flat keys of a modality section (each backend's own settings are a sub-section)."""

    backend: str  # registry key of the backend, e.g. efficientnet-lite0
    device: str  # auto | cpu | cuda | cuda:N
    batch_size: int  # items per forward pass
    dtype: str  # stored dtype: float16 | float32
    n_shards: int  # shard = sha1(youtube_id) mod n_shards


@dataclass(frozen=True)
class ModalityConfig:
    """One modality's configuration: its built backend and how its vectors are stored."""

    modality: str  # visual | audio | text
    backend: Backend
    dtype: str
    batch_size: int
    n_shards: int

    @classmethod
    def from_section(cls, modality: str, section: Mapping[str, Any], where: str,
                     backend_override: str | None = None) -> ModalityConfig:
        """Strictly read `section` (every flat key required, no unknown key); the chosen
        backend's sub-section may be absent (its settings then take the backend's defaults,
        which are params.yaml's: a test checks). `where` names it in errors."""
        if not isinstance(section, Mapping):
            raise ParamsError(f"params {where}: expected a mapping, got {section!r}")
        subsections = set(backend_keys(modality))
        flat = {k: v for k, v in section.items() if k not in subsections}
        s = config_from_section(ModalitySettings, flat, where)
        key = backend_override or s.backend
        own = require(dict(section), key, dict, where) if key in section else {}
        return cls(
            modality=modality,
            backend=get_backend(modality, key, own, device=s.device, where=where),
            dtype=check_dtype(s.dtype, where),
            batch_size=check_positive_int(s.batch_size, f"{where}.batch_size"),
            n_shards=check_positive_int(s.n_shards, f"{where}.n_shards"),
        )

    def meta(self, weights: str, extra_params: dict[str, Any] | None = None) -> FeatureMeta:
        """Shard metadata of this modality's vectors."""
        return FeatureMeta(modality=self.modality, backend=self.backend.key, weights=weights,
                           dim=self.backend.dim, dtype=self.dtype, fps=1.0,
                           params={**self.backend.params, **(extra_params or {})})

    def with_batch_size(self, batch_size: int) -> ModalityConfig:
        """The same configuration with another batch size (never part of a result's key)."""
        return ModalityConfig(self.modality, self.backend, self.dtype, batch_size, self.n_shards)
