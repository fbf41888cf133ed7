"""The `tal` arch: config checks, padding invariance, assignment, learning a planted set, speed."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from repurpose.model.base import ArchOutput
from repurpose.model.losses import LossConfig
from repurpose.model.postprocess import iou_1d
from repurpose.model.tal import TalConfig, TalNet, count_parameters, level_lengths
from repurpose.params import ParamsError

DIMS = {"visual": 12, "audio": 20, "text": 8}
SMALL = TalConfig(d_model=32, n_heads=4, levels=4, window=5, ffn_dim=64, head_layers=1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small models: one thread is faster


def _inputs(b: int, t: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random features [B, T, D_m] per modality."""
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(b, t, d, generator=g) for m, d in DIMS.items()}


def _per_level(x: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """Split candidates [B, N, ...] into per-level [B, T_l, ...]."""
    return list(torch.split(x, sizes, dim=1))


def _batch(clips: list[list[tuple[float, float]]], t: int, lengths: list[int]) -> dict:
    """Loss batch (mask, labels, clips, clip_mask) for clip lists in window seconds."""
    b = len(clips)
    g = max(1, max(len(c) for c in clips))
    mask = torch.zeros(b, t, dtype=torch.bool)
    labels = torch.zeros(b, t, dtype=torch.long)
    ct = torch.zeros(b, g, 2)
    cm = torch.zeros(b, g, dtype=torch.bool)
    for i, (cs, n) in enumerate(zip(clips, lengths, strict=True)):
        mask[i, :n] = True
        for j, (a, e) in enumerate(cs):
            ct[i, j] = torch.tensor([a, e])
            cm[i, j] = True
            labels[i, int(a): int(e) + 1] = 1
    return {"mask": mask, "labels": labels & mask, "clips": ct, "clip_mask": cm}


def test_config_defaults_and_validation() -> None:
    cfg = TalConfig()
    assert cfg.ranges()[:3] == [(0.0, 4.0), (4.0, 8.0), (8.0, 16.0)]
    assert cfg.ranges()[-1] == (64.0, math.inf) and len(cfg.ranges()) == cfg.levels
    explicit = TalConfig(levels=3, regression_ranges=(10.0, 20.0))
    assert explicit.ranges() == [(0.0, 10.0), (10.0, 20.0), (20.0, math.inf)]
    assert TalConfig.from_section(cfg.to_dict()) == cfg
    full = {**TalConfig().to_dict(), "levels": 3, "regression_ranges": [10, 20]}
    assert TalConfig.from_section(full) == explicit  # ints in the list read as seconds
    with pytest.raises(ParamsError, match=r"params model\.tal\.window: missing"):
        TalConfig.from_section({k: v for k, v in full.items() if k != "window"})
    for bad in ({"window": 4}, {"d_model": 30, "n_heads": 4}, {"levels": 0},
                {"centre_radius": 0.0}, {"dropout": 1.0},
                {"levels": 3, "regression_ranges": (5.0,)},
                {"levels": 3, "regression_ranges": (20.0, 10.0)}, {"d_model": 64.0}):
        with pytest.raises(ParamsError, match=r"params model\.tal\."):
            TalConfig(**bad)
    with pytest.raises(ParamsError, match="unknown"):
        TalConfig.from_section({**full, "nope": 1})


def test_shapes_and_padding_invariance() -> None:
    torch.manual_seed(0)
    net = TalNet(SMALL, DIMS).eval()
    t1, t2 = 53, 90
    x = _inputs(2, t2, seed=1)
    for v in x.values():  # garbage in the padded seconds of window 0 must not matter
        v[0, t1:] = 1e3 * torch.randn_like(v[0, t1:])
    mask = torch.ones(2, t2, dtype=torch.bool)
    mask[0, t1:] = False
    with torch.no_grad():
        both = net(x["visual"], x["audio"], x["text"], mask)
        alone = net(x["visual"][:1, :t1], x["audio"][:1, :t1], x["text"][:1, :t1], mask[:1, :t1])
    assert isinstance(both, ArchOutput)
    sizes2, sizes1 = level_lengths(t2, 4), level_lengths(t1, 4)
    assert both.extras["level_sizes"] == sizes2 and alone.extras["level_sizes"] == sizes1
    n2 = sum(sizes2)
    assert both.logits.shape == (2, t2) and both.offsets.shape == (2, t2, 2)
    assert both.cand_scores.shape == (2, n2) and both.cand_segments.shape == (2, n2, 2)
    assert both.cand_mask.shape == (2, n2) and both.cand_mask.dtype == torch.bool
    torch.testing.assert_close(both.logits[:1, :t1], alone.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(both.offsets[:1, :t1], alone.offsets, atol=1e-5, rtol=0)
    for name in ("cand_scores", "cand_segments", "cand_mask"):
        lv2 = _per_level(getattr(both, name)[:1], sizes2)
        lv1 = _per_level(getattr(alone, name), sizes1)
        for a, b, n in zip(lv2, lv1, sizes1, strict=True):
            torch.testing.assert_close(a[:, :n], b, atol=1e-5, rtol=0)
    for lm, n in zip(_per_level(both.cand_mask[:1], sizes2), sizes1, strict=True):
        assert lm[0, :n].all() and not lm[0, n:].any()
    for v in (both.logits, both.offsets, both.cand_scores, both.cand_segments):
        assert torch.isfinite(v).all()


def test_candidate_bounds() -> None:
    torch.manual_seed(0)
    net = TalNet(SMALL, DIMS).eval()
    x = _inputs(2, 70, seed=2)
    mask = torch.ones(2, 70, dtype=torch.bool)
    mask[1, 40:] = False
    with torch.no_grad():
        out = net(x["visual"], x["audio"], x["text"], mask)
    seg, sc = out.cand_segments, out.cand_scores
    n_valid = mask.sum(1).float()[:, None]
    assert (seg[..., 0] >= 0).all() and (seg[..., 1] >= seg[..., 0]).all()
    assert (seg[..., 1] <= n_valid).all()
    assert (sc >= 0).all() and (sc <= 1).all() and (sc[~out.cand_mask] == 0).all()
    assert (out.offsets >= 0).all() and (out.offsets[1, 40:] == 0).all()
    anchors = out.extras["anchors"]
    inside = (seg[..., 0] <= anchors.clamp(max=69)) & (anchors.clamp(min=0) <= seg[..., 1] + 1)
    assert inside[out.cand_mask].all()  # a candidate surrounds its own anchor (up to clipping)
    # per-second offsets: the best-scoring candidate among the steps (one per level) holding s
    sizes = out.extras["level_sizes"]
    starts = np.cumsum([0, *sizes[:-1]])
    for b, s in ((0, 0), (0, 33), (0, 69), (1, 17), (1, 39)):
        idx = [int(starts[lvl] + min(s // 2**lvl, n - 1)) for lvl, n in enumerate(sizes)]
        best = max(idx, key=lambda i: float(sc[b, i]))
        a, e = seg[b, best].tolist()
        torch.testing.assert_close(out.offsets[b, s], torch.tensor([max(s - a, 0), max(e - s, 0)]))
    # at init every distance is reg_init strides: no dead ReLU, nothing collapsed to 0
    torch.testing.assert_close(out.extras["reg"].mean(), torch.tensor(SMALL.reg_init),
                               atol=1.0, rtol=0)


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    net = TalNet(SMALL, DIMS).train()
    t = 200
    x = _inputs(2, t, seed=3)
    # half-lengths 3, 6, 12, 30 s: one clip per level of [0,4), [4,8), [8,16), [16,inf)
    clips = [[(10.0, 16.0), (40.0, 52.0), (80.0, 104.0)], [(20.0, 80.0)]]
    batch = _batch(clips, t, [t, 150])
    out = net(x["visual"], x["audio"], x["text"], batch["mask"])
    losses = net.loss(out, batch, LossConfig())
    assert set(losses) == {"total", "cls", "reg", "quality", "frame"}
    assert losses["total"].requires_grad and not losses["cls"].requires_grad
    losses["total"].backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_assignment_levels_centres_and_ties() -> None:
    net = TalNet(SMALL, DIMS).eval()  # ranges [0,4), [4,8), [8,16), [16,inf) s
    t = 200
    x = _inputs(1, t)
    with torch.no_grad():
        out = net(x["visual"], x["audio"], x["text"], torch.ones(1, t, dtype=torch.bool))
    sizes = out.extras["level_sizes"]
    # [20, 30]: half 5 s -> level 1 (stride 2), centre 25, radius 3: anchors 22.5, 24.5, 26.5
    # [100, 160]: half 30 s -> level 3 (stride 8), centre 130, radius 12: 123.5, 131.5, 139.5
    # (as in ActionFormer, the range tests max(left, right) at the anchor, so the off-centre
    # level-2 anchors 21.5 and 29.5 of [20, 30], 8.5 and 9.5 s from a bound, are in [8, 16))
    clips = torch.tensor([[[20.0, 30.0], [100.0, 160.0]]])
    pos, target = net.assign(out, clips, torch.ones(1, 2, dtype=torch.bool))
    per = [p[0].nonzero().flatten().tolist() for p in _per_level(pos, sizes)]
    assert per == [[], [11, 12, 13], [5, 7], [15, 16, 17]]
    tl = _per_level(target, sizes)
    torch.testing.assert_close(tl[1][0, 12], torch.tensor([4.5, 5.5]) / 2)
    torch.testing.assert_close(tl[3][0, 16], torch.tensor([31.5, 28.5]) / 8)
    assert (target[~pos] == 0).all()
    # [18, 31] alone claims level-1 step 12 (anchor 24.5: 6.5 s from both bounds) ...
    longer = torch.tensor([[[18.0, 31.0]]])
    pos, target = net.assign(out, longer, torch.ones(1, 1, dtype=torch.bool))
    torch.testing.assert_close(_per_level(target, sizes)[1][0, 12], torch.tensor([6.5, 6.5]) / 2)
    # ... but with [20, 30] also claiming it, the shortest clip wins the tie
    clips = torch.tensor([[[18.0, 31.0], [20.0, 30.0]]])
    pos, target = net.assign(out, clips, torch.ones(1, 2, dtype=torch.bool))
    tl = _per_level(target, sizes)
    torch.testing.assert_close(tl[1][0, 12], torch.tensor([4.5, 5.5]) / 2)
    assert _per_level(pos, sizes)[1][0].nonzero().flatten().tolist() == [11, 12, 13]
    # a masked clip (padding) assigns nothing
    pos, _ = net.assign(out, clips, torch.zeros(1, 2, dtype=torch.bool))
    assert not pos.any()


def _planted(n: int, rng: np.random.Generator) -> tuple[dict, list[int], list]:
    """n windows of 200-400 s, 2-3 clips of 15-60 s each, a direction added inside clips."""
    lengths = [int(rng.integers(200, 401)) for _ in range(n)]
    t = max(lengths)
    direction = {m: rng.standard_normal(d) / math.sqrt(d) * 3.0 for m, d in DIMS.items()}
    feats = {m: rng.standard_normal((n, t, d)) for m, d in DIMS.items()}
    clips = []
    for i, length in enumerate(lengths):
        cs: list[tuple[float, float]] = []
        while len(cs) < int(rng.integers(2, 4)):
            dur = float(rng.integers(15, 61))
            a = float(rng.integers(0, int(length - dur)))
            if all(a > e + 10 or a + dur < s - 10 for s, e in cs):
                cs.append((a, a + dur))
        for a, e in cs:
            for m in DIMS:
                feats[m][i, int(a): int(e)] += direction[m]
        clips.append(sorted(cs))
    batch = _batch(clips, t, lengths)
    for m in DIMS:
        batch[m] = torch.tensor(feats[m], dtype=torch.float32) * batch["mask"][..., None]
    return batch, lengths, clips


def _decode(scores: np.ndarray, segments: np.ndarray, cap: int) -> np.ndarray:
    """Greedy NMS at IoU 0.5 over the candidates, best first, at most `cap` segments."""
    order = np.argsort(-scores, kind="stable")[:200]
    kept: list[np.ndarray] = []
    for i in order:
        if all(iou_1d(segments[i], k)[0, 0] < 0.5 for k in kept):
            kept.append(segments[i])
            if len(kept) == cap:
                break
    return np.array(kept).reshape(-1, 2)


def test_it_learns_a_planted_set() -> None:
    torch.manual_seed(0)
    batch, lengths, clips = _planted(8, np.random.default_rng(0))
    cfg = TalConfig(d_model=32, n_heads=4, levels=5, window=9, ffn_dim=64)
    net = TalNet(cfg, DIMS).train()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    lcfg = LossConfig()
    for _ in range(60):  # recall and precision reach 1.0 by ~50 steps (seed 0)
        out = net(batch["visual"], batch["audio"], batch["text"], batch["mask"])
        loss = net.loss(out, batch, lcfg)
        opt.zero_grad()
        loss["total"].backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        out = net(batch["visual"], batch["audio"], batch["text"], batch["mask"])
    hits = total = precise = predicted = 0
    for i, (length, gt) in enumerate(zip(lengths, clips, strict=True)):
        valid = out.cand_mask[i].numpy()
        sc, seg = out.cand_scores[i].numpy()[valid], out.cand_segments[i].numpy()[valid]
        cap = max(1, math.ceil(math.floor(length / 60) * 0.3))
        gt_arr = np.array(gt)
        recall_pred = _decode(sc, seg, max(cap, len(gt)))
        hits += int((iou_1d(gt_arr, recall_pred).max(1) >= 0.5).sum())
        total += len(gt)
        capped = _decode(sc, seg, cap)
        precise += int((iou_1d(capped, gt_arr).max(1) >= 0.5).sum())
        predicted += len(capped)
    recall, precision = hits / total, precise / max(predicted, 1)
    print(f"planted: recall@0.5 {recall:.3f}, capped precision@0.5 {precision:.3f}, "
          f"final loss {float(loss['total'].detach()):.3f}")
    assert recall >= 0.8 and precision >= 0.8


def test_speed_sanity_prints_cpu_time() -> None:
    torch.manual_seed(0)
    dims = {"visual": 512, "audio": 2048, "text": 384}
    net = TalNet(TalConfig(), dims).train()
    b, t = 2, 1800
    x = {m: torch.randn(b, t, d) for m, d in dims.items()}
    batch = _batch([[(100.0, 136.0), (500.0, 560.0)], [(30.0, 50.0)]], t, [t, 1500])
    warm = {m: v[:, :64] for m, v in x.items()}
    net(warm["visual"], warm["audio"], warm["text"], batch["mask"][:, :64]).logits.sum().backward()
    start = time.perf_counter()
    out = net(x["visual"], x["audio"], x["text"], batch["mask"])
    net.loss(out, batch, LossConfig())["total"].backward()
    took = time.perf_counter() - start
    print(f"tal d_model 128, {count_parameters(net):,} parameters: forward+backward B=2 T=1800 "
          f"on CPU {took:.2f} s ({torch.get_num_threads()} threads)")
