"""Issue 12 items 8 and 9: a per-video deadline on every fetch path, and SIGINT/SIGTERM of
`repurpose download` stop its ffmpeg children; the rerun finishes without fetching twice.
Real yt-dlp and ffmpeg against the loopback HTTP server (127.0.0.1 only)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repurpose.download import ledger as L
from repurpose.signals import descendants
from tests.conftest import REPO_ROOT
from tests.download_kit import args_for, write_params, write_videos
from tests.loopback import LoopbackServer, make_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def av(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_video(tmp_path_factory.mktemp("media") / "av.mp4").read_bytes()


@pytest.fixture
def server():  # noqa: ANN201
    with LoopbackServer() as srv:
        yield srv


def _download(tmp: Path, *extra: str) -> subprocess.Popen:
    a = args_for(tmp)
    cmd = [sys.executable, "-m", "stages.download", "--params", a.params, "--videos", a.videos,
           "--out", a.out, *extra]
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ffmpeg_below(pid: int) -> list[int]:
    found = []
    for child in descendants(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"ffmpeg" in cmdline.split(b"\0")[0]:
            found.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_dripping_download_is_cut_off_by_the_deadline(
        tmp_path: Path, server: LoopbackServer, av: bytes) -> None:
    server.add("okokokokok1.mp4", av)
    server.add("dripdripdri.mp4", av, rate=2048)  # 2 KB/s: no read ever times out
    write_videos(tmp_path / "videos.parquet", ["okokokokok1", "dripdripdri"])
    write_params(tmp_path / "params.yaml", server, timeout=2, deadline=6, retries=3,
                 max_failed_fraction=0.6)
    began = time.monotonic()
    proc = _download(tmp_path)
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    took = time.monotonic() - began
    assert proc.returncode == 0, err[-2000:]
    rows = {r.youtube_id: r for r in L.read_ledger(tmp_path / "out" / L.LEDGER_NAME)}
    assert rows["okokokokok1"].ok
    drip = rows["dripdripdri"]
    assert (drip.status, drip.error_category) == (L.FAILED_TRANSIENT, "deadline")
    assert "download.deadline" in drip.error_message
    assert took < 6 + 20, f"the stage took {took:.1f} s with a 6 s deadline"
    sent = server.bytes_sent.get("dripdripdri.mp4", 0)
    time.sleep(1.0)
    assert server.bytes_sent.get("dripdripdri.mp4", 0) == sent  # nobody is still reading it
    assert not (tmp_path / "out" / ".partial").exists()


def test_local_cut_obeys_the_deadline(tmp_path: Path, av: bytes) -> None:
    local = tmp_path / "local"
    local.mkdir()
    long = make_video(local / "longlonglon.mp4", duration=240)
    assert long.is_file()
    write_videos(tmp_path / "videos.parquet", ["longlonglon"], hull=(0.0, 240.0))
    with LoopbackServer() as srv:  # the exact cut: 240 s of re-encoding, far past 0.5 s
        write_params(tmp_path / "params.yaml", srv, source="local", deadline=0.5, retries=0,
                     max_failed_fraction=1, cut="reencode")
    proc = _download(tmp_path, "--local-dir", str(local))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    row = L.read_ledger(tmp_path / "out" / L.LEDGER_NAME)[0]
    assert (row.status, row.error_category) == (L.FAILED_TRANSIENT, "deadline")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_signal_stops_ffmpeg_and_the_rerun_finishes(
        tmp_path: Path, server: LoopbackServer, av: bytes, sig: signal.Signals) -> None:
    ids = ["aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc"]
    server.add(f"{ids[0]}.mp4", av)
    server.add(f"{ids[1]}.mp4", av, rate=4096)  # in flight when the signal comes
    server.add(f"{ids[2]}.mp4", av)
    write_videos(tmp_path / "videos.parquet", ids)
    write_params(tmp_path / "params.yaml", server, timeout=30, deadline=600)
    out = tmp_path / "out"
    proc = _download(tmp_path)
    try:
        limit = time.monotonic() + 60
        ffmpeg: list[int] = []
        while time.monotonic() < limit and not ffmpeg:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            if server.bytes_sent.get(f"{ids[1]}.mp4", 0) > 0:
                ffmpeg = _ffmpeg_below(proc.pid)
            time.sleep(0.05)
        assert ffmpeg, "no ffmpeg was downloading when the test wanted to stop the stage"
        time.sleep(random.uniform(0.0, 0.5))
        proc.send_signal(sig)  # the stage's pid only, as `kill` or a scheduler would
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    if sig == signal.SIGKILL:  # nothing can be handled: the attempt process notices
        assert proc.returncode == -sig
    else:
        assert proc.returncode == 128 + sig, err[-2000:]
        assert "Traceback" not in err and "stopped by" in err
    limit = time.monotonic() + 5
    while time.monotonic() < limit and any(_alive(p) for p in ffmpeg):
        time.sleep(0.05)
    assert not [p for p in ffmpeg if _alive(p)], "ffmpeg outlived the stage"
    sent = server.bytes_sent.get(f"{ids[1]}.mp4", 0)
    time.sleep(1.0)
    assert server.bytes_sent.get(f"{ids[1]}.mp4", 0) == sent  # nobody downloads any more
    assert L.read_record(out, ids[0]).ok and not (out / f"{ids[1]}.mp4").exists()

    server.routes[f"{ids[1]}.mp4"].rate = None
    server.reset_counters()
    proc = _download(tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert f"{ids[0]}.mp4" not in server.requests  # done before the signal: not fetched again
    rows = {r.youtube_id: r for r in L.read_ledger(out / L.LEDGER_NAME)}
    assert all(rows[i].ok for i in ids)
    leftovers = [p.name for p in out.rglob("*") if p.name.endswith((".tmp", ".part"))]
    assert not leftovers and not (out / ".partial").exists()


def _attempt_pid_in_daemon(queue) -> None:  # noqa: ANN001 - a multiprocessing queue
    from repurpose.download.sandbox import run_with_deadline

    queue.put((os.getpid(), run_with_deadline(os.getpid, (), 30, "probe")))


def test_attempts_also_run_inside_a_daemonic_worker() -> None:
    """Dask worker processes are daemonic; multiprocessing refuses them children by default."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    worker = ctx.Process(target=_attempt_pid_in_daemon, args=(queue,), daemon=True)
    worker.start()
    worker_pid, attempt_pid = queue.get(timeout=60)
    worker.join(30)
    assert worker.exitcode == 0 and attempt_pid not in (worker_pid, os.getpid())
