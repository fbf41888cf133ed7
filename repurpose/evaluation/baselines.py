"""Two model-free baselines the trained model must beat, evaluated like any predictions file.

Both predict, per window, as many segments as the post-processing cap allows
(`segment_cap(duration, per_minute, min_segments)`), so they play by the model's rules:
- `random`: each segment's length is drawn from a pool of ground-truth clip lengths (by default
  the evaluated split's own, which flatters the baseline), its start uniformly where it fits,
  its score uniformly in [0, 1); metrics are averaged over `draws` seeded draws;
- `even`: segments of one fixed length (the median of the pool) centred on evenly spaced
  points `(i + 0.5) * duration / k`, all with score 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from repurpose.evaluation.evaluator import evaluate
from repurpose.evaluation.metrics import METRICS, WindowResult
from repurpose.model.postprocess import segment_cap


def random_predictions(windows: Sequence[WindowResult], lengths: np.ndarray, per_minute: float,
                       min_segments: int, rng: np.random.Generator) -> list[WindowResult]:
    """Random segments with lengths drawn from `lengths` (see module docstring)."""
    pool = np.asarray(lengths, dtype=np.float64)
    if len(pool) == 0:
        raise ValueError("random baseline: no clip lengths to draw from")
    out = []
    for w in windows:
        k = segment_cap(w.duration, per_minute, min_segments)
        length = np.minimum(rng.choice(pool, size=k), w.duration)
        start = rng.uniform(0.0, 1.0, size=k) * (w.duration - length)
        score = rng.uniform(0.0, 1.0, size=k)
        out.append(WindowResult(w.key, w.duration,
                                np.stack([start, start + length, score], axis=1), w.gt))
    return out


def even_predictions(windows: Sequence[WindowResult], length: float, per_minute: float,
                     min_segments: int) -> list[WindowResult]:
    """Evenly spaced segments of one length (see module docstring)."""
    out = []
    for w in windows:
        k = segment_cap(w.duration, per_minute, min_segments)
        size = min(float(length), w.duration)
        centre = (np.arange(k) + 0.5) * w.duration / max(k, 1)
        start = np.clip(centre - size / 2, 0.0, w.duration - size)
        pred = np.stack([start, start + size, np.full(k, 0.5)], axis=1)
        out.append(WindowResult(w.key, w.duration, pred, w.gt))
    return out


def _mean_results(results: list[dict]) -> dict:
    """Average metric dicts (same structure) key by key; counts from the first."""
    if len(results) == 1:
        return results[0]
    out = {m: {k: float(np.mean([r[m][k] for r in results])) for k in results[0][m]}
           for m in METRICS}
    out["counts"] = results[0]["counts"]
    out["buckets"] = {
        label: {"windows": b["windows"],
                **{m: {k: float(np.mean([r["buckets"][label][m][k] for r in results]))
                       for k in b[m]} for m in METRICS}}
        for label, b in results[0]["buckets"].items()
    }
    return out


def baseline_metrics(windows: Sequence[WindowResult], lengths: np.ndarray, *, per_minute: float,
                     min_segments: int, seed: int, draws: int, thresholds: Sequence[float],
                     bucket_edges: Sequence[float]) -> dict:
    """`{"random": metrics, "even": metrics, "settings": {...}}` for the ground-truth windows."""
    lengths = np.asarray(lengths, dtype=np.float64)
    rng = np.random.default_rng(seed)
    random_runs = [
        evaluate(random_predictions(windows, lengths, per_minute, min_segments, rng),
                 thresholds, bucket_edges)
        for _ in range(max(1, draws))
    ]
    fixed = float(np.median(lengths)) if len(lengths) else 0.0
    return {
        "random": _mean_results(random_runs),
        "even": evaluate(even_predictions(windows, fixed, per_minute, min_segments),
                         thresholds, bucket_edges),
        "settings": {"seed": seed, "draws": max(1, draws), "even_length": fixed,
                     "length_pool": int(len(lengths)), "per_minute": per_minute,
                     "min_segments": min_segments},
    }
