"""The standalone evaluator: a split JSON (ground truth) + a predictions JSONL -> metrics.

Predictions file, one JSON object per line and per window:
    {"youtube_id": "...", "window": [start, end], "segments": [[start, end, score], ...]}
`window` is the window in absolute source seconds (the split's `timeRange`), segment times are
window seconds (the frame of `segmentsOffset`). Windows of the split without a line count as
windows without predictions; a line for a window the split does not have is an error naming
it, so is a second line for the same window. No model and no torch are needed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repurpose.errors import UserError
from repurpose.evaluation.metrics import THRESHOLDS, WindowResult, evaluate_windows, length_buckets
from repurpose.splits.schema import MAX_TIME, SplitEntry, load_split

MAX_LISTED = 20
DEFAULT_BUCKETS = (60, 300, 900, 1800)


class PredictionsError(UserError):
    """A predictions file is malformed or names windows the split does not have."""


def window_key(youtube_id: str, start: float, end: float) -> str:
    """The window id of the windows table: `<youtube_id>@<start>-<end>` (3 decimals)."""
    return SplitEntry("", 0, youtube_id, float(start), float(end), ()).window_id


@dataclass(frozen=True)
class GroundTruth:
    """The windows of one split: key -> (duration, clips [G, 2] in window seconds)."""

    path: str
    windows: dict[str, tuple[float, np.ndarray]]
    duplicates: int = 0

    def clip_lengths(self) -> np.ndarray:
        """Lengths of every clip of the split (seconds)."""
        parts = [c[:, 1] - c[:, 0] for _, c in self.windows.values()]
        return np.concatenate(parts) if parts else np.zeros(0)


def load_ground_truth(path: str | os.PathLike[str]) -> GroundTruth:
    """Validate a split JSON and index its unique windows (exact duplicate entries dropped)."""
    parsed = load_split(path)
    windows: dict[str, tuple[float, np.ndarray]] = {}
    clashes = []
    for e in parsed.unique_entries():
        clips = np.asarray(e.clips, dtype=np.float64).reshape(-1, 2)
        if e.window_id in windows and not np.array_equal(windows[e.window_id][1], clips):
            clashes.append(f"{e.window_id} (entry {e.index})")
            continue
        windows[e.window_id] = (e.duration, clips)
    if clashes:
        raise UserError(f"{path}: {len(clashes)} window(s) appear twice with different clips: "
                        + ", ".join(clashes[:MAX_LISTED]))
    return GroundTruth(str(path), windows, len(parsed.duplicates))


def _number(value: object) -> bool:
    """A finite JSON number no larger in size than MAX_TIME (booleans are not numbers)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value) and abs(value) <= MAX_TIME
    except OverflowError:  # an integer too large for a float
        return False


def parse_prediction_line(line: str, where: str) -> tuple[str, np.ndarray]:
    """One JSONL line -> (window key, segments [P, 3]); PredictionsError naming `where`."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise PredictionsError(f"{where}: invalid JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise PredictionsError(f"{where}: JSON nested too deeply") from exc
    except ValueError as exc:  # e.g. an integer literal of more than 4300 digits
        raise PredictionsError(f"{where}: invalid JSON: {exc}") from exc
    try:
        return _prediction(obj, where)
    except RecursionError as exc:  # a value too deep to quote in the message
        raise PredictionsError(f"{where}: JSON nested too deeply") from exc


def _prediction(obj: object, where: str) -> tuple[str, np.ndarray]:
    """A decoded predictions line -> (window key, segments [P, 3]), checked field by field."""
    if not isinstance(obj, dict):
        raise PredictionsError(f"{where}: expected a JSON object")
    for name in ("youtube_id", "window", "segments"):
        if name not in obj:
            raise PredictionsError(f"{where}: field '{name}' missing")
    yid, window, segments = obj["youtube_id"], obj["window"], obj["segments"]
    if not isinstance(yid, str):
        raise PredictionsError(f"{where}: field 'youtube_id' must be a string")
    if not (isinstance(window, list) and len(window) == 2 and all(map(_number, window))
            and 0 <= window[0] < window[1]):
        raise PredictionsError(f"{where}: field 'window' must be [start, end] with "
                               f"0 <= start < end <= {MAX_TIME:g}, got "
                               f"{json.dumps(window)[:60]}")
    if not isinstance(segments, list):
        raise PredictionsError(f"{where}: field 'segments' must be a list")
    for k, seg in enumerate(segments):
        if not (isinstance(seg, list) and len(seg) == 3 and all(map(_number, seg))
                and seg[1] >= seg[0]):
            raise PredictionsError(f"{where}: segments[{k}] must be [start, end, score] of "
                                   f"numbers within +-{MAX_TIME:g} with end >= start, got "
                                   f"{json.dumps(seg)[:60]}")
    arr = np.asarray(segments, dtype=np.float64).reshape(-1, 3)
    return window_key(yid, window[0], window[1]), arr


def load_predictions(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a predictions JSONL: window key -> segments [P, 3]; a repeated window is an error."""
    p = Path(path)
    if not p.is_file():
        raise PredictionsError(f"{p}: predictions file not found")
    out: dict[str, np.ndarray] = {}
    lineno = 0
    try:
        with p.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                key, segs = parse_prediction_line(line, f"{p}:{lineno}")
                if key in out:
                    raise PredictionsError(f"{p}:{lineno}: window {key} appears a second time")
                out[key] = segs
    except UnicodeDecodeError as exc:
        raise PredictionsError(f"{p}:{lineno + 1}: not UTF-8 text") from exc
    except OSError as exc:
        raise PredictionsError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    return out


def join(gt: GroundTruth, predictions: dict[str, np.ndarray],
         pred_path: str = "predictions") -> list[WindowResult]:
    """One WindowResult per ground-truth window; unknown predicted windows are an error."""
    unknown = sorted(set(predictions) - set(gt.windows))
    if unknown:
        listed = ", ".join(unknown[:MAX_LISTED])
        more = f" and {len(unknown) - MAX_LISTED} more" if len(unknown) > MAX_LISTED else ""
        raise PredictionsError(f"{pred_path}: {len(unknown)} window(s) not in {gt.path}: "
                               f"{listed}{more}")
    return [WindowResult(key, duration, predictions.get(key, np.zeros((0, 3))), clips)
            for key, (duration, clips) in sorted(gt.windows.items())]


def evaluate(windows: Sequence[WindowResult], thresholds: Sequence[float] = THRESHOLDS,
             bucket_edges: Sequence[float] = DEFAULT_BUCKETS) -> dict:
    """Metrics over all windows, counts, and the same metrics per window-length bucket."""
    result: dict = evaluate_windows(windows, thresholds)
    result["counts"] = {
        "windows": len(windows),
        "windows_with_predictions": sum(1 for w in windows if len(w.pred)),
        "predictions": int(sum(len(w.pred) for w in windows)),
        "clips": int(sum(len(w.gt) for w in windows)),
    }
    buckets = {}
    for label, lo, hi in length_buckets(bucket_edges):
        members = [w for w in windows if w.duration >= lo and (hi is None or w.duration < hi)]
        buckets[label] = {"windows": len(members), **evaluate_windows(members, thresholds)}
    result["buckets"] = buckets
    return result


def evaluate_files(gt_path: str | os.PathLike[str], pred_path: str | os.PathLike[str],
                   thresholds: Sequence[float] = THRESHOLDS,
                   bucket_edges: Sequence[float] = DEFAULT_BUCKETS) -> dict:
    """Evaluate a predictions JSONL against a split JSON."""
    gt = load_ground_truth(gt_path)
    windows = join(gt, load_predictions(pred_path), str(pred_path))
    return evaluate(windows, thresholds, bucket_edges)
