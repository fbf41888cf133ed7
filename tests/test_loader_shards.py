"""Shard encoding that keeps the training loader fast (benchmarks/loader.py measures it)."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pyarrow.parquet as pq

from repurpose.features import shards
from repurpose.features.shards import FeatureMeta, FeatureStore, VideoFeatures, write_shard


def _videos(rng: np.random.Generator) -> list[VideoFeatures]:
    return [VideoFeatures(f"vid{k:08d}", np.arange(50 * k, 50 * k + 40 + k, dtype=np.int32),
                          rng.normal(size=(40 + k, 6)).astype(np.float16)) for k in range(3)]


def test_vectors_are_not_dictionary_encoded_and_read_back(tmp_path):
    videos = _videos(np.random.default_rng(0))
    path = tmp_path / "visual" / "part-00000.parquet"
    write_shard(path, videos, FeatureMeta("visual", "b", "w", 6))
    column = pq.ParquetFile(path).metadata.row_group(0).column(2)
    assert column.path_in_schema == "embedding.list.element"
    assert not column.has_dictionary_page
    store = FeatureStore(tmp_path / "visual")
    for v in videos:
        got = store.read(v.youtube_id)
        np.testing.assert_array_equal(got.t, v.t)
        np.testing.assert_array_equal(got.embedding, v.embedding)
    assert set(store.read_many([v.youtube_id for v in videos])) == store.videos


def test_shards_written_with_dictionaries_still_read(tmp_path):
    videos = _videos(np.random.default_rng(1))
    with mock.patch.dict(shards.WRITER_OPTIONS, use_dictionary=True):  # the writer before
        write_shard(tmp_path / "audio" / "part-00000.parquet", videos,
                    FeatureMeta("audio", "b", "w", 6))
    assert pq.ParquetFile(tmp_path / "audio" / "part-00000.parquet").metadata.row_group(
        0).column(2).has_dictionary_page
    store = FeatureStore(tmp_path / "audio")
    for v in videos:
        np.testing.assert_array_equal(store.read(v.youtube_id).embedding, v.embedding)
        np.testing.assert_array_equal(store.window(v.youtube_id, v.t[0] + 2.5, v.t[0] + 9),
                                      v.embedding[2:9])
