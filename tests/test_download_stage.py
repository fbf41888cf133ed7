"""The download stage against a real loopback HTTP server, through real yt-dlp and ffmpeg.

The server (tests/loopback.py) serves ffmpeg-generated 20 s videos and misbehaves on purpose
per path: 404, 500 twice, 429 with Retry-After, a body cut off mid-file, a response slower than
the timeout, an HTML page, a video without audio, a body that stalls mid-file.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import stages.download as stage
from repurpose.download import ledger as L
from repurpose.download.job import DownloadConfig, Job, run_job
from repurpose.io import sha256_file
from repurpose.media import probe
from repurpose.runner import serial_map
from tests.download_kit import HULL, args_for, write_params, write_videos
from tests.loopback import LoopbackServer, make_video

REPO = Path(__file__).resolve().parents[1]
GOP = 2.0  # make_video's keyframe interval (s): a stream copy starts at most this much early


def check_covers(row: L.LedgerRow, duration: float, start: float, stop: float) -> None:
    """A stream-copied file starts at the keyframe before `start` (within one GOP) and runs to
    `stop`: the row records where it starts, and the file's length matches to 0.1 s."""
    assert (row.requested_start, row.cut) == (start, "copy")
    assert start - GOP - 0.05 <= row.source_offset <= start, row
    assert abs(row.source_offset + duration - stop) <= 0.1, (row, duration)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("media")
    return {
        "av": make_video(folder / "av.mp4").read_bytes(),
        "video_only": make_video(folder / "v.mp4", audio=False).read_bytes(),
    }


@pytest.fixture
def server():  # noqa: ANN201
    with LoopbackServer() as srv:
        yield srv


def ledger(tmp: Path) -> dict[str, L.LedgerRow]:
    return {r.youtube_id: r for r in L.read_ledger(tmp / "out" / L.LEDGER_NAME)}


def test_misbehaving_server_ledger_retries_and_rerun(
    tmp_path: Path, server: LoopbackServer, media: dict[str, bytes], capsys: pytest.CaptureFixture
) -> None:
    av = media["av"]
    server.add("okokokokok1.mp4", av)
    server.add("noaudio_001.mp4", media["video_only"])
    server.add("e404e404e40.mp4", status=404)
    server.add("e500e500e50.mp4", av, fail_first=2, fail_status=500)
    server.add("e429e429e42.mp4", av, fail_first=1, fail_status=429, retry_after=1)
    server.add("truncated01.mp4", av, truncate_at=len(av) // 2)
    server.add("slowslowslo.mp4", av, delay=2.5)
    html = b"<html><body>no video here</body></html>"
    server.add("htmlhtmlhtm.mp4", html, content_type="text/html")
    ids = [name.removesuffix(".mp4") for name in server.routes]
    write_videos(tmp_path / "videos.parquet", ids)
    write_params(tmp_path / "params.yaml", server)

    assert stage.main(args_for(tmp_path), serial_map) == 0  # 4 of 8 failed: under 0.6
    rows = ledger(tmp_path)
    out = tmp_path / "out"

    def check_ok(vid: str, attempts: int, has_audio: bool = True) -> None:
        row = rows[vid]
        assert (row.status, row.attempts, row.has_audio) == ("ok", attempts, has_audio), row
        assert (row.width, row.height, row.source) == (320, 180, "url")
        path = out / f"{vid}.mp4"
        assert row.file == path.name and row.bytes == path.stat().st_size
        assert row.sha256 == sha256_file(path)
        info = probe(path)
        # the stream copy: from the keyframe before the range to its end, recorded as such
        check_covers(row, info.duration, *HULL)
        assert row.requested_end == HULL[1]
        assert abs(row.duration - info.duration) < 1e-3

    check_ok("okokokokok1", 1)
    check_ok("noaudio_001", 1, has_audio=False)
    check_ok("e500e500e50", 3)
    check_ok("e429e429e42", 2)
    gets_429 = server.get_times["e429e429e42.mp4"]
    assert gets_429[1] - gets_429[0] >= 0.95  # Retry-After: 1 honoured (backoff_base is 0.05)
    assert server.gets["e500e500e50.mp4"] >= 3  # two 500s, then the real fetch

    def check_failed(vid: str, status: str, category: str, attempts: int) -> None:
        row = rows[vid]
        assert (row.status, row.error_category, row.attempts) == (status, category, attempts), row
        assert row.error_message and not row.file and not (out / f"{vid}.mp4").exists()

    check_failed("e404e404e40", "failed_permanent", "http_404", 1)
    assert server.requests["e404e404e40.mp4"] == 1  # permanent: never retried
    check_failed("htmlhtmlhtm", "failed_permanent", "unsupported", 1)
    check_failed("truncated01", "failed_transient", "truncated", 3)
    check_failed("slowslowslo", "failed_transient", "timeout", 3)
    assert not (out / ".partial").exists()
    assert sorted(p.name for p in (out / L.RECORDS_DIR).glob("*.json")) == sorted(
        f"{i}.json" for i in ids
    )
    assert set(L.ok_videos(out / L.LEDGER_NAME)) == {
        "okokokokok1", "noaudio_001", "e500e500e50", "e429e429e42"
    }
    text = capsys.readouterr().out
    assert "ok 4 (fetched 4, reused 0)" in text
    assert "failed_permanent: http_404 1, unsupported 1" in text
    assert "failed_transient: timeout 1, truncated 1" in text or "truncated 1, timeout 1" in text

    # Next run, the server behaves: ok videos are not fetched again, permanent failures are
    # not retried, transient ones are retried and now succeed.
    server.routes["truncated01.mp4"].truncate_at = None
    server.routes["slowslowslo.mp4"].delay = 0.0
    server.reset_counters()
    assert stage.main(args_for(tmp_path), serial_map) == 0
    assert set(server.requests) == {"truncated01.mp4", "slowslowslo.mp4"}
    rows = ledger(tmp_path)
    check_ok("truncated01", 1)
    check_ok("slowslowslo", 1)
    assert rows["e404e404e40"].status == "failed_permanent"
    text = capsys.readouterr().out
    assert "ok 6 (fetched 2, reused 4)" in text and "not retried" in text

    # A third run fetches nothing at all; --retry-failed asks for the permanent failures again.
    server.reset_counters()
    assert stage.main(args_for(tmp_path), serial_map) == 0
    assert server.requests == {}
    assert stage.main(args_for(tmp_path, retry_failed=True), serial_map) == 0
    assert set(server.requests) == {"e404e404e40.mp4", "htmlhtmlhtm.mp4"}


def test_failed_fraction_threshold_sets_exit_code(
    tmp_path: Path, server: LoopbackServer, media: dict[str, bytes]
) -> None:
    server.add("okokokokok1.mp4", media["av"])
    server.add("gonegonegon.mp4", status=410)
    write_videos(tmp_path / "videos.parquet", ["okokokokok1", "gonegonegon"])
    write_params(tmp_path / "params.yaml", server, max_failed_fraction=0.2)
    assert stage.main(args_for(tmp_path), serial_map) == 1  # 1 of 2 failed > 20%
    write_params(tmp_path / "params.yaml", server, max_failed_fraction=0.5)
    assert stage.main(args_for(tmp_path), serial_map) == 0  # 50% is not more than 50%
    assert ledger(tmp_path)["gonegonegon"].error_category == "http_410"


def test_kill_mid_run_then_resume(
    tmp_path: Path, server: LoopbackServer, media: dict[str, bytes]
) -> None:
    av = media["av"]
    server.add("aaaaaaaaaaa.mp4", av)
    # stalls half-way through the body for longer than the test waits (timeout is 30 s)
    server.add("bbbbbbbbbbb.mp4", av, delay=20.0, stall_at=len(av) // 2)
    server.add("ccccccccccc.mp4", av)
    write_videos(tmp_path / "videos.parquet", ["aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc"])
    write_params(tmp_path / "params.yaml", server, timeout=30)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "stages.download", *_argv(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        # wait until a is recorded and ffmpeg is in the middle of b's body
        while time.monotonic() < deadline:
            record = L.read_record(out, "aaaaaaaaaaa")
            if record and record.ok and server.gets.get("bbbbbbbbbbb.mp4", 0) >= 2:
                break
            assert proc.poll() is None, "the stage ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("the stage did not reach the second video in time")
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)  # the stage and its ffmpeg, like a lost machine
    finally:
        proc.wait(timeout=10)
    assert (out / "aaaaaaaaaaa.mp4").is_file()
    assert not (out / "bbbbbbbbbbb.mp4").exists()  # only a partial file, under .partial/
    assert L.read_record(out, "bbbbbbbbbbb") is None
    assert not (out / "ccccccccccc.mp4").exists()

    server.routes["bbbbbbbbbbb.mp4"].delay = 0.0
    server.reset_counters()
    assert stage.main(args_for(tmp_path), serial_map) == 0
    assert "aaaaaaaaaaa.mp4" not in server.requests  # finished before the kill: not re-fetched
    assert server.gets["bbbbbbbbbbb.mp4"] >= 1 and server.gets["ccccccccccc.mp4"] >= 1
    rows = ledger(tmp_path)
    assert [rows[v].status for v in sorted(rows)] == ["ok", "ok", "ok"]
    for row in rows.values():
        path = out / row.file
        assert sha256_file(path) == row.sha256
        check_covers(row, probe(path).duration, *HULL)
    assert not (out / ".partial").exists()


def _argv(tmp: Path) -> list[str]:
    a = args_for(tmp)
    return ["--params", a.params, "--videos", a.videos, "--out", a.out]


def test_job_is_picklable_for_process_runners(tmp_path: Path) -> None:
    cfg = DownloadConfig(source="url", url_template="http://127.0.0.1:1/{youtube_id}.mp4")
    job = Job("abcdefghijk", 1.0, 2.0, str(tmp_path), cfg)
    assert pickle.loads(pickle.dumps(job)) == job
    assert pickle.loads(pickle.dumps(run_job)) is run_job


def test_unsafe_ids_are_skipped_and_never_become_paths(
    tmp_path: Path, server: LoopbackServer, media: dict[str, bytes]
) -> None:
    server.add("okokokokok1.mp4", media["av"])
    write_videos(tmp_path / "videos.parquet", ["okokokokok1", "../../etc/x", "abcdefghij\n"])
    write_params(tmp_path / "params.yaml", server)
    assert stage.main(args_for(tmp_path), serial_map) == 0
    rows = L.read_ledger(tmp_path / "out" / L.LEDGER_NAME)
    assert sorted(r.status for r in rows) == ["ok", "skipped", "skipped"]
    assert {r.error_category for r in rows if r.status == "skipped"} == {"invalid_id"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".lock", ".records", "ledger.parquet", "okokokokok1.mp4"
    ]


def test_url_source_shorter_than_hull_records_what_exists(
    tmp_path: Path, server: LoopbackServer, media: dict[str, bytes]
) -> None:
    # The generic extractor does not know the length; a short result is checked against the
    # length the source's own header states (so it is not mistaken for a truncation).
    server.add("shortsource.mp4", media["av"])
    write_videos(tmp_path / "videos.parquet", ["shortsource"], hull=(15.0, 25.0))
    write_params(tmp_path / "params.yaml", server)
    assert stage.main(args_for(tmp_path), serial_map) == 0
    row = ledger(tmp_path)["shortsource"]
    assert (row.status, row.attempts) == ("ok", 1)
    check_covers(row, row.duration, 15.0, 20.0)  # the source ends at 20 s
    assert row.requested_end == 25.0
