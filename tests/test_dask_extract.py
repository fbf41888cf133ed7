"""Extraction on a real Dask cluster (2 worker processes) through Prefect: the same shards as
the serial runner, also when a worker process is killed in the middle of the run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from repurpose.features.shards import FeatureStore
from tests.synthetic_media import pattern_video, write_test_ledger

from .conftest import venv_env

pytestmark = pytest.mark.slow

IDS = [f"dask{i:07d}" for i in range(6)]
PARAMS = {
    "orchestration": {"prefect": True, "task_runner": "dask", "workers": 2, "retries": 1,
                      "dask_address": None},
    "extract": {"visual": {
        "backend": "efficientnet-lite0", "device": "auto", "batch_size": 8, "dtype": "float32",
        "n_shards": 2,
        "efficientnet-lite0": {"weights": "package", "resize": 128, "crop": 112},
    }},
}


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("dask-videos")
    src = pattern_video(folder / "src.mp4", 12, (2, 3, 7), size=(160, 96))
    for yid in IDS:
        shutil.copy(src, folder / f"{yid}.mp4")
    src.unlink()
    write_test_ledger(folder, {yid: {"source_offset": 10 * i} for i, yid in enumerate(IDS)})
    return folder


def extract_cmd(library: Path, out: Path, params: Path, *extra: str) -> list[str]:
    return [str(Path(sys.executable).with_name("repurpose")), "extract", "--modality", "visual",
            "--params", str(params), "--videos", str(library),
            "--ledger", str(library / "ledger.parquet"), "--out", str(out / "shards"),
            "--cache", str(out / "cache"), *extra]


def vectors(folder: Path) -> dict[str, np.ndarray]:
    store = FeatureStore(folder)
    return {yid: v.embedding for yid, v in store.read_many(store.videos).items()}


def test_dask_cluster_gives_the_serial_shards_despite_a_killed_worker(
        library, prefect_server, tmp_path):
    from distributed import Client, LocalCluster

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    env = venv_env(PREFECT_API_URL=prefect_server["url"])
    serial = subprocess.run(extract_cmd(library, tmp_path / "serial", params, "--no-prefect",
                                        "--task-runner", "serial"),
                            env=env, capture_output=True, text=True, check=False)
    assert serial.returncode == 0, serial.stderr

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        proc = subprocess.Popen(
            extract_cmd(library, tmp_path / "dask", params, "--dask-address",
                        cluster.scheduler_address),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        killed = None
        deadline = time.monotonic() + 240
        while killed is None and proc.poll() is None and time.monotonic() < deadline:
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:  # a worker is running a video's task: kill its process outright
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed = pid
            time.sleep(0.2)
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output
        assert killed is not None, "no task was seen running; nothing was killed"
        assert len(client.scheduler_info()["workers"]) == 2  # the nanny restarted it

    got, expected = vectors(tmp_path / "dask" / "shards"), vectors(tmp_path / "serial" / "shards")
    assert sorted(got) == sorted(expected) == IDS
    for yid in IDS:
        np.testing.assert_allclose(got[yid], expected[yid], rtol=1e-4, atol=1e-4)
