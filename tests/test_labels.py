"""Per-second labels and regression targets against hand-computed values (reference semantics)."""

import numpy as np
import pytest

from repurpose.splits.labels import window_labels, window_targets
from repurpose.timeline import n_label_seconds, second_index, window_rows


def test_label_rows_follow_reference_length():
    assert n_label_seconds(10.0) == 11
    assert n_label_seconds(9.99) == 10
    assert window_rows(1800.0, 3600.0) == (1800, 3600)
    with pytest.raises(ValueError):
        second_index(float("nan"))


def test_fractional_bounds_use_int_for_labels_and_exact_bounds_for_targets():
    # clip [2.5, 4.2]: labels int(2.5)=2 .. int(4.2)=4 inclusive
    labels = window_labels(10.0, [(2.5, 4.2)])
    assert labels.tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    targets = window_targets(10.0, [(2.5, 4.2)])
    # second 2 is labelled but lies before 2.5: the reference gives it target (0, 0)
    assert targets[2].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(targets[3], [0.5, 1.2], atol=1e-6)
    np.testing.assert_allclose(targets[4], [1.5, 0.2], atol=1e-6)
    assert targets[5].tolist() == [0.0, 0.0]


def test_clips_touching_both_window_edges():
    labels = window_labels(6.0, [(0.0, 1.5), (5.2, 6.0)])
    assert labels.tolist() == [1, 1, 0, 0, 0, 1, 1]
    targets = window_targets(6.0, [(0.0, 1.5), (5.2, 6.0)])
    np.testing.assert_allclose(targets[0], [0.0, 1.5])
    np.testing.assert_allclose(targets[1], [1.0, 0.5])
    assert targets[5].tolist() == [0.0, 0.0]  # 5 < 5.2
    np.testing.assert_allclose(targets[6], [0.8, 0.0], atol=1e-6)


def test_overlapping_clips_first_in_file_order_wins_the_target():
    clips = [(1.0, 5.0), (3.0, 8.0)]
    labels = window_labels(9.0, clips)
    assert labels.tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    targets = window_targets(9.0, clips)
    np.testing.assert_allclose(targets[4], [3.0, 1.0])  # inside both: first clip
    np.testing.assert_allclose(targets[6], [3.0, 2.0])  # only the second clip
    # same clips in the other order: the (now first) long clip wins at second 4
    np.testing.assert_allclose(window_targets(9.0, clips[::-1])[4], [1.0, 4.0])


def test_window_starting_past_zero_uses_window_seconds():
    # absolute window [120, 180], clip absolute [130.4, 141] -> window seconds [10.4, 21]
    from repurpose.splits.schema import parse_split

    raw = [{"youtube_id": "abcdefghijk", "timeRange": [120, 180],
            "segments": [[130.4, 141.0]], "timeRangeOffset": [0, 60],
            "segmentsOffset": [[10.4, 21.0]], "coverage": 0.1}]
    entry = parse_split(raw, "t.json", "test").entries[0]
    labels = window_labels(entry.duration, entry.clips)
    assert len(labels) == 61
    assert np.flatnonzero(labels).tolist() == list(range(10, 22))
    targets = window_targets(entry.duration, entry.clips)
    np.testing.assert_allclose(targets[11], [0.6, 10.0], atol=1e-5)
    assert entry.window_id == "abcdefghijk@120-180"
