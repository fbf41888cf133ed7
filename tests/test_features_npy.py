"""`repurpose features import-npy / export-npy`: the reference's <youtube_id>.npy layout."""

from __future__ import annotations

import numpy as np
import pytest

from repurpose import cli
from repurpose.errors import UserError
from repurpose.features.npy import export_npy, import_npy
from repurpose.features.shards import FeatureMeta, FeatureStore, VideoFeatures, write_shard


def make_reference(folder, dims=8, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {"refvideo001": rng.standard_normal((12, dims)).astype(np.float32),
              "refvideo002": rng.standard_normal((7, dims)).astype(np.float32),
              "ref-video_3": rng.standard_normal((30, dims)).astype(np.float32)}
    folder.mkdir(parents=True, exist_ok=True)
    for yid, a in arrays.items():
        np.save(folder / f"{yid}.npy", a)
    return arrays


def test_round_trip_through_the_cli(tmp_path, capsys):
    arrays = make_reference(tmp_path / "video_clip_features")
    rc = cli.main(["features", "import-npy", "--modality", "visual", "--src",
                   str(tmp_path / "video_clip_features"), "--out", str(tmp_path / "shards"),
                   "--dtype", "float32", "--n-shards", "2", "--backend", "clip-vit-b32",
                   "--weights", "reference-release"])
    assert rc == 0 and "import-npy: 3 videos" in capsys.readouterr().out
    store = FeatureStore(tmp_path / "shards")
    assert store.meta.backend == "clip-vit-b32" and store.meta.weights == "reference-release"
    assert store.read("refvideo002").t.tolist() == list(range(7))  # rows from second 0
    np.testing.assert_array_equal(store.window("ref-video_3", 10, 20), arrays["ref-video_3"][10:20])

    rc = cli.main(["features", "export-npy", "--src", str(tmp_path / "shards"), "--out",
                   str(tmp_path / "back")])
    assert rc == 0
    for yid, a in arrays.items():
        back = np.load(tmp_path / "back" / f"{yid}.npy")
        assert back.dtype == np.float32
        np.testing.assert_array_equal(back, a)


def test_reimport_rewrites_only_changed_shards(tmp_path):
    src = tmp_path / "src"
    arrays = make_reference(src)
    n, report = import_npy(src, tmp_path / "out", "audio", n_shards=3)
    assert n == 3 and report.written >= 2
    n, report = import_npy(src, tmp_path / "out", "audio", n_shards=3)
    assert report.written == 0 and report.removed == 0
    np.save(src / "refvideo001.npy", arrays["refvideo001"] + 1)
    _, report = import_npy(src, tmp_path / "out", "audio", n_shards=3)
    assert report.written == 1  # only the shard holding refvideo001


def test_import_rejects_bad_input(tmp_path):
    (tmp_path / "a").mkdir()
    np.save(tmp_path / "a" / "notanid.npy", np.zeros((3, 4)))
    with pytest.raises(UserError, match="not a youtube id"):
        import_npy(tmp_path / "a", tmp_path / "o", "text")
    (tmp_path / "b").mkdir()
    np.save(tmp_path / "b" / "aaaaaaaaaaa.npy", np.zeros((3, 4)))
    np.save(tmp_path / "b" / "bbbbbbbbbbb.npy", np.zeros((3, 5)))
    with pytest.raises(UserError, match="dimension 5 differs"):
        import_npy(tmp_path / "b", tmp_path / "o", "text")
    with pytest.raises(UserError, match="no <youtube_id>.npy"):
        import_npy(tmp_path / "empty", tmp_path / "o", "text")


def test_export_fills_rows_before_the_download_with_zeros(tmp_path):
    meta = FeatureMeta("audio", "logmel", "none", dim=2, dtype="float16")
    t = np.arange(100, 104, dtype=np.int32)
    write_shard(tmp_path / "s" / "part-00000.parquet",
                [VideoFeatures("latevideo01", t, np.ones((4, 2), np.float32))], meta)
    n, filled = export_npy(tmp_path / "s", tmp_path / "o", dtype="float16")
    a = np.load(tmp_path / "o" / "latevideo01.npy")
    assert n == 1 and filled == 100 and a.shape == (104, 2) and a.dtype == np.float16
    assert not a[:100].any() and (a[100:] == 1).all()
    with pytest.raises(UserError, match="no features for"):
        export_npy(tmp_path / "s", tmp_path / "o", ids=["zzzzzzzzzzz"])
