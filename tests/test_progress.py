"""Progress of per-video work: a tqdm bar on a terminal (a real pty), plain periodic lines
elsewhere, and a Prefect progress artifact inside a flow run (real Prefect test server)."""

from __future__ import annotations

import io
import os
import re
import select
import time

import pytest

from repurpose.progress import Progress, stage_desc, with_progress
from repurpose.runner import serial_map, thread_mapper

LINE = re.compile(r"^extract visual: (\d+)/3 videos \((\d+)%\), [\d.]+ videos/s, "
                  r"elapsed \d:\d\d:\d\d, ETA (\d:\d\d:\d\d|\?)$")


def test_not_a_terminal_prints_plain_lines_with_count_rate_and_eta() -> None:
    out = io.StringIO()
    with Progress(3, "extract visual", stream=out, interval=0, prefect=False) as bar:
        for _ in range(3):
            time.sleep(0.01)
            bar.update()
    lines = out.getvalue().splitlines()
    assert bar.mode == "lines" and "\r" not in out.getvalue()
    assert [LINE.match(x).group(1) for x in lines] == ["1", "2", "3"]
    assert LINE.match(lines[0]).group(3) != "?"  # an ETA once the rate is known
    assert lines[-1].startswith("extract visual: 3/3 videos (100%)")


def test_lines_are_throttled_so_ci_logs_stay_short() -> None:
    out = io.StringIO()
    with Progress(3, "extract visual", stream=out, interval=60, prefect=False) as bar:
        for _ in range(3):
            bar.update()
    assert len(out.getvalue().splitlines()) == 1  # only the final line


def test_a_terminal_gets_a_tqdm_bar() -> None:
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 120 columns
    try:
        stream = os.fdopen(slave, "w", buffering=1)
        with Progress(3, "extract visual", stream=stream, prefect=False) as bar:
            for _ in range(3):
                time.sleep(0.05)
                bar.update()
        stream.flush()
        assert bar.mode == "bar"
        data = b""
        while select.select([master], [], [], 0.2)[0]:
            chunk = os.read(master, 65536)
            if not chunk:
                break
            data += chunk
        stream.close()
    finally:
        os.close(master)
    text = data.decode(errors="replace")
    assert "\r" in text  # redrawn in place
    assert re.search(r"extract visual: 100%\|.*\| 3/3 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+video/s\]",
                     text), text


def test_wrapped_mapper_keeps_results_and_reports_each(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    out = io.StringIO()
    monkeypatch.setenv("REPURPOSE_PROGRESS", "lines")
    monkeypatch.setenv("REPURPOSE_PROGRESS_INTERVAL", "0")

    def square(x: int) -> int:
        if x == 2:
            raise ValueError("bad video")
        return x * x

    for mapper in (serial_map, thread_mapper(2)):
        wrapped = with_progress(mapper, "extract visual", stream=out, prefect=False)
        got = dict(wrapped(square, [1, 2, 3], key=str))
        assert got[1] == 1 and got[3] == 9 and isinstance(got[2], ValueError)
    assert out.getvalue().count("3/3 videos (100%)") == 2
    assert list(with_progress(serial_map, "x", stream=out)(square, [], key=str)) == []


def test_stage_names_carry_the_modality() -> None:
    class Args:
        modality = "audio"

    assert stage_desc("extract", Args()) == "extract audio"
    assert stage_desc("download", object()) == "download"


@pytest.mark.slow
def test_inside_a_flow_run_a_progress_artifact_reaches_100() -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.testing.utilities import prefect_test_harness

    @flow
    def stage() -> int:
        mapper = with_progress(serial_map, "extract visual", stream=io.StringIO())
        return sum(1 for _ in mapper(lambda x: x, [1, 2, 3, 4], key=str))

    with prefect_test_harness():
        assert stage() == 4

        async def read() -> list:
            async with get_client() as client:
                return await client.read_artifacts(artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=["progress-extract-visual"])))

        import asyncio

        found = asyncio.run(read())
    assert found and found[0].type == "progress"
    assert float(found[0].data) == 100.0
    assert "4/4 videos" in (found[0].description or "")
