"""Decoders on hand-made score curves, and the protocol they all share."""

from __future__ import annotations

import numpy as np
import pytest

from repurpose.model.decoders import (
    DECODERS,
    WindowOutput,
    decode_window,
    find_runs,
    smooth_scores,
    split_long,
)
from repurpose.model.postprocess import DECODER_KEYS, PostprocessConfig, postprocess_window
from repurpose.params import ParamsError


def per_second(scores: np.ndarray, offsets: np.ndarray) -> WindowOutput:
    """A per-second arch's output: second s proposes [s - left, s + right]."""
    s = np.arange(len(scores), dtype=np.float64)
    segs = np.stack([s - offsets[:, 0], s + offsets[:, 1]], axis=1)
    return WindowOutput(scores, offsets, segs, scores)


def curve(duration: int, clips: list[tuple[int, int]], low: float = 0.05, high: float = 0.95,
          offsets_ok: bool = True) -> WindowOutput:
    """Scores `high` on clip seconds a..b (inclusive), `low` elsewhere; perfect offsets if
    `offsets_ok`, else (0, 0) everywhere (a dead regression head)."""
    scores = np.full(duration, low)
    offsets = np.zeros((duration, 2))
    for a, b in clips:
        scores[a: b + 1] = high
        if offsets_ok:
            s = np.arange(a, b + 1)
            offsets[a: b + 1] = np.stack([np.clip(s - a - 0.5, 0, None), b + 0.5 - s], axis=1)
    return per_second(scores, offsets)


def test_registry_keys_match_the_params_choices() -> None:
    assert tuple(DECODERS) == DECODER_KEYS
    with pytest.raises(ParamsError, match="postprocess.decoder"):
        PostprocessConfig(decoder="beam")


def test_runs_find_every_clip_with_half_second_bounds() -> None:
    out = curve(300, [(20, 55), (100, 129), (200, 259)])
    got = decode_window(out, 300.0, PostprocessConfig(decoder="runs", cap=False))
    assert sorted(map(tuple, got[:, :2].round(2))) == [(20.5, 55.5), (100.5, 129.5),
                                                      (200.5, 259.5)]


def test_runs_survive_a_dead_regression_head_where_the_reference_finds_nothing() -> None:
    out = curve(300, [(20, 55), (100, 129)], offsets_ok=False)
    ref = decode_window(out, 300.0, PostprocessConfig(decoder="regression", fallback=False))
    runs = decode_window(out, 300.0, PostprocessConfig(decoder="runs"))
    assert len(ref) == 0  # every candidate is 0 s long: below the 10 s minimum
    assert len(runs) == 2 and runs[0, 1] - runs[0, 0] == pytest.approx(35.0)


def test_the_regression_decoder_is_the_reference_postprocess() -> None:
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, 400)
    offsets = rng.uniform(0, 40, (400, 2))
    cfg = PostprocessConfig()
    assert np.allclose(decode_window(per_second(scores, offsets), 400.0, cfg),
                       postprocess_window(scores, offsets, 400.0, cfg))


def test_hybrid_moves_run_edges_to_the_regressed_boundaries() -> None:
    # scores end 3 s early at both ends (a blurry classifier); the regression knows the truth
    duration, a, b = 200, 50.3, 90.7
    scores = np.full(duration, 0.05)
    scores[53:88] = 0.9
    s = np.arange(duration, dtype=np.float64)
    offsets = np.stack([np.clip(s - a, 0, None), np.clip(b - s, 0, None)], axis=1)
    out = per_second(scores, offsets)
    cfg = PostprocessConfig(decoder="hybrid", edge=4, cap=False)
    got = decode_window(out, float(duration), cfg)
    assert got[0, 0] == pytest.approx(a, abs=0.01) and got[0, 1] == pytest.approx(b, abs=0.01)
    runs = decode_window(out, float(duration), PostprocessConfig(decoder="runs", cap=False))
    assert abs(runs[0, 0] - a) > 2.5  # the runs alone stay where the scores were


def test_smoothing_bridges_a_dip_and_splitting_cuts_long_runs() -> None:
    scores = np.full(120, 0.9)
    scores[40] = 0.1  # a one-second dip inside a clip
    assert len(find_runs(scores > 0.5)) == 2
    assert len(find_runs(smooth_scores(scores, 5) > 0.5)) == 1
    long = np.full(200, 0.9)
    long[100] = 0.6
    assert split_long((0, 199), long, 120) == [(0, 99), (101, 199)]  # at the weakest second
    flat = split_long((0, 199), np.full(200, 0.9), 90)  # flat: halves, never slivers
    assert all(40 <= b - a < 90 for a, b in flat) and len(flat) == 4


def test_the_cap_and_the_uncapped_protocol() -> None:
    clips = [(10 + 25 * k, 30 + 25 * k) for k in range(10)]  # 10 clips in 270 s
    out = curve(270, clips)
    capped = decode_window(out, 270.0, PostprocessConfig(decoder="runs"))
    uncapped = decode_window(out, 270.0, PostprocessConfig(decoder="runs", cap=False))
    assert len(capped) == 2  # ceil(floor(270 / 60) * 0.3)
    assert len(uncapped) == 10


def test_fallback_keeps_one_segment_when_nothing_passes_the_threshold() -> None:
    out = curve(200, [(50, 80)], low=0.01, high=0.3)
    for decoder in DECODERS:
        got = decode_window(out, 200.0, PostprocessConfig(decoder=decoder))
        assert len(got) == 1
        assert len(decode_window(out, 200.0, PostprocessConfig(decoder=decoder,
                                                                fallback=False))) == 0


def test_gap_keeps_a_clip_whose_score_dips_for_two_seconds_one_segment() -> None:
    out = curve(300, [(20, 40), (43, 70), (150, 189)])  # clip 20..70 with a dip at 41-42
    split = decode_window(out, 300.0, PostprocessConfig(decoder="runs", cap=False))
    closed = decode_window(out, 300.0, PostprocessConfig(decoder="runs", cap=False, gap=3))
    assert sorted(map(tuple, split[:, :2].round(2))) == [(20.5, 40.5), (43.5, 70.5),
                                                        (150.5, 189.5)]
    assert sorted(map(tuple, closed[:, :2].round(2))) == [(20.5, 70.5), (150.5, 189.5)]
    apart = decode_window(out, 300.0, PostprocessConfig(decoder="runs", cap=False, gap=1))
    assert len(apart) == 3  # a 2-second dip is more than a 1-second gap
    with pytest.raises(ParamsError, match="postprocess.gap"):
        PostprocessConfig(gap=-1)
