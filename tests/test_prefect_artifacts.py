"""The Prefect UI as a place to work (real server, real process worker, real DVC): the pipeline
flow publishes its headline metrics beside the baselines and a link to the report as
artifacts, and the `experiment` deployment takes params overrides as flow parameters and runs
`dvc exp run -S ...`. A small DVC project stands in for the pipeline (one stage whose metrics
follow `train.lr`), deployed with the repo's own prefect.yaml and flows/pipeline.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, venv_env
from .test_prefect_deploy import api, prefect

pytestmark = pytest.mark.slow

SCORE = r'''
import json, pathlib, yaml
lr = float(yaml.safe_load(open("params.yaml"))["train"]["lr"])
pathlib.Path("metrics").mkdir(exist_ok=True)
pathlib.Path("reports").mkdir(exist_ok=True)
json.dump({"precision": lr, "recall": 1 - lr, "f1": 0.5, "map": lr / 2},
          open("metrics/headline.json", "w"))
per = lambda v: {"0.5": v, "avg": v}
json.dump({"random": {m: per(0.01) for m in ("precision", "recall", "f1", "map")},
           "even": {m: per(0.02) for m in ("precision", "recall", "f1", "map")},
           "settings": {"seed": 0}}, open("metrics/baselines.json", "w"))
open("reports/report.html", "w").write(f"<html><body>lr {lr}</body></html>")
'''

DVC_YAML = """stages:
  score:
    cmd: python score.py
    deps: [score.py]
    params: [train.lr]
    metrics:
      - metrics/headline.json:
          cache: false
    outs:
      - metrics/baselines.json:
          cache: false
      - reports/report.html:
          cache: false
"""


def make_project(root: Path) -> Path:
    """A git + DVC project with the repo's prefect.yaml and flows/pipeline.py."""
    root.mkdir()
    (root / "flows").mkdir()
    shutil.copy(REPO_ROOT / "flows" / "pipeline.py", root / "flows" / "pipeline.py")
    (root / "flows" / "__init__.py").write_text("")
    shutil.copy(REPO_ROOT / "prefect.yaml", root / "prefect.yaml")
    (root / "score.py").write_text(SCORE)
    (root / "params.yaml").write_text("train:\n  lr: 0.1  # learning rate\n")
    (root / "dvc.yaml").write_text(DVC_YAML)
    dvc = str(Path(sys.executable).with_name("dvc"))
    for cmd in (["git", "init", "-q"], [dvc, "init", "-q"],
                [dvc, "config", "core.analytics", "false"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=root, check=True, capture_output=True, env=venv_env())
    return root


def artifacts(url: str, key: str) -> list[dict]:
    """Every version of artifact `key`, newest first."""
    found = api(url, "/artifacts/filter", {"artifacts": {"key": {"any_": [key]}},
                                           "sort": "CREATED_DESC"})
    assert isinstance(found, list)
    return found


def run_deployment(name: str, params: dict, repo: Path, tmp: Path, env: dict) -> str:
    out = prefect(["deployment", "run", name, "--params", json.dumps(params)], repo, env)
    run_id = re.search(r"flow-run/([0-9a-f-]{36})", out).group(1)
    prefect(["worker", "start", "--pool", "repurpose-local", "--run-once"], tmp, env,
            timeout=300)
    return run_id


@pytest.fixture(scope="module")
def worked(prefect_server, tmp_path_factory):
    url = prefect_server["url"]
    tmp = tmp_path_factory.mktemp("artifacts")
    repo = make_project(tmp / "project")
    env = venv_env(PREFECT_API_URL=url, PREFECT_HOME=str(tmp / "client-home"), PWD=str(repo))
    prefect(["work-pool", "create", "repurpose-local", "--type", "process", "--overwrite"],
            repo, env)
    prefect(["--no-prompt", "deploy", "--all"], repo, env)
    pipeline_run = run_deployment("pipeline/nightly", {"push": False}, repo, tmp, env)
    exp_run = run_deployment("experiment/experiment",
                             {"params": {"train.lr": 0.3}, "name": "lr03"}, repo, tmp, env)
    yield {"url": url, "repo": repo, "tmp": tmp, "pipeline": pipeline_run,
           "experiment": exp_run}
    # the server is shared with tests/test_prefect_deploy.py, which creates this pool itself
    prefect(["--no-prompt", "work-pool", "delete", "repurpose-local"], repo, env)


def test_pipeline_run_publishes_metrics_beside_baselines_and_the_report(worked) -> None:
    url = worked["url"]
    run = api(url, f"/flow_runs/{worked['pipeline']}")
    assert run["state_type"] == "COMPLETED", run["state"]
    (table,) = [a for a in artifacts(url, "pipeline-metrics")
                if a["flow_run_id"] == worked["pipeline"]]
    assert table["type"] == "table"
    rows = json.loads(table["data"]) if isinstance(table["data"], str) else table["data"]
    by_system = {r["system"]: r for r in rows}
    assert by_system["model"]["precision"] == pytest.approx(0.1)
    assert by_system["baseline: random"]["map"] == pytest.approx(0.01)
    assert by_system["baseline: even"]["recall"] == pytest.approx(0.02)
    (md,) = [a for a in artifacts(url, "pipeline-results")
             if a["flow_run_id"] == worked["pipeline"]]
    assert md["type"] == "markdown"
    assert "| model | 0.1000 | 0.9000 | 0.5000 | 0.0500 |" in md["data"]
    report = (worked["repo"] / "reports" / "report.html").resolve().as_uri()
    assert f"]({report})" in md["data"]
    (link,) = [a for a in artifacts(url, "pipeline-report")
               if a["flow_run_id"] == worked["pipeline"]]
    assert report in link["data"]  # Prefect stores a link artifact as markdown "[text](url)"


def test_experiment_deployment_runs_dvc_exp_with_the_form_parameters(worked) -> None:
    url = worked["url"]
    deployment = api(url, "/deployments/name/experiment/experiment")
    form = deployment["parameter_openapi_schema"]["properties"]
    assert {"params", "name", "repo"} <= set(form)  # the UI's "Run with parameters" fields
    run = api(url, f"/flow_runs/{worked['experiment']}")
    assert run["state_type"] == "COMPLETED", run["state"]
    assert run["parameters"]["params"] == {"train.lr": 0.3}
    dvc = str(Path(sys.executable).with_name("dvc"))
    shown = subprocess.run([dvc, "exp", "show", "--json"], cwd=worked["repo"],
                           capture_output=True, text=True, check=True, env=venv_env()).stdout
    assert '"lr03"' in shown  # a real DVC experiment, compared with `dvc exp show`
    (table,) = [a for a in artifacts(url, "experiment-metrics")
                if a["flow_run_id"] == worked["experiment"]]
    rows = json.loads(table["data"]) if isinstance(table["data"], str) else table["data"]
    assert rows[0]["system"] == "model" and rows[0]["precision"] == pytest.approx(0.3)
    (md,) = [a for a in artifacts(url, "experiment-results")
             if a["flow_run_id"] == worked["experiment"]]
    assert "`train.lr=0.3`" in md["data"] and "| model | 0.3000 |" in md["data"]


def test_bad_override_keys_are_refused() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    from flows.pipeline import set_args

    assert set_args({"train.lr": 0.001, "prepare.splits": ["val"]}) == [
        "-S", "train.lr=0.001", "-S", 'prepare.splits=["val"]']
    with pytest.raises(ValueError):
        set_args({"train.lr; rm -rf /": 1})


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="Debian chromium not installed (apt-get install chromium)")
def test_ui_shows_the_results_artifact(worked) -> None:
    from tools.prefect_ui_snapshot import page_text, screenshot

    url = worked["url"]
    (md,) = [a for a in artifacts(url, "pipeline-results")
             if a["flow_run_id"] == worked["pipeline"]]
    page = f"{url.removesuffix('/api')}/artifacts/artifact/{md['id']}"
    for budget_ms in (30_000, 90_000):  # a loaded machine renders later
        text = page_text(page, budget_ms=budget_ms)
        if "0.1000" in text:
            break
    assert "Pipeline results" in text and "0.1000" in text and "baseline: random" in text
    png = screenshot(page, worked["tmp"] / "prefect-artifact.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
