"""Team workflow against a real S3 server (moto, 127.0.0.1): push outputs, clone, pull them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import free_port, venv_env
from .test_pipeline_e2e import SMALL_SAMPLE, dvc, set_params

pytestmark = pytest.mark.slow

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def s3_server(tmp_path):
    """A moto S3 server process on a random loopback port; yields its endpoint URL."""
    port = free_port()
    log = (tmp_path / "moto.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H",
                             "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            env=venv_env(**CREDENTIALS), start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
        log.close()


def git(args: list[str], cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                   check=True, capture_output=True)


def test_push_to_s3_then_a_clone_pulls_the_outputs(s3_server, repo_copy, tmp_path, monkeypatch):
    import boto3

    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket="team-data")
    set_params(repo_copy, "sample", **SMALL_SAMPLE)
    dvc(["remote", "add", "-d", "team", "s3://team-data/repurpose"], repo_copy)
    dvc(["remote", "modify", "team", "endpointurl", s3_server], repo_copy)
    dvc(["repro", "prepare"], repo_copy)
    dvc(["push"], repo_copy)
    stored = boto3.client("s3", endpoint_url=s3_server).list_objects_v2(Bucket="team-data")
    pushed = {o["Key"].split("/files/md5/", 1)[-1] for o in stored.get("Contents", [])}
    cache = repo_copy / ".dvc" / "cache" / "files" / "md5"
    cached = {p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()}
    assert cached and pushed == cached  # every cached object of the run is on the remote
    git(["add", "-A"], repo_copy)
    git(["commit", "-qm", "pipeline state"], repo_copy)

    clone = tmp_path / "clone"
    git(["clone", "-q", str(repo_copy), str(clone)], tmp_path)
    assert not (clone / "data/prepared/windows.parquet").exists()
    dvc(["pull", "--with-deps", "prepare"], clone)  # the stages that were run and pushed
    for rel in ("data/prepared/windows.parquet", "data/datasets/sample/test.json",
                "data/sample_videos/sample00001.mp4"):
        assert (clone / rel).read_bytes() == (repo_copy / rel).read_bytes(), rel
    status = dvc(["status", "prepare"], clone)
    assert "up to date" in status
    shutil.rmtree(clone)
