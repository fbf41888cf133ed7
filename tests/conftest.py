"""Shared test setup: offline, quiet, and isolated from the user's Prefect/DVC state."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SPLITS = REPO_ROOT.parent / "shared" / "data" / "repurpose10k"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session", autouse=True)
def _isolated_prefect_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Give Prefect a private home (its SQLite database) for the whole test session."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture
def repo_root() -> Path:
    """The repository checkout under test."""
    return REPO_ROOT


def copy_repo(dest: Path) -> Path:
    """Copy the checkout's files (tracked and untracked-not-ignored) into a fresh git repo."""
    import subprocess

    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO_ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    import shutil

    for rel in filter(None, files):
        src = REPO_ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=dest, check=True)
    return dest


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A temporary git copy of the repository, for running real `dvc` commands in."""
    return copy_repo(tmp_path / "repo")


def venv_env(**extra: str) -> dict[str, str]:
    """Environment for subprocesses: this interpreter's bin dir first on PATH."""
    import sys

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.update(extra)
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _drain_prefect_clients() -> None:
    """Flush this process's queued Prefect logs/events while the server still answers."""
    import sys

    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):  # best effort at teardown
            worker.drain_all(timeout=10)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    """A real Prefect server (SQLite, 127.0.0.1, random port); yields its API URL."""
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    home = tmp_path_factory.mktemp("prefect-server-home")
    port = free_port()
    log = (home / "server.log").open("w")
    url = f"http://127.0.0.1:{port}/api"
    env = venv_env(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                   PREFECT_UI_API_URL=url)
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("prefect")), "server", "start",
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (home / "server.log").read_text()[-2000:]
                raise RuntimeError(f"Prefect server did not start: {tail}")
            time.sleep(0.5)
        yield {"url": url, "home": home, "port": port}
    finally:
        _drain_prefect_clients()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def clip_kit(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One tiny trained clip model, its params and a speech video, shared by the
    tests/test_clip_*.py modules (built with tests/clip_kit.py)."""
    from tests.clip_kit import build_model, make_input

    root = tmp_path_factory.mktemp("clip-kit")
    params, model = build_model(root)
    return {"root": root, "params": params, "model": model,
            "video": make_input(root / "talk.mp4")}


@pytest.fixture
def one_torch_thread():  # noqa: ANN201
    """One intra-op torch thread for the test (small models run several times faster so on a
    busy 2-core CPU); the previous count is restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
