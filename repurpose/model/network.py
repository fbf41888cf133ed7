"""The multimodal clip-localisation network of the reference, with its defects fixed.

Per modality: MLP (in -> proj_hidden -> d) + sinusoidal position encoding over *time steps*
(the reference indexed it by batch position) + `self_layers` pre-LayerNorm self-attention
blocks. Visual and audio then get `caption_layers` blocks of self-attention + cross-attention
to text ("caption enhancement"), then `cross_layers` blocks of visual->audio and audio->visual
cross-attention (both read the previous layer's streams). The two streams are normalised,
concatenated and fused by Linear(2d, d); a classification head (d-h-h-1) gives a logit per
second and a regression head (d-h-h-2) the distances to the clip's start and end.

Position encoding (`pos_scale`): the reference adds the sinusoidal encoding at full scale
(norm ~sqrt(d/2)) to projected features of norm ~2 at initialisation, so attention and the
heads first see mostly position; at 0.1 the per-second features dominate (measured in
`repurpose.quality`: per-second AUC 0.76 -> 0.82 on the medium planted level).

Text (`fuse_text`): in the reference, text reaches the heads only through the caption
cross-attention (attention averages over the window), so a per-second text cue is diluted;
with `fuse_text` the text stream is also concatenated into the fusion (Linear(3d, d)).

Regression (the measured root cause of bad boundaries, see `repurpose.quality`): the reference
regresses raw seconds (0-90) through a ReLU. At initialisation half the outputs sit below zero,
where a ReLU has no gradient, and the rest must grow by ~30x from ~1; DIoU then trains only a
few seconds per clip and predicted lengths collapse below the 10 s minimum. Here
`offsets = softplus(head) * reg_scale` (every output has a gradient, one unit = `reg_scale`
seconds), with `reg_activation: relu, reg_scale: 1` reproducing the reference. With `quality`,
the regression head predicts a third value, a logit of the IoU between the predicted and the
true segment, and candidates rank by sqrt(score * quality) instead of saturated scores alone.

Attention runs through `torch.nn.functional.scaled_dot_product_attention` or, for the
benchmark, a naive softmax implementation (`ModelConfig.attention`); both honour a key padding
mask, so padded seconds never influence valid ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repurpose.model.base import ArchOutput, input_dims, per_second_output
from repurpose.model.config import MODALITIES, ModelConfig
from repurpose.model.losses import LossConfig, compute_loss


def sinusoidal_encoding(length: int, dim: int, device=None, dtype=None) -> Tensor:  # noqa: ANN001
    """[length, dim] sinusoidal position encoding of time steps 0..length-1."""
    position = torch.arange(length, dtype=torch.float32, device=device)[:, None]
    half = torch.arange(0, dim, 2, dtype=torch.float32, device=device)
    freq = torch.exp(-math.log(10000.0) * half / dim)
    pe = torch.zeros(length, dim, dtype=torch.float32, device=device)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return pe.to(dtype) if dtype is not None else pe


class Attention(nn.Module):
    """Multi-head attention of `x` [B, T, d] over `ctx` [B, S, d] with key mask [B, S]."""

    def __init__(self, d: int, heads: int, dropout: float, impl: str):
        super().__init__()
        self.heads, self.dropout, self.impl = heads, dropout, impl
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.out = nn.Linear(d, d)

    def forward(self, x: Tensor, ctx: Tensor, key_mask: Tensor) -> Tensor:
        b, t, d = x.shape
        s, h = ctx.shape[1], self.heads
        q = self.q(x).view(b, t, h, d // h).transpose(1, 2)
        k = self.k(ctx).view(b, s, h, d // h).transpose(1, 2)
        v = self.v(ctx).view(b, s, h, d // h).transpose(1, 2)
        mask = key_mask[:, None, None, :]  # [B, 1, 1, S], True = may be attended
        p = self.dropout if self.training else 0.0
        if self.impl == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        else:
            y = naive_attention(q, k, v, mask, p, self.training)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


def naive_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, dropout: float,
                    training: bool) -> Tensor:
    """softmax(q k^T / sqrt(d) + mask) v, materialising the [B, H, T, S] score matrix."""
    scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if dropout and training:
        weights = F.dropout(weights, dropout)
    return weights @ v


class Block(nn.Module):
    """Pre-LN block: [self-attention] + [cross-attention to a context] + feed-forward."""

    def __init__(self, cfg: ModelConfig, self_attn: bool, cross_attn: bool):
        super().__init__()
        d, drop = cfg.d_model, cfg.dropout
        self.self_attn = Attention(d, cfg.n_heads, drop, cfg.attention) if self_attn else None
        self.norm_self = nn.LayerNorm(d) if self_attn else None
        self.cross_attn = Attention(d, cfg.n_heads, drop, cfg.attention) if cross_attn else None
        self.norm_cross = nn.LayerNorm(d) if cross_attn else None
        self.norm_ctx = nn.LayerNorm(d) if cross_attn else None
        self.norm_ffn = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, cfg.ffn_dim), nn.ReLU(), nn.Dropout(drop),
                                 nn.Linear(cfg.ffn_dim, d))
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor, mask: Tensor, ctx: Tensor | None = None,
                ctx_mask: Tensor | None = None) -> Tensor:
        if self.self_attn is not None:
            y = self.norm_self(x)
            x = x + self.drop(self.self_attn(y, y, mask))
        if self.cross_attn is not None:
            assert ctx is not None
            c = self.norm_ctx(ctx)
            x = x + self.drop(self.cross_attn(self.norm_cross(x), c,
                                              mask if ctx_mask is None else ctx_mask))
        return x + self.drop(self.ffn(self.norm_ffn(x)))


def _head(d: int, hidden: int, out: int, activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(d, hidden)]
    if activation:
        layers.append(nn.ReLU())
    layers.append(nn.Linear(hidden, hidden))
    if activation:
        layers.append(nn.ReLU())
    layers.append(nn.Linear(hidden, out))
    return nn.Sequential(*layers)


class RepurposeNet(nn.Module):
    """Visual, audio and text per-second features -> clip logit and (left, right) offsets."""

    def __init__(self, cfg: ModelConfig, dims: Mapping[str, int]):
        super().__init__()
        self.cfg = cfg
        self.dims = input_dims(dims)
        d = cfg.d_model
        self.proj = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(self.dims[m], cfg.proj_hidden), nn.ReLU(),
                             nn.Linear(cfg.proj_hidden, d))
            for m in MODALITIES
        })
        self.encoders = nn.ModuleDict({
            m: nn.ModuleList(Block(cfg, True, False) for _ in range(cfg.self_layers))
            for m in MODALITIES
        })
        self.caption = nn.ModuleDict({
            m: nn.ModuleList(Block(cfg, True, True) for _ in range(cfg.caption_layers))
            for m in ("visual", "audio")
        })
        self.cross_va = nn.ModuleList(Block(cfg, False, True) for _ in range(cfg.cross_layers))
        self.cross_av = nn.ModuleList(Block(cfg, False, True) for _ in range(cfg.cross_layers))
        self.norm_v = nn.LayerNorm(d)
        self.norm_a = nn.LayerNorm(d)
        self.norm_t = nn.LayerNorm(d) if cfg.fuse_text else None
        self.fuse = nn.Linear((3 if cfg.fuse_text else 2) * d, d)
        self.cls_head = _head(d, cfg.head_hidden, 1, cfg.head_activation)
        self.reg_head = _head(d, cfg.head_hidden, 3 if cfg.quality else 2, cfg.head_activation)

    def forward(self, visual: Tensor, audio: Tensor, text: Tensor, mask: Tensor,
                return_streams: bool = False) -> ArchOutput:
        """Inputs [B, T, D_m] and mask [B, T] (True = valid second) -> per-second output;
        `extras["streams"]` holds the per-modality encoder outputs ([B, T, d]) when
        `return_streams` (for the align guider), `extras["quality"]` the quality logits."""
        inputs = {"visual": visual, "audio": audio, "text": text}
        pe = self.cfg.pos_scale * sinusoidal_encoding(mask.shape[1], self.cfg.d_model,
                                                      mask.device)  # [T, d]
        streams = {}
        for m in MODALITIES:
            x = self.proj[m](inputs[m]) + pe  # the same encoding for every batch item
            for block in self.encoders[m]:
                x = block(x, mask)
            streams[m] = x
        v, a, t = streams["visual"], streams["audio"], streams["text"]
        for block in self.caption["visual"]:
            v = block(v, mask, ctx=t)
        for block in self.caption["audio"]:
            a = block(a, mask, ctx=t)
        for va, av in zip(self.cross_va, self.cross_av, strict=True):
            v, a = va(v, mask, ctx=a), av(a, mask, ctx=v)
        fused = [self.norm_v(v), self.norm_a(a)]
        if self.norm_t is not None:  # text's own stream, not only its attention averages
            fused.append(self.norm_t(t))
        h = self.fuse(torch.cat(fused, dim=-1))  # [B, T, d]
        logits = self.cls_head(h).squeeze(-1)  # [B, T]
        reg = self.reg_head(h)  # [B, T, 2 or 3]
        act = F.relu if self.cfg.reg_activation == "relu" else F.softplus
        offsets = act(reg[..., :2].float()) * self.cfg.reg_scale  # [B, T, 2] seconds
        quality = reg[..., 2] if self.cfg.quality else None  # [B, T]
        extras = {"quality": quality, "streams": streams if return_streams else None}
        return per_second_output(logits, offsets, mask, quality, extras)

    def loss(self, out: ArchOutput, batch: dict, cfg: LossConfig) -> dict[str, Tensor]:
        """Focal + DIoU (+ quality BCE, + align guider) of one batch (see `losses`)."""
        return compute_loss(out.logits, out.offsets, batch["labels"], batch["targets"],
                            batch["mask"], cfg, out.extras.get("streams"),
                            quality=out.extras.get("quality"))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
