"""Per-second scores and offsets of one window -> ranked segments (numpy only, no torch).

As the reference: candidate seconds with sigmoid score > threshold, the top-k of them,
segment `[s - left, s + right]`, kept if `min_length <= length <= max_length`, Gaussian
Soft-NMS, at most `ceil(floor(duration / 60) * per_minute)` segments. Fixed here:
- the cap is at least `min_segments` (the reference gave windows under 60 s a cap of 0);
- Soft-NMS compares each pair of segments with their own lengths (the reference computed the
  lengths once and then swapped rows, so decays used stale lengths);
- segments are clipped to the window before the length filter (the reference let them run
  past its ends);
- optional `fallback`: a window where no second passes the threshold gets its `min_segments`
  best segments below it (the metric scores an empty window 0).
Row `s` of the scores is window second `s` (timeline semantics: row s covers [s, s + 1)).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from repurpose.params import ParamsError, config_from_section

SECTION = "postprocess"
DECODER_KEYS = ("regression", "runs", "hybrid")  # see repurpose.model.decoders


@dataclass(frozen=True)
class PostprocessConfig:
    """The `postprocess` params section."""

    threshold: float = 0.5  # sigmoid score a second needs to propose a segment
    top_k: int = 1000  # best candidate seconds kept before Soft-NMS
    min_length: float = 10.0  # shortest segment kept, seconds
    max_length: float = 90.0  # longest segment kept, seconds
    sigma: float = 0.5  # Gaussian Soft-NMS: score *= exp(-iou^2 / sigma)
    min_score: float = 0.01  # segments whose decayed score falls to this or below are dropped
    per_minute: float = 0.3  # cap: ceil(floor(duration / 60) * per_minute) segments
    min_segments: int = 1  # the cap is at least this (reference: 0 for windows < 60 s)
    fallback: bool = True  # no second above threshold: use the best ones below it
    decoder: str = "regression"  # regression (reference) | runs | hybrid
    smooth: int = 1  # runs/hybrid: moving-average width over per-second scores (1 = off)
    gap: int = 0  # runs/hybrid: runs apart by at most this many seconds merge (0 = off)
    edge: int = 3  # hybrid: seconds at each run end whose regression refines the boundary
    cap: bool = True  # the reference's per-minute cap; false = the uncapped protocol

    def __post_init__(self) -> None:
        if self.decoder not in DECODER_KEYS:
            raise ParamsError(f"params {SECTION}.decoder: {self.decoder!r} is not one of "
                              f"{', '.join(DECODER_KEYS)}")
        if self.smooth < 1 or self.edge < 1:
            raise ParamsError(f"params {SECTION}.smooth and {SECTION}.edge must be >= 1")
        if self.gap < 0:
            raise ParamsError(f"params {SECTION}.gap must be >= 0, got {self.gap}")
        if not 0 <= self.threshold < 1:
            raise ParamsError(f"params {SECTION}.threshold: must be in [0, 1)")
        if self.top_k < 1 or self.min_segments < 0:
            raise ParamsError(f"params {SECTION}.top_k must be >= 1, min_segments >= 0")
        if not 0 <= self.min_length <= self.max_length:
            raise ParamsError(f"params {SECTION}.min_length must be in [0, max_length]")
        if self.sigma <= 0 or self.per_minute < 0:
            raise ParamsError(f"params {SECTION}.sigma must be > 0, per_minute >= 0")

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> PostprocessConfig:
        """Read the `postprocess` section (every key required, unknown keys are an error)."""
        return config_from_section(cls, dict(section), SECTION)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, the same keys as the params section."""
        return asdict(self)


def segment_cap(duration: float, per_minute: float, min_segments: int) -> int:
    """Most segments a window may get: ceil(floor(duration / 60) * per_minute), >= min_segments.

    The product is rounded to 9 decimals first so float noise (e.g. 0.3 * 10) cannot add one.
    """
    raw = math.ceil(round(math.floor(duration / 60) * per_minute, 9))
    return max(int(min_segments), raw)


def iou_1d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of segments a [N, 2] and b [M, 2] -> [N, M] (0 where the union is 0)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 2)
    inter = np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0])
    inter = np.clip(inter, 0.0, None)
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def soft_nms(segments: np.ndarray, scores: np.ndarray, sigma: float, min_score: float,
             max_keep: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian Soft-NMS: repeatedly keep the best segment, decay the others by
    exp(-iou^2 / sigma) with the IoU of *those two* segments, drop scores <= min_score.

    Returns the kept segments [K, 2] and their decayed scores [K], best first. Stopping after
    `max_keep` is exact: a kept score never rises, so later picks can only score lower.
    The IoU matrix is computed once from the original rows (no reordering, no stale lengths).
    """
    segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    current = np.asarray(scores, dtype=np.float64).copy()
    limit = len(segments) if max_keep is None else min(max_keep, len(segments))
    iou = iou_1d(segments, segments)
    alive = current > min_score
    kept: list[int] = []
    kept_scores: list[float] = []
    while len(kept) < limit and alive.any():
        i = int(np.argmax(np.where(alive, current, -np.inf)))
        kept.append(i)
        kept_scores.append(current[i])
        alive[i] = False
        current[alive] *= np.exp(-(iou[i, alive] ** 2) / sigma)
        alive &= current > min_score
    return segments[kept], np.asarray(kept_scores, dtype=np.float64)


def candidates(scores: np.ndarray, offsets: np.ndarray, duration: float,
               cfg: PostprocessConfig, use_threshold: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Top-k seconds (above the threshold) -> segments [N, 2] clipped to the window, scores."""
    scores = np.asarray(scores, dtype=np.float64)
    offsets = np.asarray(offsets, dtype=np.float64).reshape(-1, 2)
    idx = np.flatnonzero(scores > cfg.threshold) if use_threshold else np.arange(len(scores))
    idx = idx[np.argsort(-scores[idx], kind="stable")][: cfg.top_k]
    seconds = idx.astype(np.float64)
    segs = np.stack([seconds - offsets[idx, 0], seconds + offsets[idx, 1]], axis=1)
    segs = np.clip(segs, 0.0, duration)
    length = segs[:, 1] - segs[:, 0]
    keep = (length >= cfg.min_length) & (length <= cfg.max_length)
    return segs[keep], scores[idx][keep]


def apply_protocol(segs: np.ndarray, scores: np.ndarray, duration: float,
                   cfg: PostprocessConfig,
                   fallback: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None
                   ) -> np.ndarray:
    """The evaluation protocol over a decoder's candidates: clip to the window, keep
    `min_length..max_length`, Gaussian Soft-NMS, at most the per-minute cap (when `cfg.cap`).
    With `cfg.fallback`, a window left with no candidate gets the `min_segments` best of
    `fallback()` (whatever their score). Returns `[[start, end, score], ...]`, best first."""
    cap = segment_cap(duration, cfg.per_minute, cfg.min_segments) if cfg.cap else None
    if cap == 0 or duration <= 0:
        return np.zeros((0, 3))
    segs, scores = _length_filter(segs, scores, duration, cfg)
    min_score = cfg.min_score
    if len(segs) == 0 and cfg.fallback and cfg.min_segments > 0 and fallback is not None:
        segs, scores = _length_filter(*fallback(), duration, cfg)
        cap = cfg.min_segments if cap is None else min(cap, cfg.min_segments)
        min_score = -np.inf
    if len(segs) == 0:
        return np.zeros((0, 3))
    kept, kept_scores = soft_nms(segs, scores, cfg.sigma, min_score, max_keep=cap)
    return np.concatenate([kept, kept_scores[:, None]], axis=1)


def _length_filter(segs: np.ndarray, scores: np.ndarray, duration: float,
                   cfg: PostprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    segs = np.clip(np.asarray(segs, dtype=np.float64).reshape(-1, 2), 0.0, duration)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    length = segs[:, 1] - segs[:, 0]
    keep = (length >= cfg.min_length) & (length <= cfg.max_length)
    return segs[keep], scores[keep]


def postprocess_window(scores: np.ndarray, offsets: np.ndarray, duration: float,
                       cfg: PostprocessConfig) -> np.ndarray:
    """The reference decoding of per-second scores and offsets (the `regression` decoder)."""
    if len(scores) == 0:
        return np.zeros((0, 3))
    segs, sc = candidates(scores, offsets, duration, cfg)
    return apply_protocol(segs, sc, duration, cfg,
                          lambda: candidates(scores, offsets, duration, cfg, use_threshold=False))
