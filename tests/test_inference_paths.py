"""One inference path: `repurpose clip` and `repurpose predict` give the same segments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from repurpose.cli import main as cli
from repurpose.clip.predict import postprocess_config, predict_segments, split_windows
from repurpose.splits.schema import SplitEntry
from repurpose.splits.windows import windows_table, write_windows
from repurpose.training.predict import predict_split
from repurpose.training.train import load_model
from tests.clip_kit import build_model, make_input

pytestmark = pytest.mark.slow


def test_clip_and_predict_give_the_same_segments(tmp_path: Path) -> None:
    params, model = build_model(tmp_path, epochs=6)
    video = make_input(tmp_path / "talk.mp4")
    out = tmp_path / "clips"
    rc = cli(["clip", str(video), "--model", str(model), "--out", str(out), "--params",
              str(params), "--window-seconds", "20", "--max-clips", "50"])
    assert rc == 0
    manifest = json.loads((out / "clips.json").read_text())
    features = next((out / ".work").glob("videos/*/features"))
    video_id = features.parent.name
    duration = float(manifest["source"]["duration"])
    net, info = load_model(model)
    post = postprocess_config(info, {})

    spans, clip_segments = predict_segments(net, features, video_id, duration, 20, post,
                                            torch.device("cpu"))
    assert spans == split_windows(duration, 20) and manifest["candidates"] == len(clip_segments)

    # the same windows as a split file, through `repurpose predict`'s function
    entries = [SplitEntry("clip", i, video_id, a, b, ((a, min(a + 10.0, b)),))
               for i, (a, b) in enumerate(spans)]
    windows = tmp_path / "windows.parquet"
    write_windows(windows, windows_table(entries))
    pred = tmp_path / "pred.jsonl"
    predict_split(model, windows, features, None, "clip", pred, post, device="cpu")
    from_predict = []
    for line in pred.read_text().splitlines():
        row = json.loads(line)
        start = row["window"][0]
        from_predict += [(round(start + s, 3), round(min(start + e, duration), 3), c)
                         for s, e, c in row["segments"]]
    from_clip = [(s.start, s.end, s.score) for s in clip_segments]
    assert len(from_clip) == len(from_predict) > 0
    key = sorted(from_predict, key=lambda x: (-x[2], x[0]))
    assert np.allclose(np.array(key)[:, :2], np.array(from_clip)[:, :2], atol=2e-3)
    assert np.allclose(np.array(key)[:, 2], np.array(from_clip)[:, 2], atol=1e-5)
