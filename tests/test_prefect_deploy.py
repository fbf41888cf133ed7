"""A real Prefect server: deploy the scheduled pipeline, trigger it, a process worker runs it,
and the UI shows the deployment with its schedule and the finished run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .conftest import copy_repo, venv_env
from .test_pipeline_e2e import SMALL_SAMPLE, set_params

pytestmark = pytest.mark.slow



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


@pytest.fixture(scope="module")
def deployed_run(prefect_server, tmp_path_factory):
    """Deploy `pipeline/nightly` from a repo copy, trigger it, run a worker once."""
    url = prefect_server["url"]
    tmp = tmp_path_factory.mktemp("deploy")
    repo = copy_repo(tmp / "repo")
    set_params(repo, "sample", **SMALL_SAMPLE)
    env = venv_env(PREFECT_API_URL=url, PREFECT_HOME=str(tmp / "client-home"), PWD=str(repo))

    prefect(["work-pool", "create", "repurpose-local", "--type", "process"], repo, env)
    prefect(["--no-prompt", "deploy", "--all"], repo, env)
    out = prefect(["deployment", "run", "pipeline/nightly", "--params",
                   json.dumps({"targets": ["download"]})], repo, env)
    run_id = re.search(r"flow-run/([0-9a-f-]{36})", out).group(1)
    prefect(["worker", "start", "--pool", "repurpose-local", "--run-once"], tmp, env,
            timeout=300)
    return {"url": url, "repo": repo, "run_id": run_id, "tmp": tmp,
            "deployment": api(url, "/deployments/name/pipeline/nightly")}


def test_deployment_runs_on_a_process_worker(deployed_run):
    url, run_id = deployed_run["url"], deployed_run["run_id"]
    deployment = deployed_run["deployment"]
    assert [s["schedule"]["cron"] for s in deployment["schedules"]] == ["0 3 * * *"]
    run = api(url, f"/flow_runs/{run_id}")
    assert run["state_type"] == "COMPLETED", run["state"]
    assert run["deployment_id"] == deployment["id"]
    flows = {f["id"]: f["name"] for f in api(url, "/flows/filter", {})}
    # flow runs that started while the pipeline ran (the server is shared with other tests)
    stage_runs = {flows[r["flow_id"]]: r for r in api(url, "/flow_runs/filter", {})
                  if flows[r["flow_id"]] != "pipeline" and r["start_time"]
                  and run["start_time"] <= r["start_time"] <= run["end_time"]}
    # each stage that `dvc repro` ran reported its own flow run to the same server
    assert {name: r["state_type"] for name, r in stage_runs.items()} == {
        "sample": "COMPLETED", "prepare": "COMPLETED", "download": "COMPLETED"
    }
    # per-video work shows up as one task run per video, named after it
    video_tasks = api(url, "/task_runs/filter", {
        "flow_runs": {"id": {"any_": [stage_runs["download"]["id"]]}}
    })
    expected = {f"sample{i:05d}" for i in range(1, SMALL_SAMPLE["n_videos"] + 1)}
    assert {t["name"] for t in video_tasks} == expected
    assert {t["state_type"] for t in video_tasks} == {"COMPLETED"}
    # the stage's summary reached the server's logs (what the UI shows for the run)
    logs = api(url, "/logs/filter", {"logs": {"flow_run_id": {
        "any_": [stage_runs["download"]["id"]]}}, "limit": 200})
    assert any(log["message"].startswith("download: ") for log in logs)
    tasks = api(url, "/task_runs/filter", {"flow_runs": {"id": {"any_": [run_id]}}})
    assert {(t["name"].rsplit("-", 1)[0], t["state_type"]) for t in tasks} == {
        ("dvc-repro", "COMPLETED")
    }  # no dvc-push: the copy has no DVC remote
    assert (deployed_run["repo"] / "data" / "videos" / "ledger.parquet").is_file()
    assert (deployed_run["repo"] / "dvc.lock").is_file()


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="Debian chromium not installed (apt-get install chromium)")
def test_ui_shows_deployment_schedule_and_last_run(deployed_run):
    from tools.prefect_ui_snapshot import deployment_url, page_text, screenshot

    url = deployed_run["url"]
    page = deployment_url(url, "pipeline/nightly")
    run_name = api(url, f"/flow_runs/{deployed_run['run_id']}")["name"]
    for budget_ms in (30_000, 90_000):  # a loaded machine renders the runs list later
        text = page_text(page, budget_ms=budget_ms)
        if run_name in text and "Completed" in text:
            break
    assert "nightly" in text and "repurpose-local" in text
    assert "At 03:00 AM every day" in text
    assert run_name in text and "Completed" in text
    png = screenshot(page, deployed_run["tmp"] / "prefect-ui.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
