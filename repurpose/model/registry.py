"""The model arch registry: one string key in params (`model.arch`), CLI (`--arch`) and API.

- `mmct`: the reference multimodal cross-attention network, defects fixed (`network`);
- `linear`: a per-second linear/MLP classifier, the strong simple baseline (`linear`);
- `tal`: an ActionFormer-style temporal action-localisation detector (`tal`).
Each reads its own params subsection `model.<key>`.

Every arch is an `nn.Module` built from (its frozen config, input dims) whose `forward`
returns an `ArchOutput` and whose `loss(out, batch, loss_cfg)` returns `{"total", ...}`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from repurpose.params import ParamsError, config_from_section

if TYPE_CHECKING:  # torch only where a network is built: the CLI and evaluate stay light
    from torch import nn


@dataclass(frozen=True)
class ArchSpec:
    """Where an arch lives: module, config class and network class names."""

    key: str
    module: str
    config: str
    network: str
    summary: str

    def config_class(self) -> type:
        """The arch's frozen config dataclass."""
        return getattr(importlib.import_module(self.module), self.config)

    def network_class(self) -> type:
        """The arch's nn.Module class."""
        return getattr(importlib.import_module(self.module), self.network)


ARCHS: dict[str, ArchSpec] = {
    "mmct": ArchSpec("mmct", "repurpose.model.network", "ModelConfig", "RepurposeNet",
                     "reference multimodal cross-attention network, defects fixed"),
    "linear": ArchSpec("linear", "repurpose.model.linear", "LinearConfig", "LinearNet",
                       "per-second linear/MLP classifier (baseline)"),
    "tal": ArchSpec("tal", "repurpose.model.tal", "TalConfig", "TalNet",
                    "ActionFormer-style temporal pyramid detector"),
}


def arch_spec(arch: str) -> ArchSpec:
    """The registry entry of `arch`, or a ParamsError listing the keys."""
    if arch not in ARCHS:
        raise ParamsError(f"params model.arch: {arch!r} is not one of {', '.join(ARCHS)}")
    return ARCHS[arch]


@dataclass(frozen=True)
class ModelSpec:
    """The `model` params section: which arch, and that arch's config object."""

    arch: str
    config: Any

    @classmethod
    def from_section(cls, section: Mapping[str, Any], arch: str | None = None) -> ModelSpec:
        """`model.arch` (or the `arch` override) and its `model.<arch>` subsection (strict)."""
        if not isinstance(section, Mapping):
            raise ParamsError("params model: expected a mapping")
        arch = arch or section.get("arch")
        if not isinstance(arch, str):
            raise ParamsError("params model.arch: missing (one of " + ", ".join(ARCHS) + ")")
        unknown = sorted(set(section) - {"arch", *ARCHS})
        if unknown:
            raise ParamsError(f"params model: unknown key(s) {', '.join(unknown)}")
        spec = arch_spec(arch)
        if arch not in section:
            raise ParamsError(f"params model.{arch}: missing section")
        return cls(arch, config_from_section(spec.config_class(), dict(section[arch]),
                                             f"model.{arch}"))

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ModelSpec:
        """From model.json's `{"arch", "config"}` (written by `to_record`)."""
        spec = arch_spec(str(record.get("arch")))
        cfg = spec.config_class()(**{k: tuple(v) if isinstance(v, list) else v
                                     for k, v in dict(record["config"]).items()})
        return cls(spec.key, cfg)

    def to_record(self) -> dict[str, Any]:
        """JSON-ready `{"arch", "config"}`."""
        return {"arch": self.arch, "config": asdict(self.config)}

    def build(self, dims: Mapping[str, int]) -> nn.Module:
        """A freshly initialised network for these input dims."""
        return arch_spec(self.arch).network_class()(self.config, dims)
