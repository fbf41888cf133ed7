"""The planted-signal generator: the real data's shape, valid split files, a signal where said."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repurpose.cli import main as cli
from repurpose.features.shards import FeatureStore
from repurpose.quality.bench import per_second_auc
from repurpose.quality.planted import (
    LEVELS,
    MODALITIES,
    _directions,
    make_planted,
    place_clips,
    small_spec,
    window_length,
)
from repurpose.splits.windows import read_windows


def test_shapes_follow_repurpose10k() -> None:
    rng = np.random.default_rng(1)
    lengths = np.array([window_length(rng, 120, 1800) for _ in range(3000)])
    assert 1150 <= np.median(lengths) <= 1450 and lengths.max() == 1800
    assert 0.35 <= np.mean(lengths == 1800) <= 0.43  # the guide: 878 of 2,243 windows
    clips = [place_clips(rng, float(n)) for n in lengths[:800]]
    per_window = np.array([len(c) for c in clips])
    clip_len = np.array([b - a for c in clips for a, b in c])
    assert 8 <= per_window.mean() <= 12
    assert 30 <= np.median(clip_len) <= 42
    assert 15 <= np.percentile(clip_len, 10) <= 23 and 55 <= np.percentile(clip_len, 90) <= 75
    for c, n in zip(clips, lengths[:800], strict=False):  # inside the window, in order, apart
        assert all(0 < a < b <= n for a, b in c)
        assert all(b1 + 8 <= a2 + 1e-6 for (_, b1), (a2, _) in zip(c, c[1:], strict=False))


def test_files_are_valid_and_the_signal_is_where_the_level_says(tmp_path: Path) -> None:
    level = LEVELS["one-modality"]  # clip signal in audio only
    spec = small_spec(counts={"train": 4, "val": 1, "test": 1}, seed=3)
    planted = make_planted(tmp_path, level, spec)
    splits = [str(planted.splits[s]) for s in ("train", "val", "test")]
    assert cli(["validate", *splits]) == 0  # the real schema checks pass
    windows = read_windows(planted.windows)
    assert len(windows) == 6 and any(w.start > 0 for w in windows)
    directions = _directions(np.random.default_rng(10_007 + spec.seed), spec.dims)
    aucs = {}
    for m in MODALITIES:
        store = FeatureStore(planted.features / m)
        labels, scores = [], []
        for w in windows:
            rows = store.window(w.youtube_id, w.start, w.end)
            labels.append(w.labels[: len(rows)])
            scores.append(rows.astype(np.float64) @ directions[m][0])
        aucs[m] = per_second_auc(np.concatenate(labels), np.concatenate(scores))
    assert aucs["audio"] > 0.8  # SNR 1.5 per second
    assert abs(aucs["visual"] - 0.5) < 0.1 and abs(aucs["text"] - 0.5) < 0.1
