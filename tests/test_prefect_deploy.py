"""A real Prefect server: deploy the scheduled pipeline, trigger it, a process worker runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .conftest import venv_env

pytestmark = pytest.mark.slow

MINI = [
    {"youtube_id": "abcdefghijk", "timeRange": [0, 100.0], "segments": [[10.5, 30.25]]},
    {"youtube_id": "abcdefghijk", "timeRange": [100, 200.0], "segments": [[150, 170]]},
]


def api(url: str, path: str, body: dict | None = None) -> object:
    req = urllib.request.Request(
        f"{url}{path}", data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}, method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def prefect(args: list[str], cwd: Path, env: dict, timeout: float = 120) -> str:
    exe = str(Path(sys.executable).with_name("prefect"))
    proc = subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, f"prefect {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_deploy_trigger_and_worker_run(prefect_server, repo_copy, tmp_path):
    url = prefect_server["url"]
    data = repo_copy / "data" / "datasets" / "mini"
    data.mkdir(parents=True)
    (data / "val.json").write_text(json.dumps(MINI))
    (data / "test.json").write_text(json.dumps(MINI[:1]))
    params = (repo_copy / "params.yaml").read_text()
    params = params.replace("dataset: sample", "dataset: mini")
    params = params.replace("splits: [train, val, test]", "splits: [val, test]")
    (repo_copy / "params.yaml").write_text(params)
    env = venv_env(PREFECT_API_URL=url, PREFECT_HOME=str(tmp_path / "client-home"),
                   PWD=str(repo_copy))

    prefect(["work-pool", "create", "repurpose-local", "--type", "process"], repo_copy, env)
    prefect(["--no-prompt", "deploy", "--all"], repo_copy, env)
    deployment = api(url, "/deployments/name/pipeline/nightly")
    assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["0 3 * * *"]

    out = prefect(["deployment", "run", "pipeline/nightly", "--params",
                   json.dumps({"targets": ["prepare"]})], repo_copy, env)
    run_id = re.search(r"flow-run/([0-9a-f-]{36})", out).group(1)
    prefect(["worker", "start", "--pool", "repurpose-local", "--run-once"], tmp_path, env,
            timeout=300)

    run = api(url, f"/flow_runs/{run_id}")
    assert run["state_type"] == "COMPLETED", run["state"]
    assert run["deployment_id"] == deployment["id"]
    flows = {f["id"]: f["name"] for f in api(url, "/flows/filter", {})}
    stage_runs = [r for r in api(url, "/flow_runs/filter", {}) if flows[r["flow_id"]] == "prepare"]
    # the stage that `dvc repro` ran reported its own flow run to the same server
    assert [r["state_type"] for r in stage_runs] == ["COMPLETED"]
    tasks = api(url, "/task_runs/filter", {"flow_runs": {"id": {"any_": [run_id]}}})
    assert {(t["name"].rsplit("-", 1)[0], t["state_type"]) for t in tasks} == {
        ("dvc-repro", "COMPLETED")
    }  # no dvc-push: the copy has no DVC remote
    assert (repo_copy / "data" / "prepared" / "windows.parquet").is_file()
    assert (repo_copy / "dvc.lock").is_file()
