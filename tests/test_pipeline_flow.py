"""The `pipeline` flow: dvc repro, then dvc push to a configured remote (a local folder here)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .test_pipeline_e2e import SMALL_SAMPLE, set_params

pytestmark = pytest.mark.slow


def test_pipeline_flow_reproduces_and_pushes(prefect_server, repo_copy, tmp_path, monkeypatch):
    import httpx
    from prefect.settings import PREFECT_API_URL, temporary_settings

    api = prefect_server["url"]
    monkeypatch.setenv("PREFECT_API_URL", api)
    set_params(repo_copy, "sample", **SMALL_SAMPLE)
    remote = tmp_path / "dvc-remote"
    dvc = str(Path(sys.executable).with_name("dvc"))
    subprocess.run([dvc, "remote", "add", "-d", "team", str(remote)], cwd=repo_copy, check=True)
    from flows.pipeline import pipeline

    body = {"flows": {"name": {"any_": ["pipeline"]}}}
    before = {r["id"] for r in httpx.post(f"{api}/flow_runs/filter", json=body, timeout=30).json()}
    # settings loaded by an earlier import of Prefect would otherwise ignore the environment
    # and start an ephemeral server (which can time out on a fresh install)
    with temporary_settings(updates={PREFECT_API_URL: api}):
        summary = pipeline(repo=str(repo_copy), targets=["prepare"])
    assert "push" in summary
    runs = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=30).json()
    assert [r["state_type"] for r in runs if r["id"] not in before] == ["COMPLETED"]  # ran there
    pushed = [p for p in remote.rglob("*") if p.is_file()]
    assert pushed, "dvc push sent nothing to the remote"
    status = subprocess.run([dvc, "status", "--cloud", "--with-deps", "prepare"], cwd=repo_copy,
                            capture_output=True,
                            text=True, check=True).stdout
    assert "in sync" in status
    # with the local cache and outputs gone (as on a teammate's machine), pull restores them
    windows = repo_copy / "data" / "prepared" / "windows.parquet"
    expected = windows.read_bytes()
    shutil.rmtree(repo_copy / ".dvc" / "cache")
    shutil.rmtree(repo_copy / "data" / "prepared")
    subprocess.run([dvc, "pull", "prepare"], cwd=repo_copy, check=True, capture_output=True)
    assert windows.read_bytes() == expected
