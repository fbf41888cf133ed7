"""`mmct` sizes: the `model.mmct` params section, and the paper's recipe for Repurpose-10K."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from repurpose.params import ParamsError, config_from_section

SECTION = "model.mmct"
MODALITIES = ("visual", "audio", "text")  # text feeds the caption enhancement of the other two
ATTENTION = ("sdpa", "naive")
REG_ACTIVATIONS = ("softplus", "relu")


@dataclass(frozen=True)
class ModelConfig:
    """Every size of the network (input dims come from the feature shards, not from here)."""

    d_model: int = 64  # width of every stream (paper 512)
    n_heads: int = 4  # attention heads (paper 8)
    ffn_dim: int = 128  # feed-forward hidden width (paper 2048)
    proj_hidden: int = 128  # hidden width of each modality's input MLP (paper 2048)
    self_layers: int = 1  # self-attention layers per modality (paper 3)
    caption_layers: int = 1  # visual/audio self+cross-to-text layers (paper 3)
    cross_layers: int = 1  # visual<->audio cross-attention layers (paper 3)
    head_hidden: int = 32  # hidden width of the classification/regression heads (paper 256)
    head_activation: bool = False  # ReLU between head layers (reference: none)
    dropout: float = 0.0  # attention/FFN dropout (paper 0)
    attention: str = "sdpa"  # sdpa (torch scaled_dot_product_attention) | naive (softmax)
    reg_activation: str = "softplus"  # offsets = act(head) * reg_scale: softplus | relu (reference)
    reg_scale: float = 30.0  # seconds per regression unit (reference: 1, raw seconds)
    quality: bool = True  # rank candidates by sqrt(score * predicted boundary quality)
    fuse_text: bool = True  # concatenate the text stream into the fusion (reference: no)
    pos_scale: float = 0.1  # multiplier of the sinusoidal position encoding (reference: 1)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ParamsError(f"params {SECTION}.{f.name}: expected an integer, got {value!r}")
        for name in ("d_model", "n_heads", "ffn_dim", "proj_hidden", "head_hidden"):
            if getattr(self, name) < 1:
                raise ParamsError(f"params {SECTION}.{name}: must be >= 1")
        for name in ("self_layers", "caption_layers", "cross_layers"):
            if getattr(self, name) < 0:
                raise ParamsError(f"params {SECTION}.{name}: must be >= 0")
        if self.d_model % self.n_heads:
            raise ParamsError(f"params {SECTION}.d_model ({self.d_model}) must be a multiple of "
                              f"{SECTION}.n_heads ({self.n_heads})")
        if not 0 <= self.dropout < 1:
            raise ParamsError(f"params {SECTION}.dropout: must be in [0, 1), got {self.dropout}")
        if self.reg_activation not in REG_ACTIVATIONS:
            raise ParamsError(f"params {SECTION}.reg_activation: {self.reg_activation!r} is not "
                              f"one of {', '.join(REG_ACTIVATIONS)}")
        if self.reg_scale <= 0:
            raise ParamsError(f"params {SECTION}.reg_scale: must be > 0")
        if self.attention not in ATTENTION:
            raise ParamsError(f"params {SECTION}.attention: {self.attention!r} is not one of "
                              f"{', '.join(ATTENTION)}")

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> ModelConfig:
        """Read the `model.mmct` section; every key is required, unknown keys are an error."""
        return config_from_section(cls, dict(section), SECTION)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready), the same keys as the params section."""
        return asdict(self)


# The paper's sizes (82.6M parameters with CLIP 512 / PANNs 2048 / MiniLM 384 inputs).
REPURPOSE10K = ModelConfig(
    d_model=512, n_heads=8, ffn_dim=2048, proj_hidden=2048, self_layers=3, caption_layers=3,
    cross_layers=3, head_hidden=256, head_activation=False, dropout=0.0, attention="sdpa",
    fuse_text=False, pos_scale=1.0,
)
# The released research code's choices, defects aside (raw seconds through a ReLU, no quality).
REFERENCE_HEAD = {"reg_activation": "relu", "reg_scale": 1.0, "quality": False,
                  "fuse_text": False, "pos_scale": 1.0}
PAPER_DIMS = {"visual": 512, "audio": 2048, "text": 384}
