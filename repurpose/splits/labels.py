"""Per-second labels and regression targets of a window, with the reference's semantics.

For window second `s` (0 .. int(duration)):
- label 1 if `int(a) <= s <= int(b)` for some clip `[a, b]` (both ends inclusive, clamped
  to the window);
- target `(s - a, b - s)` for the first clip (in file order) with `a <= s <= b` using the
  fractional bounds, else `(0, 0)`. A second can therefore be labelled 1 with target (0, 0)
  when it lies in `[int(a), a)`: that is the reference's behaviour, kept on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from repurpose.timeline import n_label_seconds, second_indices

Clip = tuple[float, float]


def window_labels(duration: float, clips: Sequence[Clip]) -> np.ndarray:
    """Binary label per window second, int8 array of shape [n_label_seconds(duration)]."""
    n = n_label_seconds(duration)
    labels = np.zeros(n, dtype=np.int8)
    if not clips:
        return labels
    bounds = second_indices(np.asarray(clips, dtype=np.float64))  # [n_clips, 2]
    first = np.clip(bounds[:, 0], 0, n - 1)
    last = np.clip(bounds[:, 1], 0, n - 1)
    # difference array: +1 at first, -1 after last, cumulative sum > 0 means covered
    marks = np.zeros(n + 1, dtype=np.int64)
    np.add.at(marks, first, 1)
    np.add.at(marks, last + 1, -1)
    labels[np.cumsum(marks[:-1]) > 0] = 1
    return labels


def window_targets(duration: float, clips: Sequence[Clip]) -> np.ndarray:
    """(left, right) distance to the containing clip per window second, float32 [n, 2]."""
    n = n_label_seconds(duration)
    targets = np.zeros((n, 2), dtype=np.float32)
    seconds = np.arange(n, dtype=np.float64)
    for a, b in reversed(list(clips)):  # reversed, so the first containing clip wins
        inside = (seconds >= a) & (seconds <= b)
        targets[inside, 0] = seconds[inside] - a
        targets[inside, 1] = b - seconds[inside]
    return targets
