"""Decoders: one window's model output -> candidate segments, then the evaluation protocol.

A decoder proposes candidate segments with scores; every decoder's candidates then go through
the same protocol (`postprocess.apply_protocol`: clip to the window, 10-90 s, Gaussian
Soft-NMS, per-minute cap), so decoders are compared under the reference's rules. Keys (the
`postprocess.decoder` param, `--decoder`, and the API argument):

- `regression`: the reference. Every candidate of the arch (for per-second archs: second s
  proposes [s - left, s + right]) scoring above `threshold`, the `top_k` best.
- `runs`: contiguous runs of seconds whose (optionally smoothed, `smooth` seconds) score is
  above `threshold`, runs apart by at most `gap` seconds merged (a clip whose score dips for a
  second or two stays one run); a run of seconds first..last becomes [first + 0.5, last + 0.5]
  (a label second s covers clips with int(a) <= s <= int(b), so the bounds sit half a second
  in); a run longer than `max_length` is split at its weakest second; score = the run's mean.
- `hybrid`: the runs, each boundary refined by the regression of the run's seconds nearest to
  it (median of s - left over the first `edge` seconds, of s + right over the last `edge`),
  kept within `edge` seconds of the run's own boundary.
Row s of the per-second arrays is window second s (timeline semantics).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from repurpose.model.postprocess import PostprocessConfig, apply_protocol


@dataclass(frozen=True)
class WindowOutput:
    """One window's model output, on the CPU, trimmed to its valid rows."""

    scores: np.ndarray  # [T] per-second sigmoid score
    offsets: np.ndarray  # [T, 2] per-second (left, right) seconds
    cand_segments: np.ndarray  # [N, 2] window seconds
    cand_scores: np.ndarray  # [N]


Candidates = tuple[np.ndarray, np.ndarray]  # segments [K, 2], scores [K]


def smooth_scores(scores: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over `width` seconds (1 = unchanged), edges renormalised."""
    scores = np.asarray(scores, dtype=np.float64)
    if width <= 1 or len(scores) == 0:
        return scores
    kernel = np.ones(int(width))
    total = np.convolve(scores, kernel, mode="same")
    count = np.convolve(np.ones_like(scores), kernel, mode="same")
    return total / count


def find_runs(active: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (first, last) index pairs of the True runs of a boolean vector."""
    padded = np.concatenate([[False], np.asarray(active, dtype=bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def close_gaps(runs: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Merge consecutive (first, last) runs separated by at most `gap` seconds (0 = unchanged)."""
    merged: list[tuple[int, int]] = []
    for first, last in runs:
        if merged and gap > 0 and first - merged[-1][1] - 1 <= gap:
            merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def split_long(run: tuple[int, int], scores: np.ndarray, max_len: float,
               min_len: float = 10.0) -> list[tuple[int, int]]:
    """Split a run longer than `max_len` seconds at its weakest second at least `min_len`
    from both ends (the middle when the scores are flat), recursively."""
    first, last = run
    if last - first < max_len or last - first < 2:
        return [run]
    lo, hi = first + int(min_len), last - int(min_len)
    if hi <= lo:
        lo, hi = first + 1, last - 1
    inner = scores[lo: hi + 1]
    flat = np.ptp(inner) < 1e-6
    cut = (first + last) // 2 if flat else lo + int(np.argmin(inner))
    return (split_long((first, cut - 1), scores, max_len, min_len)
            + split_long((cut + 1, last), scores, max_len, min_len))


def score_runs(scores: np.ndarray, cfg: PostprocessConfig) -> list[tuple[int, int]]:
    """The runs above threshold of the smoothed scores, short gaps closed, long ones split."""
    smoothed = smooth_scores(scores, cfg.smooth)
    runs = []
    for run in close_gaps(find_runs(smoothed > cfg.threshold), cfg.gap):
        runs.extend(r for r in split_long(run, smoothed, cfg.max_length, cfg.min_length)
                    if r[1] >= r[0])
    return runs


def decode_regression(out: WindowOutput, cfg: PostprocessConfig, use_threshold: bool = True
                      ) -> Candidates:
    """The reference: the arch's own candidates above threshold, top-k by score."""
    scores = np.asarray(out.cand_scores, dtype=np.float64)
    segs = np.asarray(out.cand_segments, dtype=np.float64).reshape(-1, 2)
    idx = np.flatnonzero(scores > cfg.threshold) if use_threshold else np.arange(len(scores))
    idx = idx[np.argsort(-scores[idx], kind="stable")][: cfg.top_k]
    return segs[idx], scores[idx]


def decode_runs(out: WindowOutput, cfg: PostprocessConfig) -> Candidates:
    """Contiguous runs of above-threshold seconds (see the module docstring)."""
    scores = np.asarray(out.scores, dtype=np.float64)
    runs = score_runs(scores, cfg)
    segs = np.array([[a + 0.5, b + 0.5] for a, b in runs], dtype=np.float64).reshape(-1, 2)
    mean = np.array([scores[a: b + 1].mean() for a, b in runs], dtype=np.float64)
    return segs, mean


def refine_run(first: int, last: int, offsets: np.ndarray, edge: int) -> tuple[float, float]:
    """[start, end] of a run, each boundary moved to the regression of its nearest seconds."""
    k = max(1, min(edge, (last - first + 2) // 2))
    seconds = np.arange(first, last + 1, dtype=np.float64)
    starts = seconds[:k] - offsets[first: first + k, 0]
    ends = seconds[-k:] + offsets[last - k + 1: last + 1, 1]
    a0, b0 = first + 0.5, last + 0.5
    a = float(np.clip(np.median(starts), a0 - edge, a0 + edge))
    b = float(np.clip(np.median(ends), b0 - edge, b0 + edge))
    return (a, b) if b > a else (a0, b0)


def decode_hybrid(out: WindowOutput, cfg: PostprocessConfig) -> Candidates:
    """Runs of scores with boundaries refined by the regression (see the module docstring)."""
    scores = np.asarray(out.scores, dtype=np.float64)
    offsets = np.asarray(out.offsets, dtype=np.float64).reshape(-1, 2)
    runs = score_runs(scores, cfg)
    segs = np.array([refine_run(a, b, offsets, cfg.edge) for a, b in runs],
                    dtype=np.float64).reshape(-1, 2)
    mean = np.array([scores[a: b + 1].mean() for a, b in runs], dtype=np.float64)
    return segs, mean


DECODERS: dict[str, Callable[[WindowOutput, PostprocessConfig], Candidates]] = {
    "regression": decode_regression,
    "runs": decode_runs,
    "hybrid": decode_hybrid,
}


def decode_window(out: WindowOutput, duration: float, cfg: PostprocessConfig) -> np.ndarray:
    """Segments `[[start, end, score], ...]` of one window (window seconds), best first."""
    segs, scores = DECODERS[cfg.decoder](out, cfg)

    def fallback() -> Candidates:  # nothing above the threshold: the best candidates anyway
        return decode_regression(out, cfg, use_threshold=False)

    return apply_protocol(segs, scores, duration, cfg, fallback)
