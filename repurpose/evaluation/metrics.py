"""Segment metrics per tIoU threshold (numpy only).

- `precision`: the reference `calculate_tiou` exactly: per window, the share of predicted
  segments whose best IoU with any ground-truth clip is >= theta; a window without predictions
  scores 0; mean over windows. (Precision only: predicting fewer clips games it.)
- `recall`: per window, the share of ground-truth clips whose best IoU with any prediction is
  >= theta (0 without predictions); mean over windows.
- `f1`: harmonic mean of the mean precision and mean recall at each theta.
- `map`: ActivityNet-style average precision: all predictions of all windows ranked by score,
  each matched one-to-one to the unmatched clip of its window with the highest IoU >= theta;
  interpolated (monotone) precision integrated over recall; the denominator is every clip of
  every window, including windows without predictions. One class, so AP = mAP.
"avg" is the mean over the thresholds of each metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from repurpose.model.postprocess import iou_1d

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
METRICS = ("precision", "recall", "f1", "map")


@dataclass(frozen=True)
class WindowResult:
    """One window's predictions [P, 3] (start, end, score) and ground-truth clips [G, 2]."""

    key: str
    duration: float
    pred: np.ndarray
    gt: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "pred", np.asarray(self.pred, dtype=np.float64).reshape(-1, 3))
        object.__setattr__(self, "gt", np.asarray(self.gt, dtype=np.float64).reshape(-1, 2))


def threshold_key(theta: float) -> str:
    """JSON key of a threshold: 0.5 -> "0.5"."""
    return f"{theta:g}"


def _matched_share(pred: np.ndarray, gt: np.ndarray, theta: float, axis: int) -> float:
    """Share of predictions (axis 1) or clips (axis 0) whose best IoU reaches `theta`."""
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if len(pred) == 0 or len(gt) == 0:
        return 0.0
    best = iou_1d(pred[:, :2], gt).max(axis=axis)  # [n_pred] or [n_gt]
    return float(np.mean(best >= theta))


def window_precision(pred: np.ndarray, gt: np.ndarray, theta: float) -> float:
    """Reference `calculate_tiou` for one window and one threshold."""
    return _matched_share(pred, gt, theta, axis=1)


def window_recall(pred: np.ndarray, gt: np.ndarray, theta: float) -> float:
    """Share of the window's clips matched (IoU >= theta) by some prediction."""
    return _matched_share(pred, gt, theta, axis=0)


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the monotone envelope of the precision-recall curve (ActivityNet)."""
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def average_precision(windows: Sequence[WindowResult], theta: float) -> float:
    """ActivityNet AP over all windows at one threshold (see module docstring)."""
    n_gt = sum(len(w.gt) for w in windows)
    owners = [np.full(len(w.pred), i) for i, w in enumerate(windows)]
    if n_gt == 0 or not owners or sum(len(o) for o in owners) == 0:
        return 0.0
    owner = np.concatenate(owners)
    local = np.concatenate([np.arange(len(w.pred)) for w in windows])
    scores = np.concatenate([w.pred[:, 2] for w in windows])
    order = np.argsort(-scores, kind="stable")
    ious = [iou_1d(w.pred[:, :2], w.gt) for w in windows]
    # per window: clip order by IoU for each prediction, best first
    ranked = [np.argsort(-m, axis=1, kind="stable") for m in ious]
    taken = [np.zeros(len(w.gt), dtype=bool) for w in windows]
    tp = np.zeros(len(order))
    for rank, k in enumerate(order):
        w, p = owner[k], local[k]
        for g in ranked[w][p]:
            if ious[w][p, g] < theta:
                break
            if not taken[w][g]:
                taken[w][g] = True
                tp[rank] = 1.0
                break
    ctp = np.cumsum(tp)
    cfp = np.cumsum(1.0 - tp)
    return interpolated_ap(ctp / (ctp + cfp), ctp / n_gt)


def evaluate_windows(windows: Sequence[WindowResult],
                     thresholds: Sequence[float] = THRESHOLDS) -> dict[str, dict[str, float]]:
    """`{"precision"|"recall"|"f1"|"map": {"0.5": x, ..., "avg": mean}}` over `windows`."""
    out: dict[str, dict[str, float]] = {m: {} for m in METRICS}
    for theta in thresholds:
        key = threshold_key(theta)
        if windows:
            p = float(np.mean([window_precision(w.pred, w.gt, theta) for w in windows]))
            r = float(np.mean([window_recall(w.pred, w.gt, theta) for w in windows]))
        else:
            p = r = 0.0
        out["precision"][key] = p
        out["recall"][key] = r
        out["f1"][key] = 2 * p * r / (p + r) if p + r > 0 else 0.0
        out["map"][key] = average_precision(windows, theta)
    for m in METRICS:
        values = [out[m][threshold_key(t)] for t in thresholds]
        out[m]["avg"] = float(np.mean(values)) if values else 0.0
    return out


def bucket_label(lo: float, hi: float | None) -> str:
    """Name of a window-length bucket: "60-300s", ">=1800s"."""
    return f">={lo:g}s" if hi is None else f"{lo:g}-{hi:g}s"


def length_buckets(edges: Sequence[float]) -> list[tuple[str, float, float | None]]:
    """Buckets [0, e1), [e1, e2), ..., [e_last, inf) from increasing edges."""
    bounds = [0.0, *[float(e) for e in edges]]
    out = [(bucket_label(lo, hi), lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
           if hi > lo]
    out.append((bucket_label(bounds[-1], None), bounds[-1], None))
    return out
