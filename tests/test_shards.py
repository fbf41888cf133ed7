"""The Parquet shard contract (repurpose.features.shards) and stable shard membership."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from repurpose.features.assembly import shard_of
from repurpose.features.shards import (
    FeatureMeta,
    FeatureStore,
    ShardError,
    VideoFeatures,
    read_meta,
    read_video_keys,
    window_slice,
    write_shard,
)


def _video(yid: str, first: int, n: int, dim: int = 4) -> VideoFeatures:
    t = np.arange(first, first + n, dtype=np.int32)
    emb = (t[:, None] * 10 + np.arange(dim)[None, :]).astype(np.float32)
    return VideoFeatures(yid, t, emb)


META = FeatureMeta(modality="visual", backend="test", weights="sha256:x", dim=4, dtype="float32",
                   params={"a": 1})


def test_contract_columns_order_metadata(tmp_path):
    path = tmp_path / "part-00000.parquet"
    write_shard(path, [_video("bbbbbbbbbbb", 5, 3), _video("aaaaaaaaaaa", 0, 2)], META)
    table = pq.read_table(path)
    assert table.schema.field("youtube_id").type == pa.string()
    assert table.schema.field("t").type == pa.int32()
    emb_type = table.schema.field("embedding").type
    assert pa.types.is_fixed_size_list(emb_type) and emb_type.list_size == 4
    assert emb_type.value_type == pa.float32()
    ids = table.column("youtube_id").to_pylist()
    assert ids == ["aaaaaaaaaaa"] * 2 + ["bbbbbbbbbbb"] * 3  # sorted by (youtube_id, t)
    assert table.column("t").to_pylist() == [0, 1, 5, 6, 7]
    assert pq.ParquetFile(path).num_row_groups == 2  # one row group per video
    meta, videos = read_meta(path)
    assert meta == META and videos == ["aaaaaaaaaaa", "bbbbbbbbbbb"]
    assert read_video_keys(path) == {}  # optional: absent in shards written without keys


def test_video_keys_round_trip_and_backward_compatible(tmp_path):
    path = tmp_path / "part-00000.parquet"
    keys = {"aaaaaaaaaaa": "k1", "bbbbbbbbbbb": "k2"}
    write_shard(path, [_video("aaaaaaaaaaa", 0, 2), _video("bbbbbbbbbbb", 0, 2)], META,
                video_keys=keys)
    assert read_video_keys(path) == keys
    meta, videos = read_meta(path)  # readers that ignore keys still work
    assert meta == META and len(videos) == 2


def test_store_read_window_and_float16(tmp_path):
    meta16 = FeatureMeta("audio", "test", "w", dim=4, dtype="float16")
    write_shard(tmp_path / "part-00000.parquet", [_video("aaaaaaaaaaa", 100, 10)], meta16)
    write_shard(tmp_path / "part-00001.parquet", [_video("ccccccccccc", 0, 3)], meta16)
    store = FeatureStore(tmp_path)
    assert store.videos == {"aaaaaaaaaaa", "ccccccccccc"}
    v = store.read("aaaaaaaaaaa")
    assert v.embedding.dtype == np.float16 and v.t[0] == 100
    win = store.window("aaaaaaaaaaa", 102, 105.7)  # rows 102..104 (int() of the bounds)
    assert win.shape == (3, 4) and win[0, 0] == 1020
    assert store.window("aaaaaaaaaaa", 108, 200).shape[0] == 2  # shorter at the end
    both = store.read_many(["aaaaaaaaaaa", "ccccccccccc", "zzzzzzzzzzz"])
    assert set(both) == {"aaaaaaaaaaa", "ccccccccccc"}


def test_window_before_first_row_is_an_error():
    with pytest.raises(ShardError):
        window_slice(_video("aaaaaaaaaaa", 100, 10), 98, 104)


def test_mixed_producers_refused(tmp_path):
    write_shard(tmp_path / "part-00000.parquet", [_video("aaaaaaaaaaa", 0, 2)], META)
    other = FeatureMeta("visual", "other", "sha256:y", dim=4, dtype="float32")
    write_shard(tmp_path / "part-00001.parquet", [_video("bbbbbbbbbbb", 0, 2)], other)
    with pytest.raises(ShardError, match="produced by"):
        FeatureStore(tmp_path).videos  # noqa: B018


def test_shard_membership_is_stable():
    ids = [f"vid{i:08d}" for i in range(200)]
    before = {yid: shard_of(yid, 8) for yid in ids}
    after = {yid: shard_of(yid, 8) for yid in [*ids, "newvideo000"]}
    assert all(after[y] == before[y] for y in ids)  # adding a video moves nothing
    assert len(set(before.values())) == 8  # and the hash spreads videos over all shards
