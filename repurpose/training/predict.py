"""A trained model over one split's windows -> predictions JSONL (one line per window).

Line: `{"youtube_id", "window": [start, end], "segments": [[start, end, score], ...]}`, window
in absolute source seconds, segments in window seconds, best first. Windows that cannot be
used (video not downloaded, a modality missing) get a line with no segments and are counted.
The features must come from the backends the model was trained on (checked against
model.json: backend, weights, dim and fps per modality).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from repurpose import io
from repurpose.errors import UserError
from repurpose.inference import predict_plans
from repurpose.model.config import MODALITIES
from repurpose.model.postprocess import PostprocessConfig
from repurpose.splits.windows import read_windows
from repurpose.training.index import Funnel, index_features, plan_windows, usable_videos
from repurpose.training.loop import resolve_device
from repurpose.training.train import feature_info, load_model

log = logging.getLogger(__name__)
IDENTITY = ("backend", "weights", "dim", "fps")


def check_features(trained: dict[str, dict], current: dict[str, dict]) -> None:
    """UserError naming each modality whose features differ from the training ones."""
    problems = []
    for m in MODALITIES:
        was, now = trained.get(m, {}), current.get(m, {})
        diff = [f"{k} {was.get(k)!r} -> {now.get(k)!r}" for k in IDENTITY
                if was.get(k) != now.get(k)]
        if diff:
            problems.append(f"{m}: " + ", ".join(diff))
    if problems:
        raise UserError("the features differ from those the model was trained on: "
                        + "; ".join(problems))


def _round(segments) -> list[list[float]]:  # noqa: ANN001
    return [[round(float(s), 3), round(float(e), 3), round(float(c), 6)] for s, e, c in segments]


def predict_split(model_dir: str | os.PathLike[str], windows: str | os.PathLike[str],
                  features: str | os.PathLike[str], ledger: str | os.PathLike[str] | None,
                  split: str, out: str | os.PathLike[str], post: PostprocessConfig,
                  device: str = "auto", batch_size: int = 8) -> Funnel:
    """Predict every window of `split` and write the JSONL atomically; return the funnel."""
    dev = resolve_device(device)
    net, info = load_model(model_dir, dev)
    modalities = index_features(features)
    check_features(info["features"], feature_info(modalities, Path(features)))
    all_windows = read_windows(windows, split)
    if not all_windows:
        raise UserError(f"{windows}: no windows in split '{split}'")
    plans, funnel = plan_windows(all_windows, split, modalities, usable_videos(ledger))
    for line in funnel.lines():
        log.info("%s", line)
    by_id, _ = predict_plans(net, plans, str(features), dev, post, batch_size)
    lines = []
    for w in all_windows:
        segs = by_id.get(w.window_id)
        lines.append(json.dumps({"youtube_id": w.youtube_id, "window": [w.start, w.end],
                                 "segments": _round(segs) if segs is not None else []}))
    io.write_text(Path(out), "\n".join(lines) + "\n")
    return funnel
