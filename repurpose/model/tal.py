"""`tal`: a temporal action-localisation detector for clips, in the style of ActionFormer.

What it is. Per-second visual/audio/text features -> per modality Linear + LayerNorm to
`d_model`, summed -> `embed_layers` masked 1-D convs (kernel 3) -> a temporal feature pyramid
of `levels` levels (level l has stride 2**l seconds; level l+1 = LayerNorm + strided conv
(kernel 3, stride 2) of level l, mask subsampled as `mask[:, ::2]`), each level
`blocks_per_level` pre-LN blocks of *local windowed* multi-head self-attention (every step
attends to the `window` steps centred on it, through `scaled_dot_product_attention` on
chunks, memory O(T * window)) + FFN. Heads shared over all levels (masked convs, kernel 3):
a classification logit per step, and on a second trunk the (left, right) distances to the
clip's bounds *in units of the level's stride* (`softplus(scale_l * x)`, learnable per-level
scale, bias initialised so every distance starts at `reg_init` strides: never a dead ReLU)
plus a quality logit (predicted IoU with the assigned clip).

Time convention. Step i of level l (stride s = 2**l) covers window seconds [i*s, (i+1)*s); its
anchor time is a = i*s + (s - 1)/2 (level 0: a = i, the reference's second s). A candidate is
[a - left*s, a + right*s], clipped to [0, number of valid seconds].

Ranking (quality-aware): candidate score = sqrt(sigmoid(cls) * sigmoid(quality)).

Label assignment (in `TalNet.loss`, from the batch's `clips` [B, G, 2] / `clip_mask` [B, G]):
a step of level l is positive for a clip when (1) its anchor lies strictly inside the clip,
(2) within `centre_radius * s` seconds of the clip centre (centre sampling), and (3)
max(a - start, end - a) (seconds) is in the level's regression range [lo_l, hi_l). Ranges are
*derived* from the strides unless `regression_ranges` is given: boundaries
`range_base * 2**l` for l = 0..levels-2, i.e. with the default base 4: [0,4), [4,8), [8,16),
[16,32), [32,64), [64,inf) seconds (ActionFormer's, in seconds: a level takes clips whose
half-length is 2-4 of its steps). Clips of 10-90 s (half-lengths 5-45 s) land on levels 1-4.
A step claimed by several clips takes the shortest. Regression targets are
(a - start, end - a) / s.

Losses: sigmoid focal loss over the valid steps of all levels, DIoU (`diou_loss_1d`) on the
normalised distances at positives, and BCE of the quality logit against the IoU of the
predicted and the target segment (detached) at positives; all three are sums divided by the
number of positive steps (an EMA of it while training, momentum `norm_momentum`; the batch's
own count in eval), so the total does not grow with the batch size.

Where it differs from ActionFormer:
- the quality (IoU) branch and the sqrt(cls * quality) ranking are not in ActionFormer (its
  score is the classification probability alone); they follow the IoU-aware / centre-ness
  branches of later detectors (FCOS, TriDet-style), to rank boundaries, not just "clip-ness";
- one class (a clip), three modalities fused by a sum of projections; no absolute position
  encoding (the convs and the windowed attention are translation-equivariant, which also
  makes padding exactly irrelevant);
- downsampling is a LayerNorm + strided conv between levels (ActionFormer downsamples inside
  its transformer blocks: strided depthwise convs on query/key/value, a max-pooled skip); every
  level (level 0 included) has `blocks_per_level` blocks (ActionFormer: 2 stem blocks at full
  rate + 1 per branch level);
- the positive-count EMA starts from the first batch's count (ActionFormer: from 100); no
  label smoothing;
- distances go through softplus with a positive initial bias, not ReLU (no dead units at init);
- regression ranges are in seconds and derived from the strides (`range_base`);
- an extra per-second "inside a clip" head on level 0 (`frame` loss, focal on the batch's
  `labels`, weight `w_frame`): with clips of 10-90 s level 0 gets almost no positives, so its
  detection logits would say nothing about seconds; `ArchOutput.logits` is this head, so the
  per-second AUC and the runs decoder keep a meaningful signal.
- `ArchOutput.offsets` (per second, seconds) come from the pyramid: for second s, the segment of
  the best-scoring candidate among the steps containing s (one per level), as (s - start,
  end - s) clamped at 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repurpose.model.base import ArchOutput, input_dims
from repurpose.model.losses import LossConfig, diou_loss_1d, sigmoid_focal_loss
from repurpose.params import ParamsError, config_from_section

SECTION = "model.tal"
MODALITIES = ("visual", "audio", "text")


@dataclass(frozen=True)
class TalConfig:
    """Sizes and assignment/loss knobs of the `tal` arch (the `model.tal` params section)."""

    d_model: int = 64  # width of every level
    n_heads: int = 4  # attention heads (d_model must be a multiple)
    levels: int = 6  # pyramid levels, strides 1, 2, 4, ... seconds
    blocks_per_level: int = 1  # local self-attention + FFN blocks at each level
    window: int = 19  # local attention window (steps, odd) per level
    ffn_dim: int = 128  # FFN hidden width
    dropout: float = 0.0  # attention/FFN dropout
    centre_radius: float = 1.5  # centre sampling: positives within radius * stride of the centre
    w_frame: float = 0.2  # weight of the per-second "inside a clip" focal loss (level 0)
    embed_layers: int = 2  # masked conv (kernel 3) + LayerNorm + ReLU layers before the pyramid
    head_layers: int = 2  # conv (kernel 3) + LayerNorm + ReLU layers in each head trunk
    range_base: float = 4.0  # level boundaries range_base * 2**l s (ActionFormer: 4)
    regression_ranges: tuple[float, ...] = ()  # explicit boundaries (levels-1 increasing s)
    cls_prior: float = 0.01  # initial sigmoid of the classification logit (focal-loss prior)
    reg_init: float = 2.0  # initial (left, right) distance in strides (softplus bias)
    norm_momentum: float = 0.9  # EMA momentum of the positive count (0: the batch's own)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ParamsError(f"params {SECTION}.{f.name}: expected an integer, got {value!r}")
            if f.type == "float" and (isinstance(value, bool)
                                      or not isinstance(value, (int, float))):
                raise ParamsError(f"params {SECTION}.{f.name}: expected a number, got {value!r}")
        for name in ("d_model", "n_heads", "levels", "window", "ffn_dim"):
            if getattr(self, name) < 1:
                raise ParamsError(f"params {SECTION}.{name}: must be >= 1")
        for name in ("blocks_per_level", "embed_layers", "head_layers"):
            if getattr(self, name) < 0:
                raise ParamsError(f"params {SECTION}.{name}: must be >= 0")
        if self.d_model % self.n_heads:
            raise ParamsError(f"params {SECTION}.d_model ({self.d_model}) must be a multiple "
                              f"of {SECTION}.n_heads ({self.n_heads})")
        if self.window % 2 == 0:
            raise ParamsError(f"params {SECTION}.window: must be odd, got {self.window}")
        if not 0 <= self.dropout < 1:
            raise ParamsError(f"params {SECTION}.dropout: must be in [0, 1), got {self.dropout}")
        if self.centre_radius <= 0:
            raise ParamsError(f"params {SECTION}.centre_radius: must be > 0")
        if self.w_frame < 0:
            raise ParamsError(f"params {SECTION}.w_frame: must be >= 0")
        if self.range_base <= 0:
            raise ParamsError(f"params {SECTION}.range_base: must be > 0")
        if not 0 < self.cls_prior < 1:
            raise ParamsError(f"params {SECTION}.cls_prior: must be in (0, 1)")
        if self.reg_init <= 0:
            raise ParamsError(f"params {SECTION}.reg_init: must be > 0")
        if not 0 <= self.norm_momentum < 1:
            raise ParamsError(f"params {SECTION}.norm_momentum: must be in [0, 1)")
        ranges = self.regression_ranges
        if not isinstance(ranges, tuple) or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) for v in ranges):
            raise ParamsError(f"params {SECTION}.regression_ranges: expected a list of numbers")
        if ranges:
            if len(ranges) != self.levels - 1:
                raise ParamsError(f"params {SECTION}.regression_ranges: needs levels - 1 = "
                                  f"{self.levels - 1} boundaries, got {len(ranges)}")
            if any(v <= 0 for v in ranges) or any(b <= a for a, b in zip(ranges, ranges[1:],
                                                                          strict=False)):
                raise ParamsError(f"params {SECTION}.regression_ranges: boundaries must be "
                                  f"positive and increasing, got {list(ranges)}")

    def ranges(self) -> list[tuple[float, float]]:
        """[lo_l, hi_l) of max(left, right) in seconds for every level (derived or explicit)."""
        bounds = list(self.regression_ranges) or [self.range_base * 2**lvl
                                                  for lvl in range(self.levels - 1)]
        edges = [0.0, *map(float, bounds), math.inf]
        return list(zip(edges[:-1], edges[1:], strict=True))

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> TalConfig:
        """Read the `model.tal` section (every key required, unknown keys are an error)."""
        section = dict(section)
        if isinstance(section.get("regression_ranges"), tuple):  # from to_dict() or Python
            section["regression_ranges"] = list(section["regression_ranges"])
        return config_from_section(cls, section, SECTION)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready), the same keys as the params section."""
        d = asdict(self)
        d["regression_ranges"] = list(self.regression_ranges)
        return d


def _masked(x: Tensor, mask: Tensor) -> Tensor:
    """Zero the padded steps: x [B, T, C] * mask [B, T]."""
    return x * mask[..., None].to(x.dtype)


def _conv(conv: nn.Conv1d, x: Tensor, mask: Tensor) -> Tensor:
    """Masked channels-last conv: x [B, T, C] (padded steps zeroed first) -> [B, T', C']."""
    return conv(_masked(x, mask).transpose(1, 2)).transpose(1, 2)


class LocalAttention(nn.Module):
    """Multi-head self-attention of each step over the `window` steps centred on it.

    The sequence is cut into chunks of C = max(window // 2, 1) queries; chunk j attends to
    chunks j-1, j, j+1 (3C keys) under a band mask |q - k| <= window // 2 and the key mask, so
    memory is O(B * T * 3C) instead of O(B * T^2). A query's own key is always allowed (padded
    queries would otherwise see no key and give NaN; their outputs are zeroed by the caller).
    """

    def __init__(self, d: int, heads: int, window: int, dropout: float):
        super().__init__()
        self.heads, self.half, self.dropout = heads, window // 2, dropout
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x [B, T, d], mask [B, T] (True = valid) -> [B, T, d]."""
        b, t, d = x.shape
        h, hd = self.heads, d // self.heads
        c = max(self.half, 1)
        nb = -(-t // c)  # chunks
        tp = nb * c
        q, k, v = self.qkv(x).view(b, t, 3, h, hd).permute(2, 0, 3, 1, 4)  # each [B, H, T, hd]
        q = F.pad(q, (0, 0, 0, tp - t)).view(b, h, nb, c, hd)  # [B, H, nb, C, hd]
        q = q.transpose(1, 2).reshape(b * nb, h, c, hd)  # [B*nb, H, C, hd]

        def keys(z: Tensor) -> Tensor:
            """[B, H, T, hd] -> the 3C keys of every chunk [B*nb, H, 3C, hd]."""
            z = F.pad(z, (0, 0, c, tp - t + c))  # [B, H, tp + 2C, hd]
            z = z.unfold(2, 3 * c, c)  # [B, H, nb, hd, 3C]
            return z.permute(0, 2, 1, 4, 3).reshape(b * nb, h, 3 * c, hd)

        k, v = keys(k), keys(v)
        kmask = F.pad(mask, (c, tp - t + c), value=False).unfold(1, 3 * c, c)  # [B, nb, 3C]
        qi = torch.arange(c, device=x.device)[:, None]
        ki = torch.arange(3 * c, device=x.device)[None, :]
        band = (ki - c - qi).abs() <= self.half  # [C, 3C]
        diag = ki == qi + c  # [C, 3C]
        allowed = (band & kmask[:, :, None, :]) | diag  # [B, nb, C, 3C]
        allowed = allowed.reshape(b * nb, 1, c, 3 * c)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p)
        y = y.view(b, nb, h, c, hd).permute(0, 1, 3, 2, 4).reshape(b, tp, d)[:, :t]
        return self.out(y)  # [B, T, d]


class TalBlock(nn.Module):
    """Pre-LN block: local windowed self-attention + FFN, padded steps kept at zero."""

    def __init__(self, cfg: TalConfig):
        super().__init__()
        d = cfg.d_model
        self.norm_attn = nn.LayerNorm(d)
        self.attn = LocalAttention(d, cfg.n_heads, cfg.window, cfg.dropout)
        self.norm_ffn = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, cfg.ffn_dim), nn.GELU(), nn.Dropout(cfg.dropout),
                                 nn.Linear(cfg.ffn_dim, d))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x [B, T, d], mask [B, T] -> [B, T, d] (zero at padded steps)."""
        x = x + self.drop(self.attn(self.norm_attn(x), mask))
        x = x + self.drop(self.ffn(self.norm_ffn(x)))
        return _masked(x, mask)


class ConvHead(nn.Module):
    """`layers` x (masked conv k3 + LayerNorm + ReLU), then a masked conv k3 to `out` channels."""

    def __init__(self, d: int, layers: int, out: int):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(d, d, 3, padding=1) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(layers))
        self.out = nn.Conv1d(d, out, 3, padding=1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x [B, T, d], mask [B, T] -> [B, T, out]."""
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = F.relu(norm(_conv(conv, x, mask)))
        return _conv(self.out, x, mask)


def level_lengths(t: int, levels: int) -> list[int]:
    """Steps per level for a T-second input: T, ceil(T/2), ceil(T/4), ..."""
    lengths = [t]
    for _ in range(levels - 1):
        lengths.append((lengths[-1] + 1) // 2)
    return lengths


class TalNet(nn.Module):
    """Visual, audio, text per-second features -> pyramid candidates (see the module doc)."""

    def __init__(self, cfg: TalConfig, dims: Mapping[str, int]):
        super().__init__()
        self.cfg = cfg
        self.dims = input_dims(dims)
        d = cfg.d_model
        self.proj = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(self.dims[m], d), nn.LayerNorm(d)) for m in MODALITIES
        })
        self.embed = nn.ModuleList(nn.Conv1d(d, d, 3, padding=1) for _ in range(cfg.embed_layers))
        self.embed_norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(cfg.embed_layers))
        self.down_norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(cfg.levels - 1))
        self.down = nn.ModuleList(nn.Conv1d(d, d, 3, stride=2, padding=1)
                                  for _ in range(cfg.levels - 1))
        self.blocks = nn.ModuleList(
            nn.ModuleList(TalBlock(cfg) for _ in range(cfg.blocks_per_level))
            for _ in range(cfg.levels))
        self.level_norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(cfg.levels))
        self.cls_head = ConvHead(d, cfg.head_layers, 1)
        self.reg_head = ConvHead(d, cfg.head_layers, 3)  # (left, right, quality)
        self.frame_head = ConvHead(d, cfg.head_layers, 1)
        self.scales = nn.Parameter(torch.ones(cfg.levels))  # per-level regression scale
        prior = -math.log((1 - cfg.cls_prior) / cfg.cls_prior)
        nn.init.constant_(self.cls_head.out.bias, prior)
        with torch.no_grad():
            self.reg_head.out.bias.copy_(torch.tensor(
                [math.log(math.expm1(cfg.reg_init))] * 2 + [0.0]))  # softplus^-1(reg_init)
        self.register_buffer("pos_norm", torch.tensor(-1.0), persistent=False)  # EMA, <0: unset

    def forward(self, visual: Tensor, audio: Tensor, text: Tensor, mask: Tensor) -> ArchOutput:
        """Inputs [B, T, D_m], mask [B, T] (True = valid second) -> ArchOutput."""
        cfg = self.cfg
        mask = mask.bool()
        b, t = mask.shape
        inputs = {"visual": visual, "audio": audio, "text": text}
        x = sum(self.proj[m](inputs[m][:, :t]) for m in MODALITIES)  # [B, T, d]
        for conv, norm in zip(self.embed, self.embed_norms, strict=True):
            x = F.relu(norm(_conv(conv, x, mask)))
        x = _masked(x, mask)
        feats, masks = [], []
        m = mask
        for lvl in range(cfg.levels):
            if lvl:
                x = _masked(_conv(self.down[lvl - 1], self.down_norms[lvl - 1](x), m), m[:, ::2])
                m = m[:, ::2]  # step i of the next level covers steps 2i, 2i+1 of this one
            for block in self.blocks[lvl]:
                x = block(x, m)
            feats.append(_masked(self.level_norms[lvl](x), m))
            masks.append(m)
        frame_logits = self.frame_head(feats[0], mask).squeeze(-1).float()  # [B, T]

        n_valid = mask.sum(1).float()  # [B] window length in seconds (float32 under autocast)
        cls_l, reg_l, qual_l, anchors_l, strides_l = [], [], [], [], []
        for lvl, (f, lm) in enumerate(zip(feats, masks, strict=True)):
            stride = 2**lvl
            cls_l.append(self.cls_head(f, lm).squeeze(-1).float())  # [B, T_l]
            raw = self.reg_head(f, lm).float()  # [B, T_l, 3]
            reg_l.append(F.softplus(self.scales[lvl] * raw[..., :2]))  # [B, T_l, 2] in strides
            qual_l.append(raw[..., 2])  # [B, T_l]
            idx = torch.arange(lm.shape[1], device=x.device, dtype=torch.float32)
            anchors_l.append(idx * stride + (stride - 1) / 2)  # [T_l] seconds
            strides_l.append(torch.full_like(idx, float(stride)))
        cls = torch.cat(cls_l, 1)  # [B, N]
        reg = torch.cat(reg_l, 1)  # [B, N, 2] normalised by stride
        quality = torch.cat(qual_l, 1)  # [B, N]
        anchors = torch.cat(anchors_l)  # [N]
        strides = torch.cat(strides_l)  # [N]
        cand_mask = torch.cat(masks, 1)  # [B, N]
        lim = n_valid[:, None]  # [B, 1]
        start = torch.minimum((anchors - reg[..., 0] * strides).clamp(min=0), lim)  # [B, N]
        end = torch.minimum(anchors + reg[..., 1] * strides, lim)
        end = torch.maximum(end, start)
        segments = torch.stack([start, end], -1)  # [B, N, 2]
        scores = torch.sqrt(torch.sigmoid(cls) * torch.sigmoid(quality))  # [B, N]
        scores = scores * cand_mask.to(scores.dtype)
        offsets = self._per_second_offsets(scores, segments, [lm.shape[1] for lm in masks], t)
        offsets = _masked(offsets, mask)
        extras = {"cls": cls, "reg": reg, "quality": quality, "anchors": anchors,
                  "strides": strides, "level_sizes": [lm.shape[1] for lm in masks]}
        return ArchOutput(logits=frame_logits, offsets=offsets, cand_scores=scores,
                          cand_segments=segments, cand_mask=cand_mask, extras=extras)

    @staticmethod
    def _per_second_offsets(scores: Tensor, segments: Tensor, sizes: list[int], t: int) -> Tensor:
        """Per second s: (s - start, end - s) >= 0 of the best candidate whose step holds s."""
        sec = torch.arange(t, device=scores.device)
        idx = []
        offset = 0
        for lvl, n in enumerate(sizes):
            idx.append(offset + torch.clamp(sec // 2**lvl, max=n - 1))  # [T]
            offset += n
        idx = torch.stack(idx, 1)  # [T, L] candidate index of second s at each level
        s = scores[:, idx]  # [B, T, L]
        best = idx[None].expand_as(s).gather(2, s.argmax(2, keepdim=True)).squeeze(2)  # [B, T]
        seg = segments.gather(1, best[..., None].expand(-1, -1, 2))  # [B, T, 2]
        secf = sec.to(segments.dtype)
        return torch.stack([secf - seg[..., 0], seg[..., 1] - secf], -1).clamp(min=0)

    def assign(self, out: ArchOutput, clips: Tensor, clip_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Positives [B, N] bool and their (left, right) targets in strides [B, N, 2]."""
        cfg = self.cfg
        anchors, strides = out.extras["anchors"], out.extras["strides"]  # [N]
        if clips.shape[1] == 0:  # no clip in the whole batch
            return out.cand_mask & False, out.extras["reg"].detach() * 0
        lo_hi = torch.tensor(cfg.ranges(), device=anchors.device, dtype=anchors.dtype)  # [L, 2]
        level = torch.cat([torch.full((n,), i, device=anchors.device, dtype=torch.long)
                           for i, n in enumerate(out.extras["level_sizes"])])  # [N]
        lo, hi = lo_hi[level, 0], lo_hi[level, 1]  # [N]
        clips = clips.to(anchors.dtype)
        a = anchors[None, :, None]  # [1, N, 1]
        left = a - clips[:, None, :, 0]  # [B, N, G]
        right = clips[:, None, :, 1] - a  # [B, N, G]
        centre = clips.mean(-1)[:, None, :]  # [B, 1, G]
        near = (a - centre).abs() <= cfg.centre_radius * strides[None, :, None]
        inside = torch.minimum(left, right) > 0
        reach = torch.maximum(left, right)
        in_range = (reach >= lo[None, :, None]) & (reach < hi[None, :, None])
        ok = near & inside & in_range & clip_mask[:, None, :].bool() \
            & out.cand_mask[:, :, None]  # [B, N, G]
        length = (clips[..., 1] - clips[..., 0])[:, None, :].expand_as(left)  # [B, N, G]
        length = length.masked_fill(~ok, math.inf)
        best = length.argmin(-1, keepdim=True)  # [B, N, 1] shortest claiming clip
        positive = ok.any(-1)  # [B, N]
        target = torch.cat([left.gather(2, best), right.gather(2, best)], -1)  # [B, N, 2]
        target = target / strides[None, :, None]
        return positive, target * positive[..., None].to(target.dtype)

    def loss(self, out: ArchOutput, batch: dict, cfg: LossConfig) -> dict[str, Tensor]:
        """{"total", "cls", "reg", "quality", "frame"}: cls/reg/quality are sums over steps
        divided by the number of positive steps (EMA while training), frame a per-second focal
        sum divided by the positive seconds; total = w_cls*cls + w_reg*reg + w_quality*quality
        + w_frame*frame (w_* of train, w_frame of model.tal; the parts detached)."""
        if "clips" not in batch or "clip_mask" not in batch:
            raise KeyError("the tal loss needs batch['clips'] [B, G, 2] and batch['clip_mask']")
        tc = self.cfg
        cls = out.extras["cls"].float()  # [B, N]
        reg = out.extras["reg"].float()  # [B, N, 2]
        quality = out.extras["quality"].float()  # [B, N]
        positive, target = self.assign(out, batch["clips"], batch["clip_mask"])
        n_pos = rank_mean(positive.sum().to(torch.float32), self.training)
        if self.training and tc.norm_momentum > 0:
            new = torch.where(self.pos_norm < 0, n_pos,
                              tc.norm_momentum * self.pos_norm + (1 - tc.norm_momentum) * n_pos)
            self.pos_norm.copy_(new.detach())
            norm = new.detach().clamp(min=1.0)
        else:
            norm = n_pos.clamp(min=1.0)
        valid = out.cand_mask
        cls_loss = sigmoid_focal_loss(cls[valid], positive[valid], cfg.focal_alpha,
                                      cfg.focal_gamma).sum() / norm
        pred, tgt = reg[positive], target[positive].float()  # [P, 2]
        reg_loss = diou_loss_1d(pred, tgt).sum() / norm
        with torch.no_grad():
            inter = torch.minimum(pred, tgt).sum(-1)
            union = pred.sum(-1) + tgt.sum(-1) - inter
            iou = inter / union.clamp(min=1e-8)  # [P]
        q_loss = F.binary_cross_entropy_with_logits(quality[positive], iou,
                                                    reduction="sum") / norm
        mask = batch["mask"].bool()
        labels = batch["labels"][:, : mask.shape[1]]
        frame_norm = rank_mean(((labels > 0) & mask).sum().to(torch.float32),
                               self.training).clamp(min=1.0)
        frame = sigmoid_focal_loss(out.logits.float()[mask], labels[mask], cfg.focal_alpha,
                                   cfg.focal_gamma).sum() / frame_norm
        total = (cfg.w_cls * cls_loss + cfg.w_reg * reg_loss + cfg.w_quality * q_loss
                 + tc.w_frame * frame)
        return {"total": total, "cls": cls_loss.detach(), "reg": reg_loss.detach(),
                "quality": q_loss.detach(), "frame": frame.detach()}


def rank_mean(count: Tensor, training: bool) -> Tensor:
    """The mean of `count` over DDP ranks while training (so a loss normalised by it gives
    the same gradients as one process with the whole batch); `count` itself otherwise (rank 0
    validates alone, so no collective may run there)."""
    import torch.distributed as dist

    if not training or not dist.is_available() or not dist.is_initialized():
        return count
    total = count.detach().clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
