"""The extract stage end to end: alignment, incremental reuse, stable shards, kills, bad media."""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

import stages.extract
from repurpose.features.assembly import shard_of
from repurpose.features.extract import ExtractJob, extract_video, run_extract
from repurpose.features.shards import FeatureStore, read_meta, shard_paths
from repurpose.pervideo.inputs import load_videos, row_range
from repurpose.pervideo.results import ResultCache
from repurpose.runner import serial_map
from tests.synthetic_media import pattern_video, write_test_ledger

REPO = Path(__file__).resolve().parents[1]
RED = (2, 3, 7)

PARAMS = {
    "extract": {
        "visual": {"backend": "efficientnet-lite0", "device": "auto", "batch_size": 4,
                   "dtype": "float32", "n_shards": 4,
                   # small frames keep the tests quick (the network pools over any size)
                   "efficientnet-lite0": {"weights": "package", "resize": 128, "crop": 112}},
        "audio": {"backend": "logmel", "device": "auto", "batch_size": 4, "dtype": "float32",
                  "n_shards": 4},
    }
}


def write_params(path: Path, params: dict | None = None) -> Path:
    path.write_text(yaml.safe_dump(params or PARAMS))
    return path


def extract(tmp: Path, modality: str, params: Path, videos: Path, **kw) -> int:
    args = argparse.Namespace(params=str(params), modality=modality, videos=videos,
                              ledger=videos / "ledger.parquet", out=tmp / "out" / modality,
                              cache=tmp / "cache" / modality, backend=kw.get("backend"),
                              retry_failed=False)
    return stages.extract.main(args, mapper=serial_map)


def last_counts(capsys) -> dict[str, tuple[int, int]]:  # noqa: ANN001
    """modality -> (computed, reused) from the printed summaries."""
    out = {}
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("extract ") and " computed, " in line:
            words = line.split()
            modality = words[1]
            computed = int(line.split(" computed")[0].split()[-1])
            reused = int(line.split(" reused")[0].split()[-1])
            out[modality] = (computed, reused)
    return out


@pytest.fixture(scope="module")
def pattern_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pattern")
    return pattern_video(folder / "src.mp4", 10, RED)


def _library(folder: Path, pattern_file: Path, spec: dict[str, dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for yid in spec:
        shutil.copy(pattern_file, folder / f"{yid}.mp4")
    write_test_ledger(folder, spec)
    return folder


# --- alignment -------------------------------------------------------------------------------


def test_row_range_rounding():
    assert row_range(0, 10) == (0, 10)
    assert row_range(100, 10) == (100, 110)
    assert row_range(100.3, 10) == (100, 110)  # midpoints 100.5 .. 109.5 lie in [100.3, 110.3)
    assert row_range(100.7, 10) == (101, 111)
    assert row_range(0, 9.4) == (0, 9)  # second 9's midpoint 9.5 is past the end
    assert row_range(0, 0.4) == (0, 0)
    assert row_range(0, 0.6) == (0, 1)


@pytest.mark.parametrize("offset", [100.0, 100.7])
def test_rows_are_absolute_seconds(tmp_path, pattern_file, offset):
    """A window starting past 0: row t holds absolute second t (frame at t+0.5, audio [t,t+1))."""
    videos = _library(tmp_path / "videos", pattern_file, {"patternvid1": {"source_offset": offset}})
    params = write_params(tmp_path / "params.yaml")
    assert extract(tmp_path, "visual", params, videos) == 0
    assert extract(tmp_path, "audio", params, videos) == 0
    first = round(offset + 0.01)  # 100 or 101
    red_rows = {t for t in range(first, first + 10) if int(np.floor(t + 0.5 - offset)) in RED}
    assert len(red_rows) == 3
    vis = FeatureStore(tmp_path / "out" / "visual").read("patternvid1")
    aud = FeatureStore(tmp_path / "out" / "audio").read("patternvid1")
    for feats in (vis, aud):
        assert feats.t.tolist() == list(range(first, first + 10))
    assert vis.embedding.shape == (10, 1280) and aud.embedding.shape == (10, 128)
    red = next(iter(red_rows))
    blue = next(t for t in vis.t if t not in red_rows)
    dist = lambda feats, t0: np.linalg.norm(feats.embedding - feats.embedding[t0 - first], axis=1)  # noqa: E731
    vis_red = {int(t) for t, d in zip(vis.t, dist(vis, red), strict=True) if d < 1e-3}
    vis_blue = {int(t) for t, d in zip(vis.t, dist(vis, blue), strict=True) if d < 1e-3}
    assert vis_red == red_rows and vis_blue == set(range(first, first + 10)) - red_rows
    loudness = aud.embedding[:, :64].max(1)  # loudest band (mean log-mel dB over the second)
    loud = {int(t) for t, v in zip(aud.t, loudness, strict=True) if v > loudness.min() + 30}
    if offset == int(offset):
        assert loud == red_rows
    else:  # audio rows straddle file seconds: each red second leaks into its neighbour row
        assert red_rows <= loud | {r + 1 for r in red_rows}
    window = FeatureStore(tmp_path / "out" / "visual").window("patternvid1", first + 2, first + 5)
    assert window.shape == (3, 1280)


# --- incremental --------------------------------------------------------------------------------


def _shard_state(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in shard_paths(folder)}


def test_incremental_add_video_and_change_param(tmp_path, pattern_file, capsys):
    ids = ["incrvideo01", "incrvideo02", "incrvideo03"]
    spec = {yid: {"source_offset": 10.0} for yid in ids[:2]}
    videos = _library(tmp_path / "videos", pattern_file, spec)
    params = write_params(tmp_path / "params.yaml")
    for m in ("visual", "audio"):
        assert extract(tmp_path, m, params, videos) == 0
    assert last_counts(capsys) == {"visual": (2, 0), "audio": (2, 0)}
    before = {m: _shard_state(tmp_path / "out" / m) for m in ("visual", "audio")}

    time.sleep(0.01)
    for m in ("visual", "audio"):  # nothing changed: all reused, no shard rewritten
        extract(tmp_path, m, params, videos)
    assert last_counts(capsys) == {"visual": (0, 2), "audio": (0, 2)}
    for m in ("visual", "audio"):
        assert _shard_state(tmp_path / "out" / m) == before[m]

    shutil.copy(pattern_file, videos / f"{ids[2]}.mp4")  # add one video
    write_test_ledger(videos, {yid: {"source_offset": 10.0} for yid in ids})
    for m in ("visual", "audio"):
        extract(tmp_path, m, params, videos)
    assert last_counts(capsys) == {"visual": (1, 2), "audio": (1, 2)}
    new_shard = f"part-{shard_of(ids[2], 4):05d}.parquet"
    for m in ("visual", "audio"):
        after = _shard_state(tmp_path / "out" / m)
        for name, state in before[m].items():
            if name != new_shard:
                assert after[name] == state, f"{m}/{name} was rewritten"
        assert FeatureStore(tmp_path / "out" / m).videos == set(ids)

    changed = json.loads(json.dumps(PARAMS))
    changed["extract"]["visual"]["efficientnet-lite0"]["resize"] = 120
    write_params(params, changed)
    for m in ("visual", "audio"):
        extract(tmp_path, m, params, videos)
    assert last_counts(capsys) == {"visual": (3, 0), "audio": (0, 3)}
    meta, _ = read_meta(shard_paths(tmp_path / "out" / "visual")[0])
    assert meta.params["resize"] == 120


def test_cache_survives_deleted_outputs_and_dtype_change(tmp_path, pattern_file, capsys):
    videos = _library(tmp_path / "videos", pattern_file, {"cachevideo1": {}})
    params = write_params(tmp_path / "params.yaml")
    extract(tmp_path, "audio", params, videos)
    shutil.rmtree(tmp_path / "out")  # what `dvc repro` does to outputs
    extract(tmp_path, "audio", params, videos)
    assert last_counts(capsys)["audio"] == (0, 1)
    changed = json.loads(json.dumps(PARAMS))
    changed["extract"]["audio"]["dtype"] = "float16"
    write_params(params, changed)
    extract(tmp_path, "audio", params, videos)
    assert last_counts(capsys)["audio"] == (1, 0)
    store = FeatureStore(tmp_path / "out" / "audio")
    assert store.meta.dtype == "float16" and store.read("cachevideo1").embedding.dtype == np.float16


def test_interrupted_run_leaves_no_corrupt_shard(tmp_path, pattern_file, capsys):
    """Simulate a kill at each point: a half-written shard temp file, a cache entry whose JSON
    never got written, a damaged shard; the rerun cleans up and recomputes only what's lost."""
    ids = ["killvideo01", "killvideo02", "killvideo03"]
    videos = _library(tmp_path / "videos", pattern_file, {yid: {} for yid in ids})
    params = write_params(tmp_path / "params.yaml")
    extract(tmp_path, "visual", params, videos)
    capsys.readouterr()
    out, cache = tmp_path / "out" / "visual", tmp_path / "cache" / "visual" / "efficientnet-lite0"
    (out / ".part-00002.parquet.x1y2.tmp").write_bytes(b"half a shard")
    victim = sorted((cache / ids[0]).glob("*.json"))[0]
    victim.unlink()  # killed between writing the vectors and the marker
    npy = victim.with_suffix(".npy")
    npy.write_bytes(npy.read_bytes()[:100])
    damaged = shard_paths(out)[-1]
    damaged.write_bytes(b"PAR1 not really")
    assert extract(tmp_path, "visual", params, videos) == 0
    assert last_counts(capsys)["visual"] == (1, 2)
    assert not list(out.glob(".*.tmp"))
    store = FeatureStore(out)
    assert store.videos == set(ids)
    assert all(store.read(yid).embedding.shape == (10, 1280) for yid in ids)


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun(tmp_path, pattern_file):
    """A real SIGKILL of `repurpose extract` while it works: shards on disk are always whole,
    and the rerun reuses what finished."""
    ids = [f"sigkill{i:04d}" for i in range(8)]
    videos = _library(tmp_path / "videos", pattern_file, {yid: {} for yid in ids})
    params = write_params(tmp_path / "params.yaml")
    out, cache = tmp_path / "out", tmp_path / "cache"
    cmd = [sys.executable, "-m", "repurpose.cli", "extract", "--modality", "visual",
           "--videos", str(videos), "--ledger", str(videos / "ledger.parquet"), "--out", str(out),
           "--cache", str(cache), "--params", str(params), "--no-prefect",
           "--task-runner", "serial"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if len(list(cache.glob("*/*/*.json"))) >= 2:
            break
        time.sleep(0.02)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for path in shard_paths(out) if out.exists() else []:
        pq.read_table(path)  # whatever exists is a whole shard
    done = len(list(cache.glob("*/*/*.json")))
    args = argparse.Namespace(params=str(params), modality="visual", videos=videos,
                              ledger=videos / "ledger.parquet", out=out, cache=cache,
                              backend=None, retry_failed=False)
    assert stages.extract.main(args, mapper=serial_map) == 0
    assert FeatureStore(out).videos == set(ids)
    print(f"killed={killed} finished videos at the kill: {done}/{len(ids)}")
    if killed:
        assert 2 <= done < len(ids)


# --- bad media ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_library(tmp_path_factory, pattern_file) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    shutil.copy(pattern_file, folder / "goodvideo01.mp4")
    pattern_video(folder / "noaudio0001.mp4", 6, (1,), audio="none")
    pattern_video(folder / "silence0001.mp4", 6, (1,), audio="silence")
    pattern_video(folder / "tinyvideo01.mp4", 0.4)
    pattern_video(folder / "subsecond01.mp4", 0.8)
    pattern_video(folder / "vfrvideo001.mp4", 10, RED, vfr=True)
    pattern_video(folder / "oddsize0001.mp4", 6, (1,), size=(97, 63))
    shutil.copy(pattern_file, folder / "shortfile01.mp4")
    full = pattern_video(folder / "full.mp4", 20, (5,), extra=["-movflags", "+faststart"])
    data = full.read_bytes()
    (folder / "truncated01.mp4").write_bytes(data[: len(data) // 2])
    full.unlink()
    (folder / "undecodabl1.mp4").write_bytes(os.urandom(4096))
    spec = {p.stem: {} for p in folder.glob("*.mp4")}
    spec["shortfile01"] = {"duration": 25.0}  # the ledger says more than the file holds
    shutil.copy(pattern_file, folder / "missingfil1.mp4")
    spec["missingfil1"] = {}
    write_test_ledger(folder, spec)
    (folder / "missingfil1.mp4").unlink()  # listed in the ledger, gone from disk
    return folder


def test_bad_media_recorded_and_run_goes_on(tmp_path, bad_library, capsys):
    params = write_params(tmp_path / "params.yaml")
    assert extract(tmp_path, "visual", params, bad_library) == 0
    assert extract(tmp_path, "audio", params, bad_library) == 0
    printed = capsys.readouterr().out
    assert "failed by reason:" in printed
    status = {m: {r["youtube_id"]: r for r in pq.read_table(
        tmp_path / "out" / m / "videos.parquet").to_pylist()} for m in ("visual", "audio")}
    vis, aud = status["visual"], status["audio"]
    for m in (vis, aud):
        assert m["goodvideo01"]["status"] == "ok" and m["goodvideo01"]["n_rows"] == 10
        assert m["undecodabl1"]["status"] == "failed"
        assert m["undecodabl1"]["reason"] == "undecodable"
        assert m["tinyvideo01"]["reason"] == "too_short"
        assert m["subsecond01"]["n_rows"] == 1 and "short_video" in m["subsecond01"]["flags"]
        assert "shorter_than_ledger" in m["shortfile01"]["flags"]
        assert m["shortfile01"]["n_rows"] == 10
        assert m["truncated01"]["status"] == "ok" and "truncated" in m["truncated01"]["flags"]
        assert 3 <= m["truncated01"]["n_rows"] < 20
        assert m["missingfil1"]["reason"] == "missing_file"
    assert "no_audio" in aud["noaudio0001"]["flags"] and aud["noaudio0001"]["n_rows"] == 6
    assert "silent" in aud["silence0001"]["flags"]
    assert "silent" not in aud["goodvideo01"]["flags"]
    assert "vfr" in vis["vfrvideo001"]["flags"] and vis["vfrvideo001"]["n_rows"] == 10
    assert "odd_resolution" in vis["oddsize0001"]["flags"]
    assert vis["oddsize0001"]["status"] == "ok"

    audio = FeatureStore(tmp_path / "out" / "audio")
    assert not audio.read("noaudio0001").embedding.any()  # zero vectors for no audio
    assert "undecodabl1" not in audio.videos
    visual = FeatureStore(tmp_path / "out" / "visual")
    vfr = visual.read("vfrvideo001").embedding  # frames still land on the right seconds
    d = np.linalg.norm(vfr - vfr[RED[0]], axis=1)
    assert {int(i) for i in np.flatnonzero(d < 1e-3)} == set(RED)
    failures = json.loads((tmp_path / "out" / "visual" / "failures.json").read_text())
    assert failures["failed"]["undecodable"] == ["undecodabl1"]
    assert "vfrvideo001" in failures["flagged"]["vfr"]

    assert extract(tmp_path, "visual", params, bad_library) == 0  # failures are cached too
    assert " 0 computed" in capsys.readouterr().out


# --- mappers, CLI, pickling -----------------------------------------------------------------


def test_cli_threads_and_picklable_jobs(tmp_path, pattern_file):
    from repurpose import cli

    videos = _library(tmp_path / "videos", pattern_file, {"clivideo001": {}, "clivideo002": {}})
    params = write_params(tmp_path / "params.yaml")
    rc = cli.main(["extract", "--modality", "audio", "--videos", str(videos), "--ledger",
                   str(videos / "ledger.parquet"), "--out", str(tmp_path / "o"), "--cache",
                   str(tmp_path / "c"), "--params", str(params), "--no-prefect",
                   "--task-runner", "threads", "--workers", "2"])
    assert rc == 0
    assert FeatureStore(tmp_path / "o").videos == {"clivideo001", "clivideo002"}

    from repurpose.features.config import ModalityConfig
    from repurpose.features.extract import video_key

    cfg = ModalityConfig.from_section("visual", PARAMS["extract"]["visual"], "extract.visual")
    v = load_videos(videos / "ledger.parquet", videos)[0]
    weights = cfg.backend.weights_identity()
    job = ExtractJob(v, cfg.backend, str(tmp_path / "pc"), video_key(v, cfg, weights),
                     "float32", 4)
    clone = pickle.loads(pickle.dumps(job))  # what a Dask worker receives
    entry = pickle.loads(pickle.dumps(extract_video))(clone)
    assert entry.ok and entry.n_rows == 10
    assert ResultCache(tmp_path / "pc").load(v.youtube_id, entry.key, 1280) is not None


def test_backend_override_and_unknown(tmp_path, pattern_file):
    from repurpose.params import ParamsError

    videos = _library(tmp_path / "videos", pattern_file, {"overrideid1": {}})
    from repurpose import cli
    from repurpose.features.config import ModalityConfig

    section = dict(PARAMS["extract"]["audio"])
    with pytest.raises(ParamsError, match="choose one of"):
        ModalityConfig.from_section("audio", section, "extract.audio", backend_override="nope")
    rc = cli.main(["extract", "--modality", "audio", "--backend", "nope", "--videos",
                   str(videos), "--ledger", str(videos / "ledger.parquet"), "--out",
                   str(tmp_path / "o"), "--cache", str(tmp_path / "c"), "--params",
                   str(write_params(tmp_path / "params.yaml")), "--no-prefect"])
    assert rc == 2 and not (tmp_path / "o").exists()  # refused before any work
    section["backend"] = "panns-cnn14"
    section["panns-cnn14"] = {"weights": str(tmp_path / "absent.pth")}
    from repurpose.features.backends import WeightsMissing

    cfg = ModalityConfig.from_section("audio", section, "extract.audio")
    with pytest.raises(WeightsMissing, match=r"extract\.audio\.panns-cnn14\.weights"):
        run_extract(cfg, [], tmp_path / "o", tmp_path / "c", serial_map)
