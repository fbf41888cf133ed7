"""The scheduled pipeline flow: `dvc repro` (only what changed runs), then `dvc push` if a
remote is configured. Deployed by `prefect.yaml`; each stage that DVC runs reports its own
flow run (with per-video task runs) to the same Prefect server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

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


@flow(name="pipeline", log_prints=True)
def pipeline(repo: str = ".", targets: list[str] | None = None, push: bool = True) -> dict:
    """Run `dvc repro` in `repo`, then `dvc push` when `push` and a default remote exists."""
    summary = {"repro": dvc_repro(repo, targets)}
    if push and has_remote(repo):
        summary["push"] = dvc_push(repo)
    else:
        print("dvc push skipped: " + ("disabled" if not push else "no default DVC remote"))
    return summary


if __name__ == "__main__":
    pipeline()
