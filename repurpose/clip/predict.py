"""Windows of one video -> the model's ranked clips, in absolute seconds.

The video is cut into `n = ceil(duration / window_seconds)` windows of nearly equal length with
whole-second boundaries (so a long video never ends in a tiny last window, which the per-minute
cap and the 10 s minimum length would leave empty). Each window is planned, read and predicted
by the training code (`plan_windows`, `WindowDataset`, `infer`), post-processed with the
model's `postprocess` params, and its segments are shifted to absolute seconds. All windows'
segments are then ranked by score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repurpose.errors import UserError
from repurpose.model.postprocess import PostprocessConfig
from repurpose.timeline import n_label_seconds

SPLIT = "clip"


# postprocess keys added after models were first saved, with the value that reproduces what
# those models did (a model.json without the key decodes as it did when it was trained)
POSTPROCESS_ADDED = {"gap": 0}


@dataclass(frozen=True)
class ClipCandidate:
    """One predicted clip (before export): source-video seconds, its score, its window."""

    start: float
    end: float
    score: float
    window: int

    @property
    def duration(self) -> float:
        return self.end - self.start


def split_windows(duration: float, window_seconds: int) -> list[tuple[float, float]]:
    """`[(start, end), ...]` covering `[0, duration)`: ceil(duration / window_seconds) windows
    of at most `window_seconds`, boundaries on whole seconds, lengths as equal as possible."""
    if window_seconds < 1:
        raise UserError(f"--window-seconds must be >= 1, got {window_seconds}")
    if duration <= 0:
        return []
    n = max(1, math.ceil(duration / window_seconds))
    step = min(window_seconds, math.ceil(duration / n))
    bounds = [float(min(k * step, duration)) for k in range(n)] + [float(duration)]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def postprocess_config(model_info: dict[str, Any], params: dict[str, Any]) -> PostprocessConfig:
    """The model's `postprocess` section (recorded at training), else params.yaml's."""
    section = (model_info.get("params") or {}).get("postprocess")
    if not isinstance(section, dict):
        section = params.get("postprocess")
    if not isinstance(section, dict):
        raise UserError("no postprocess params: neither model.json nor the params file has them")
    return PostprocessConfig.from_section({**POSTPROCESS_ADDED, **section})


def predict_segments(net, features: Path, video_id: str, duration: float,  # noqa: ANN001
                     window_seconds: int, post: PostprocessConfig, device,  # noqa: ANN001
                     batch_size: int = 8) -> tuple[list[tuple[float, float]], list[ClipCandidate]]:
    """The windows and every window's decoded segments (absolute s), best first, through the
    same inference path as `repurpose predict` (`repurpose.inference.predict_plans`)."""
    from repurpose.inference import predict_plans
    from repurpose.splits.windows import Window
    from repurpose.training.index import index_features, plan_windows

    spans = split_windows(duration, window_seconds)
    windows = []
    for start, end in spans:
        n = n_label_seconds(end - start)
        windows.append(Window(SPLIT, f"{video_id}@{start:g}-{end:g}", video_id, start, end, (),
                              np.zeros(n, np.int8), np.zeros((n, 2), np.float32)))
    plans, funnel = plan_windows(windows, SPLIT, index_features(features), None)
    if not plans:
        raise UserError(f"no window of the video has features in every modality "
                        f"({'; '.join(funnel.lines())})")
    by_id, _ = predict_plans(net, plans, str(features), device, post, batch_size)
    index = {w.window_id: i for i, w in enumerate(windows)}
    segments = []
    for plan in plans:
        w = plan.window
        for s, e, c in by_id[w.window_id]:
            a, b = w.start + float(s), min(w.start + float(e), duration)
            if b > a:
                segments.append(ClipCandidate(round(a, 3), round(b, 3), float(c),
                                              index[w.window_id]))
    segments.sort(key=lambda seg: (-seg.score, seg.start))
    return spans, segments


def snap_to_frames(seg: ClipCandidate, fps: float, duration: float) -> ClipCandidate:
    """`seg` with start and end on the video's frame grid (so an exported clip holds exactly
    the frames it lists and its length equals end - start), inside `[0, duration]`. Unchanged
    when the frame rate is unknown or snapping would leave nothing."""
    if fps <= 0:
        return seg
    a = round(seg.start * fps) / fps
    b = min(round(seg.end * fps), math.floor(duration * fps + 1e-6)) / fps
    if b <= a:
        return seg
    return ClipCandidate(round(a, 3), round(b, 3), seg.score, seg.window)


def select(segments: list[ClipCandidate], max_clips: int | None, min_score: float | None
           ) -> list[ClipCandidate]:
    """The best `max_clips` segments scoring at least `min_score` (already ranked)."""
    kept = [s for s in segments if min_score is None or s.score >= min_score]
    return kept[:max_clips] if max_clips is not None else kept
