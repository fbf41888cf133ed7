"""The scheduled pipeline flow: `dvc repro` (only what changed runs), then `dvc push` if a
remote is configured; and the `experiment` flow: `dvc exp run -S key=value ...` with the
params overrides given as flow parameters (the UI's "Run with parameters" form). Deployed by
`prefect.yaml`; each stage that DVC runs reports its own flow run (with per-video task runs) to
the same Prefect server.

Both flows finish by publishing their results as Prefect artifacts, so a run is read in the UI:
a table of the headline metrics (`metrics/headline.json`) beside the baselines'
(`metrics/baselines.json`), the same as markdown with the run's parameters, and a link to the
report (`reports/report.html`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task


def dvc_exe() -> str:
    """The `dvc` next to this Python (the project venv), else the one on PATH."""
    local = Path(sys.executable).with_name("dvc")
    if local.is_file():
        return str(local)
    found = shutil.which("dvc")
    if not found:
        raise RuntimeError("dvc not found: install the project (make install)")
    return found


def _run(args: list[str], repo: Path) -> str:
    """Run a command in `repo`, streaming its output to the Prefect log; raise on failure."""
    logger = get_run_logger()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(args, cwd=repo, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip())
        logger.info(line.rstrip())
    if proc.wait() != 0:
        raise RuntimeError(f"{' '.join(args)} failed with exit code {proc.returncode}")
    return "\n".join(lines[-20:])


@task(name="dvc-repro")
def dvc_repro(repo: str, targets: list[str] | None = None) -> str:
    """Reproduce the pipeline (or `targets`); DVC skips every stage whose inputs are unchanged."""
    return _run([dvc_exe(), "repro", *(targets or [])], Path(repo))


@task(name="dvc-push")
def dvc_push(repo: str) -> str:
    """Push outputs to the default DVC remote."""
    return _run([dvc_exe(), "push"], Path(repo))


def has_remote(repo: str) -> bool:
    """True if the DVC project at `repo` has a default remote."""
    out = subprocess.run([dvc_exe(), "remote", "default"], cwd=repo, capture_output=True,
                         text=True, check=False)
    return out.returncode == 0 and bool(out.stdout.strip())


HEADLINE_FILE = "metrics/headline.json"
BASELINES_FILE = "metrics/baselines.json"
REPORT_FILE = "reports/report.html"
METRICS = ("precision", "recall", "f1", "map")
PARAM_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def results_table(repo: str) -> list[dict[str, Any]]:
    """Rows `{system, precision, recall, f1, map}`: the model, then each baseline."""
    root = Path(repo)
    rows = []
    model = _read_json(root / HEADLINE_FILE)
    if model:
        rows.append({"system": "model", **{m: model.get(m) for m in METRICS}})
    for name, result in sorted((_read_json(root / BASELINES_FILE) or {}).items()):
        if isinstance(result, dict) and isinstance(result.get("precision"), dict):
            rows.append({"system": f"baseline: {name}",
                         **{m: (result.get(m) or {}).get("avg") for m in METRICS}})
    return rows


def results_markdown(rows: list[dict[str, Any]], title: str, report: str | None,
                     params: dict[str, str] | None = None) -> str:
    """The table as markdown, with the params overrides and a link to the report."""
    lines = [f"# {title}", ""]
    if params:
        lines += ["Params: " + ", ".join(f"`{k}={v}`" for k, v in params.items()), ""]
    lines += ["| system | " + " | ".join(METRICS) + " |",
              "|---|" + "---:|" * len(METRICS)]
    for row in rows:
        cells = [f"{row[m]:.4f}" if isinstance(row[m], int | float) else "-" for m in METRICS]
        lines.append(f"| {row['system']} | " + " | ".join(cells) + " |")
    lines += ["", "Averages over tIoU 0.5-0.9; per-threshold numbers in `metrics/test.json`."]
    if report:
        lines += ["", f"Report: [{REPORT_FILE}]({report})"]
    return "\n".join(lines)


def publish_results(repo: str, title: str, key: str,
                    params: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Table, markdown and report-link artifacts of the results in `repo` (none if absent),
    attached to the current flow run."""
    from prefect.artifacts import (
        create_link_artifact,
        create_markdown_artifact,
        create_table_artifact,
    )

    rows = results_table(repo)
    if not rows:
        print(f"no {HEADLINE_FILE} in {repo}: no results to publish")
        return rows
    report_path = Path(repo).resolve() / REPORT_FILE
    report = report_path.as_uri() if report_path.is_file() else None
    create_table_artifact(rows, key=f"{key}-metrics",
                          description=f"{title}: headline metrics beside the baselines")
    create_markdown_artifact(results_markdown(rows, title, report, params),
                             key=f"{key}-results", description=title)
    if report:
        create_link_artifact(report, link_text="report.html", key=f"{key}-report",
                             description=f"{title}: the report of this run")
    return rows


@flow(name="pipeline", log_prints=True)
def pipeline(repo: str = ".", targets: list[str] | None = None, push: bool = True) -> dict:
    """Run `dvc repro` in `repo`, then `dvc push` when `push` and a default remote exists;
    publish the results as artifacts."""
    summary: dict[str, Any] = {"repro": dvc_repro(repo, targets)}
    if push and has_remote(repo):
        summary["push"] = dvc_push(repo)
    else:
        print("dvc push skipped: " + ("disabled" if not push else "no default DVC remote"))
    summary["results"] = publish_results(repo, "Pipeline results", "pipeline")
    return summary


def set_args(params: dict[str, Any]) -> list[str]:
    """`-S key=value` arguments for `dvc exp run`; ValueError for a key that is not one."""
    args = []
    for key, value in params.items():
        text = json.dumps(value) if isinstance(value, list | dict) else str(value)
        if not PARAM_KEY.match(str(key)) or "\n" in text:
            raise ValueError(f"not a params key=value override: {key!r}={text!r}")
        args += ["-S", f"{key}={text}"]
    return args


@task(name="dvc-exp-run")
def dvc_exp_run(repo: str, params: dict[str, Any], name: str | None) -> str:
    """`dvc exp run -S ...` in `repo` (results are applied to its workspace)."""
    args = [dvc_exe(), "exp", "run", *set_args(params)]
    if name:
        args += ["--name", name]
    return _run(args, Path(repo))


@flow(name="experiment", log_prints=True)
def experiment(params: dict[str, Any] | None = None, name: str | None = None,
               repo: str = ".") -> dict:
    """A DVC experiment: params overrides (e.g. {"train.lr": 0.0003}) -> `dvc exp run`, then
    its results as artifacts (compare runs in the UI, or with `dvc exp show`)."""
    params = params or {}
    summary: dict[str, Any] = {"exp": dvc_exp_run(repo, params, name)}
    title = "Experiment " + (name or "") + (" (" + ", ".join(
        f"{k}={v}" for k, v in params.items()) + ")" if params else "")
    summary["results"] = publish_results(repo, title.strip(), "experiment", params)
    return summary


if __name__ == "__main__":
    pipeline()
