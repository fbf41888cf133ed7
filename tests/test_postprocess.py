"""Post-processing: cap, Gaussian Soft-NMS decays with the right lengths, the under-60-s window."""

from __future__ import annotations

import math

import numpy as np
import pytest

from repurpose.model.postprocess import (
    PostprocessConfig,
    candidates,
    iou_1d,
    postprocess_window,
    segment_cap,
    soft_nms,
)
from repurpose.params import ParamsError


def _reference_soft_nms_stale(segs: np.ndarray, scores: np.ndarray, sigma: float,
                              thresh: float) -> dict[tuple[float, float], float]:
    """The reference's 1-D port: lengths computed once, rows swapped, lengths not swapped."""
    dets = segs.astype(float).copy()
    sc = scores.astype(float).copy()
    lengths = dets[:, 1] - dets[:, 0]  # computed once: becomes stale after swaps
    n = len(dets)
    for i in range(n):
        if i != n - 1:
            j = i + 1 + int(np.argmax(sc[i + 1:]))
            if sc[i] < sc[j]:
                dets[[i, j]] = dets[[j, i]]
                sc[[i, j]] = sc[[j, i]]
        inter = np.clip(np.minimum(dets[i, 1], dets[i + 1:, 1])
                        - np.maximum(dets[i, 0], dets[i + 1:, 0]), 0, None)
        ovr = inter / (lengths[i] + lengths[i + 1:] - inter)
        sc[i + 1:] *= np.exp(-(ovr**2) / sigma)
    return {tuple(d): s for d, s in zip(dets.tolist(), sc, strict=True) if s > thresh}


def test_segment_cap() -> None:
    assert segment_cap(1800, 0.3, 0) == 9  # floor(30) * 0.3
    assert segment_cap(600, 0.3, 0) == 3  # 10 * 0.3, no float-noise extra segment
    assert segment_cap(119, 0.3, 0) == 1  # ceil(1 * 0.3)
    assert segment_cap(45, 0.3, 0) == 0  # the reference: windows under 60 s get nothing
    assert segment_cap(45, 0.3, 1) == 1  # fixed: at least min_segments


def test_soft_nms_gaussian_decays_by_hand() -> None:
    segs = np.array([[0.0, 10.0], [5.0, 15.0], [40.0, 50.0]])
    scores = np.array([0.9, 0.8, 0.7])
    kept, kept_scores = soft_nms(segs, scores, sigma=0.5, min_score=0.01)
    iou = 5 / 15
    assert kept.tolist() == [[0.0, 10.0], [40.0, 50.0], [5.0, 15.0]]
    assert kept_scores.tolist() == pytest.approx([0.9, 0.7, 0.8 * math.exp(-iou**2 / 0.5)])
    # min_score drops what decays below it; max_keep stops early (exact: picks never rise)
    kept, _ = soft_nms(segs, scores, sigma=0.5, min_score=0.65)  # 0.8 decays to 0.64
    assert kept.tolist() == [[0.0, 10.0], [40.0, 50.0]]
    kept, _ = soft_nms(segs, scores, sigma=0.5, min_score=0.01, max_keep=1)
    assert kept.tolist() == [[0.0, 10.0]]


def test_soft_nms_uses_lengths_of_the_rows_compared() -> None:
    # Row 0 (long, low score) is swapped away from the front; the reference keeps its stale
    # length 100 for position 0 and so under-decays the short segment overlapping the winner.
    segs = np.array([[0.0, 100.0], [10.0, 20.0], [12.0, 22.0]])
    scores = np.array([0.3, 0.9, 0.8])
    kept, kept_scores = soft_nms(segs, scores, sigma=0.5, min_score=0.001)
    got = {tuple(s): c for s, c in zip(kept.tolist(), kept_scores, strict=True)}
    # correct: [12, 22] vs the winner [10, 20]: inter 8, union 12
    iou_short = 8 / 12
    assert got[(12.0, 22.0)] == pytest.approx(0.8 * math.exp(-iou_short**2 / 0.5))
    iou_long_winner = 10 / 100
    iou_long_second = 10 / 100
    assert got[(0.0, 100.0)] == pytest.approx(
        0.3 * math.exp(-iou_long_winner**2 / 0.5) * math.exp(-iou_long_second**2 / 0.5))
    stale = _reference_soft_nms_stale(segs, scores, 0.5, 0.001)
    stale_iou = 8 / (100 + 10 - 8)  # the winner's row still carries length 100
    assert stale[(12.0, 22.0)] == pytest.approx(0.8 * math.exp(-stale_iou**2 / 0.5))
    assert stale[(12.0, 22.0)] > got[(12.0, 22.0)] + 0.1  # the defect is real and fixed


def test_iou_1d() -> None:
    got = iou_1d(np.array([[0, 10], [5, 5]]), np.array([[5, 15], [20, 30]]))
    assert got.tolist() == [[pytest.approx(5 / 15), 0.0], [0.0, 0.0]]


def test_candidates_threshold_topk_clip_and_length() -> None:
    cfg = PostprocessConfig(threshold=0.5, top_k=2, min_length=10, max_length=90)
    scores = np.array([0.9, 0.2, 0.8, 0.7, 0.95])
    offsets = np.array([[5, 20], [1, 1], [1, 1], [3, 30], [50, 50]], dtype=float)
    segs, sc = candidates(scores, offsets, duration=60, cfg=cfg)
    # top-2 by score: s=4 (0.95) -> [0, 54] clipped at 0 (length 54 kept); s=0 -> [0, 20]
    assert segs.tolist() == [[0.0, 54.0], [0.0, 20.0]]
    assert sc.tolist() == [0.95, 0.9]
    # s=2 has length 2 < 10 and is dropped even with a larger top-k
    segs, _ = candidates(scores, offsets, 60, PostprocessConfig(top_k=10))
    assert [0.0, 54.0] in segs.tolist() and [1.0, 3.0] not in segs.tolist()


def test_window_under_60_seconds_gets_a_segment() -> None:
    duration = 45.0
    n = int(duration) + 1
    scores = np.full(n, 0.1)
    scores[20] = 0.9
    offsets = np.zeros((n, 2))
    offsets[20] = [8, 9]
    got = postprocess_window(scores, offsets, duration, PostprocessConfig())
    assert got.tolist() == [[12.0, 29.0, 0.9]]
    reference = PostprocessConfig(min_segments=0, fallback=False)
    assert len(postprocess_window(scores, offsets, duration, reference)) == 0


def test_fallback_below_threshold_and_cap() -> None:
    n = 200
    scores = np.linspace(0.1, 0.4, n)  # nothing above 0.5
    offsets = np.full((n, 2), 10.0)
    got = postprocess_window(scores, offsets, 199.0, PostprocessConfig())
    assert len(got) == 1 and got[0, 2] == pytest.approx(0.4)
    assert len(postprocess_window(scores, offsets, 199.0, PostprocessConfig(fallback=False))) == 0
    # many confident, disjoint candidates: the cap (ceil(3 * 0.3) = 1) limits the output
    scores = np.zeros(n)
    scores[[20, 80, 140]] = [0.9, 0.8, 0.7]
    got = postprocess_window(scores, offsets, 199.0, PostprocessConfig())
    assert got[:, :2].tolist() == [[10.0, 30.0]]
    got = postprocess_window(scores, offsets, 199.0, PostprocessConfig(per_minute=1.0))
    assert got[:, 2].tolist() == [0.9, 0.8, 0.7]


def test_config_from_section() -> None:
    section = PostprocessConfig().to_dict()
    assert PostprocessConfig.from_section(section) == PostprocessConfig()
    with pytest.raises(ParamsError, match="postprocess.sigma"):
        PostprocessConfig.from_section({k: v for k, v in section.items() if k != "sigma"})
    with pytest.raises(ParamsError, match="unknown"):
        PostprocessConfig.from_section({**section, "sigmaa": 1})
