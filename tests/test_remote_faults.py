"""DVC remote faults against a real S3 server (moto on 127.0.0.1): a push or pull cut off midway
(client killed, or the server stopped) and then resumed completes with every byte intact; wrong
credentials and an unreachable endpoint fail in bounded time with a clear error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from .conftest import free_port, venv_env

pytestmark = pytest.mark.slow

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}
N_FILES, FILE_BYTES = 60, 256 * 1024
BUCKET = "team-data"
BOUND_S = 90  # a failing push must give up within this long


class S3Server:
    """A moto S3 server process on a fixed loopback port (restartable; data is in memory)."""

    def __init__(self, folder: Path, port: int, auth: bool = False):
        self.folder, self.port, self.auth = folder, port, auth
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> S3Server:
        env = venv_env(**CREDENTIALS)
        if self.auth:  # check every request's access key (none exists, so all are refused)
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
        log = (self.folder / f"moto-{time.monotonic_ns()}.log").open("w")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p",
             str(self.port)], stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
        for _ in range(150):
            try:
                urllib.request.urlopen(self.url, timeout=1)
                break
            except urllib.error.HTTPError:
                break  # it answers (403 with auth on)
            except OSError:
                time.sleep(0.2)
        if not self.auth:
            self.client().create_bucket(Bucket=BUCKET)
        return self

    def client(self):  # noqa: ANN201 - boto3 client
        import boto3

        return boto3.client("s3", endpoint_url=self.url, **{
            "aws_access_key_id": "testing", "aws_secret_access_key": "testing",
            "region_name": "us-east-1"})

    def count(self) -> int:
        try:
            pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            return sum(page.get("KeyCount", 0) for page in pages)
        except Exception:  # noqa: BLE001 - not up (yet)
            return 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)


@pytest.fixture
def servers(tmp_path: Path):
    made: list[S3Server] = []

    def make(auth: bool = False) -> S3Server:
        made.append(S3Server(tmp_path, free_port(), auth).start())
        return made[-1]

    yield make
    for server in made:
        server.stop()


def run(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 300
        ) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env or dvc_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


def dvc_env(**extra: str) -> dict[str, str]:
    return venv_env(**{**CREDENTIALS, **extra})


DVC = str(Path(sys.executable).with_name("dvc"))


def make_repo(root: Path, endpoint: str) -> Path:
    """A git + DVC repo tracking a folder of random files, remote `team` on `endpoint`."""
    root.mkdir()
    for cmd in (["git", "init", "-q"], [DVC, "init", "-q"],
                [DVC, "config", "core.analytics", "false"],
                [DVC, "remote", "add", "-d", "team", f"s3://{BUCKET}/repurpose"],
                [DVC, "remote", "modify", "team", "endpointurl", endpoint]):
        assert run(cmd, root).returncode == 0
    data = root / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(N_FILES):
        (data / f"part-{i:03d}.bin").write_bytes(rng.bytes(FILE_BYTES))
    assert run([DVC, "add", "-q", "data"], root).returncode == 0
    for cmd in (["git", "add", "-A"], ["git", "-c", "user.name=t", "-c", "user.email=t@t",
                                       "commit", "-qm", "data"]):
        assert run(cmd, root).returncode == 0
    return root


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_leftover_processes():
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    """A dvc command in the background, in its own process group (killed after the test)."""
    proc = subprocess.Popen(args, cwd=cwd, env=dvc_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    STARTED.append(proc)
    return proc


def wait_until(check, timeout: float = 120) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def clone_and_pull(repo: Path, dest: Path) -> Path:
    assert run(["git", "clone", "-q", str(repo), str(dest)], repo.parent).returncode == 0
    pulled = run([DVC, "pull", "-q"], dest)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    return dest


def same_files(a: Path, b: Path) -> None:
    names = sorted(p.name for p in (a / "data").iterdir())
    assert names == sorted(p.name for p in (b / "data").iterdir()) and len(names) == N_FILES
    for name in names:
        assert (a / "data" / name).read_bytes() == (b / "data" / name).read_bytes(), name


def test_push_killed_midway_then_resumed_uploads_everything_intact(servers, tmp_path: Path
                                                                   ) -> None:
    server = servers()
    repo = make_repo(tmp_path / "repo", server.url)
    proc = start([DVC, "push", "-j", "1"], repo)
    wait_until(lambda: server.count() >= 3 or proc.poll() is not None)
    os.killpg(proc.pid, signal.SIGKILL)  # the laptop lid closes mid-push
    proc.wait(timeout=30)
    partial = server.count()
    assert partial < N_FILES + 1, "push finished before it could be interrupted"
    resumed = run([DVC, "push"], repo)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert server.count() == N_FILES + 1  # every file plus the .dir listing
    status = run([DVC, "status", "-c"], repo)
    assert "are in sync" in status.stdout + status.stderr
    same_files(repo, clone_and_pull(repo, tmp_path / "clone"))


def test_server_stopped_during_push_then_a_later_push_completes(servers, tmp_path: Path
                                                                ) -> None:
    server = servers()
    repo = make_repo(tmp_path / "repo", server.url)
    proc = start([DVC, "push", "-j", "1"], repo)
    wait_until(lambda: server.count() >= 3 or proc.poll() is not None)
    server.stop()  # the S3 server goes away mid-push
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:  # still retrying file by file: the user presses Ctrl-C
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # stuck inside the S3 client's retries: kill it
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=30)
    assert proc.returncode != 0, out[-2000:]
    server.start()  # back (empty: moto keeps data in memory), same endpoint
    resumed = run([DVC, "push"], repo)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert server.count() == N_FILES + 1
    same_files(repo, clone_and_pull(repo, tmp_path / "clone"))


def test_pull_killed_midway_then_resumed_gives_identical_files(servers, tmp_path: Path
                                                               ) -> None:
    server = servers()
    repo = make_repo(tmp_path / "repo", server.url)
    assert run([DVC, "push"], repo).returncode == 0
    clone = tmp_path / "clone"
    assert run(["git", "clone", "-q", str(repo), str(clone)], tmp_path).returncode == 0
    proc = start([DVC, "pull", "-j", "1"], clone)
    cache = clone / ".dvc" / "cache"
    wait_until(lambda: sum(1 for p in cache.rglob("*") if p.is_file()) >= 3
               or proc.poll() is not None)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    resumed = run([DVC, "pull"], clone)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    same_files(repo, clone)
    status = run([DVC, "status"], clone)
    assert "up to date" in status.stdout + status.stderr


def test_wrong_credentials_fail_fast_with_a_clear_error(servers, tmp_path: Path) -> None:
    server = servers(auth=True)
    repo = make_repo(tmp_path / "repo", server.url)
    started = time.monotonic()
    res = run([DVC, "push"], repo, env=dvc_env(AWS_ACCESS_KEY_ID="nobody",
                                               AWS_SECRET_ACCESS_KEY="wrong"))
    took = time.monotonic() - started
    out = res.stdout + res.stderr
    assert res.returncode != 0 and took < BOUND_S, (took, out[-2000:])
    assert "ERROR" in out and any(s in out for s in (
        "InvalidAccessKeyId", "Forbidden", "AccessDenied", "403")), out[-2000:]


def test_unreachable_endpoint_fails_in_bounded_time(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    repo = make_repo(tmp_path / "repo", endpoint)
    started = time.monotonic()
    res = run([DVC, "push"], repo)
    took = time.monotonic() - started
    out = res.stdout + res.stderr
    assert res.returncode != 0 and took < BOUND_S, (took, out[-2000:])
    assert "ERROR" in out and ("connect" in out.lower() or endpoint in out), out[-2000:]
