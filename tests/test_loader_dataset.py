"""The training loader on float16 shards: items and batches keep the stored dtype, the model gets
float32 equal to a plain pad, also when built in a DataLoader worker (shared memory)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from repurpose.quality.shapes import feature_rows, real_like_splits, write_feature_shards
from repurpose.splits.schema import load_split
from repurpose.splits.windows import windows_table, write_windows
from repurpose.training.dataset import WindowDataset, collate, epoch_batches
from repurpose.training.index import index_features, load_plans

DIMS = {"visual": 8, "audio": 12, "text": 4}


@pytest.fixture()
def fp16_dataset(tmp_path):  # noqa: ANN201
    real = tmp_path / "real.json"
    real.write_text(json.dumps([
        {"youtube_id": "aaaaaaaaaaa", "timeRange": [0, 70], "segments": [[5, 20]],
         "timeRangeOffset": [0, 70], "segmentsOffset": [[5, 20]], "coverage": 0.1},
        {"youtube_id": "aaaaaaaaaaa", "timeRange": [70, 95.5], "segments": [[80, 90]],
         "timeRangeOffset": [0, 25.5], "segmentsOffset": [[10, 20]], "coverage": 0.1},
        {"youtube_id": "bbbbbbbbbbb", "timeRange": [30, 62], "segments": [[40, 50]],
         "timeRangeOffset": [0, 32], "segmentsOffset": [[10, 20]], "coverage": 0.2},
    ]))
    splits = real_like_splits([real], 6, seed=3, shares=(("train", 1.0),))
    assert {e["youtube_id"] for e in splits["train"]} == {f"syn{k:08d}" for k in range(6)}
    path = tmp_path / "train.json"
    path.write_text(json.dumps(splits["train"]))
    write_windows(tmp_path / "windows.parquet",
                  windows_table(load_split(path, split="train").unique_entries()))
    rows = feature_rows(splits["train"])
    counts = write_feature_shards(tmp_path / "features", rows, DIMS, n_shards=3)
    assert counts["videos"] == 6 and counts["rows"] == sum(len(r) for r in rows.values())
    plans, funnel = load_plans(tmp_path / "windows.parquet", "train",
                               index_features(tmp_path / "features"), None)
    assert funnel.windows_used == len(splits["train"])
    return WindowDataset(plans, tmp_path / "features", cache_videos=2)


def _plain_pad(items: list[dict], key: str) -> torch.Tensor:
    longest = max(len(it["labels"]) for it in items)
    out = torch.zeros(len(items), longest, items[0][key].shape[1])
    for b, it in enumerate(items):
        out[b, : len(it[key])] = it[key].float()
    return out


def test_batches_keep_float16_and_reach_the_model_as_float32(fp16_dataset):
    from repurpose.inference import to_device

    items = [fp16_dataset[i] for i in range(len(fp16_dataset))]
    assert items[0]["audio"].dtype == torch.float16 and items[0]["audio"].shape[1] == 12
    batch = collate(items)
    on_device = to_device(batch, torch.device("cpu"))
    for m in DIMS:
        assert batch[m].dtype == torch.float16  # half the bytes through the loader
        assert on_device[m].dtype == torch.float32
        assert torch.equal(on_device[m], _plain_pad(items, m))
    assert batch["visual"][~batch["mask"]].abs().sum() == 0


def test_worker_batches_equal_in_process_ones(fp16_dataset):
    batches = epoch_batches(len(fp16_dataset), 3, seed=0, epoch=0)
    here = list(DataLoader(fp16_dataset, batch_sampler=batches, collate_fn=collate))
    there = list(DataLoader(fp16_dataset, batch_sampler=batches, collate_fn=collate,
                            num_workers=1))
    assert len(here) == len(there) == len(batches)
    for a, b in zip(here, there, strict=True):
        assert a["window_id"] == b["window_id"]
        for key in (*DIMS, "labels", "targets", "mask", "clips", "clip_mask"):
            assert torch.equal(a[key], b[key]), key
        assert np.isfinite(b["audio"].numpy()).all()
