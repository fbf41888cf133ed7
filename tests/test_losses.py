"""Losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from repurpose.model.losses import (
    LossConfig,
    align_loss,
    compute_loss,
    diou_loss_1d,
    sigmoid_focal_loss,
)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_focal_loss_matches_hand_values() -> None:
    logits = torch.tensor([2.0, -1.0, 0.0])
    labels = torch.tensor([1, 0, 1])
    got = sigmoid_focal_loss(logits, labels, alpha=0.7, gamma=2.0)
    p = [_sigmoid(2.0), _sigmoid(-1.0), 0.5]
    want = [
        0.7 * (1 - p[0]) ** 2 * -math.log(p[0]),  # positive, p_t = p
        0.3 * p[1] ** 2 * -math.log(1 - p[1]),  # negative, p_t = 1 - p
        0.7 * 0.25 * math.log(2),
    ]
    assert got.tolist() == pytest.approx(want, rel=1e-5)


def test_diou_hand_values() -> None:
    # pred (2, 4), target (3, 3): inter 2 + 3 = 5, union 6 + 6 - 5 = 7, enclosing 3 + 4 = 7,
    # rho = ((4 - 2) - (3 - 3)) / 2 = 1 -> 1 - 5/7 + (1/7)^2
    got = diou_loss_1d(torch.tensor([[2.0, 4.0]]), torch.tensor([[3.0, 3.0]]))
    assert float(got[0]) == pytest.approx(1 - 5 / 7 + 1 / 49, rel=1e-6)
    # perfect prediction -> 0; disjoint-ish (pred tiny) -> close to 1 + centre term
    assert float(diou_loss_1d(torch.tensor([[5.0, 7.0]]), torch.tensor([[5.0, 7.0]]))[0]) == 0.0
    far = diou_loss_1d(torch.tensor([[0.0, 10.0]]), torch.tensor([[10.0, 0.0]]))
    # inter 0, union 20, enclosing 20, rho = (10 - (-10)) / 2 = 10 -> 1 + 0.25
    assert float(far[0]) == pytest.approx(1.25)


def test_total_is_weighted_sums_over_batch() -> None:
    logits = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.0, 0.0]])
    offsets = torch.tensor([[[1.0, 1.0], [0.0, 0.0], [2.0, 1.0]],
                            [[0.5, 0.5], [9.0, 9.0], [9.0, 9.0]]])
    labels = torch.tensor([[1, 0, 1], [1, 1, 0]])
    targets = torch.tensor([[[1.0, 2.0], [0.0, 0.0], [2.0, 1.0]],
                            [[1.0, 1.0], [5.0, 5.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, True, True], [True, False, False]])  # 2nd window: 1 second
    cfg = LossConfig(w_cls=0.2, w_reg=0.8, focal_alpha=0.7, focal_gamma=2.0)
    parts = compute_loss(logits, offsets, labels, targets, mask, cfg)
    cls = sigmoid_focal_loss(logits[mask], labels[mask], 0.7, 2.0).sum()
    positive = mask & (labels > 0)  # padded seconds never count, even labelled ones
    reg = diou_loss_1d(offsets[positive], targets[positive]).sum()
    assert int(positive.sum()) == 3
    assert float(parts["cls"]) == pytest.approx(float(cls))
    assert float(parts["reg"]) == pytest.approx(float(reg))
    assert float(parts["total"]) == pytest.approx((0.2 * float(cls) + 0.8 * float(reg)) / 2)
    assert float(parts["align"]) == 0.0


def test_align_guider_is_a_kl_and_optional() -> None:
    torch.manual_seed(0)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    base = torch.randn(2, 6, 8)
    same = {"visual": base, "audio": base, "text": base}
    noisy = {"visual": base, "audio": torch.randn(2, 6, 8), "text": torch.randn(2, 6, 8)}
    aligned = float(align_loss(same, mask, tau=0.05))
    unaligned = float(align_loss(noisy, mask, tau=0.05))
    assert 0 <= aligned < unaligned  # matching moments across modalities cost less
    streams = {k: v.clone().requires_grad_(True) for k, v in noisy.items()}
    cfg = LossConfig(align_weight=0.5)
    logits = torch.zeros(2, 6)
    offsets = torch.ones(2, 6, 2)
    labels = torch.zeros(2, 6, dtype=torch.long)
    parts = compute_loss(logits, offsets, labels, torch.zeros(2, 6, 2), mask, cfg, streams)
    parts["total"].backward()
    assert all(torch.isfinite(s.grad).all() for s in streams.values())
    assert float(parts["align"]) > 0
    with pytest.raises(ValueError, match="streams"):
        compute_loss(logits, offsets, labels, torch.zeros(2, 6, 2), mask, cfg)
