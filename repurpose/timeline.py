"""Seconds <-> per-second row indices: the one place where time becomes an index.

Features hold one row per absolute source second: row `t` covers `[t, t + 1)`. A window
`[start, end)` of a split file uses rows `second_index(start) .. second_index(end) - 1`, and
inside a window, label row `s` is window second `s` (the frame of `segmentsOffset`).
"""

from __future__ import annotations

import math

import numpy as np


def second_index(t: float) -> int:
    """Row index of the second holding time `t` (seconds >= 0): `int()` as the reference does."""
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"time must be a finite number >= 0, got {t!r}")
    return int(t)


def second_indices(t: np.ndarray) -> np.ndarray:
    """Vectorised `second_index` for an array of non-negative times."""
    return np.floor(np.asarray(t, dtype=np.float64)).astype(np.int64)


def window_rows(start: float, end: float) -> tuple[int, int]:
    """Feature rows `[first, stop)` of absolute window `[start, end)`: the reference's slice."""
    return second_index(start), second_index(end)


def n_label_seconds(duration: float) -> int:
    """Number of label rows of a window lasting `duration` s: `int(duration) + 1` (reference)."""
    return second_index(duration) + 1
