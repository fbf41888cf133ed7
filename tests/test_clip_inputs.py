"""`repurpose clip` on awkward inputs (issue 12 items 3, 10, 12, 15): rotated phone video, odd
and tiny pictures, an output folder that cannot be written, URLs that fail."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from repurpose.media import ffmpeg_exe, probe, run_ffmpeg
from tests.clip_kit import run_clip

pytestmark = pytest.mark.slow


def frame_rgb(path: Path, t: float, size: tuple[int, int]) -> np.ndarray:
    """The frame shown at `t` s as ffmpeg displays it (display rotation applied), RGB."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-ss", f"{t:.3f}", "-i", str(path),
                          "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, np.uint8).reshape(size[1], size[0], 3).astype(np.float32)


def one_line_error(rc: int, stderr: str) -> str:
    assert rc == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_vertical_crops_the_displayed_picture_of_a_rotated_video(clip_kit: dict,
                                                                 tmp_path: Path) -> None:
    rot = tmp_path / "rot.mp4"
    run_ffmpeg(["-display_rotation", "90", "-i", str(clip_kit["video"]), "-c", "copy", str(rot)])
    out = tmp_path / "out"
    rc, stdout, stderr = run_clip(clip_kit, str(rot), out, "--vertical", "--reframe", "centre",
                                  "--size", "126x224", "--max-clips", "1")
    assert rc == 0, stderr
    man = json.loads((out / "clips.json").read_text())
    assert man["source"]["rotation"] in (90, 270) and man["source"]["display"] == [128, 224]
    assert "rotated" in stdout
    clip = man["clips"][0]
    assert clip["reframe"]["crop"] == [126, 224]  # 9:16 of the upright 128x224 picture
    info = probe(out / clip["file"])
    assert (info.width, info.height) == (126, 224)
    # the clip shows the upright picture's centre, not a crop of the stored (sideways) one
    got = frame_rgb(out / clip["file"], 1.0, (126, 224))
    shown = frame_rgb(rot, clip["start"] + 1.0, (128, 224))[:, 1:127]
    assert np.abs(got - shown).mean() < 12, np.abs(got - shown).mean()


def test_odd_sized_video_exports_at_even_size(clip_kit: dict, tmp_path: Path) -> None:
    odd = tmp_path / "odd.mp4"
    run_ffmpeg(["-i", str(clip_kit["video"]), "-vf", "scale=321:241", "-c:v", "libx264",
                "-pix_fmt", "yuv444p", "-c:a", "copy", str(odd)])
    out = tmp_path / "out"
    rc, _, stderr = run_clip(clip_kit, str(odd), out, "--max-clips", "2")
    assert rc == 0, stderr
    man = json.loads((out / "clips.json").read_text())
    assert man["clips"]
    for c in man["clips"]:
        info = probe(out / c["file"])
        assert (info.width, info.height) == (320, 240) and c["size"] == [320, 240]
        assert abs(info.duration - c["duration"]) <= 0.1


def test_tiny_video_fails_at_once_with_one_line(clip_kit: dict, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.mp4"
    run_ffmpeg(["-i", str(clip_kit["video"]), "-vf", "scale=1:1", "-c:v", "libx264",
                "-pix_fmt", "yuv444p", "-c:a", "copy", str(tiny)])
    out = tmp_path / "out"
    started = time.monotonic()
    rc, _, stderr = run_clip(clip_kit, str(tiny), out)
    line = one_line_error(rc, stderr)
    assert str(tiny) in line and "1x1" in line
    assert time.monotonic() - started < 10
    assert not (out / ".work" / "cache").exists()  # no feature was computed


def test_unwritable_output_folder_is_one_line_before_any_work(clip_kit: dict,
                                                              tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes through permission bits: use a kernel folder
        folder = Path("/sys/kernel")
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
    started = time.monotonic()
    rc, _, stderr = run_clip(clip_kit, str(clip_kit["video"]), folder)
    line = one_line_error(rc, stderr)
    assert f"--out {folder}: cannot write there" in line
    assert time.monotonic() - started < 10


def test_closed_port_leaves_no_partial_folder(clip_kit: dict, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "out"
    url = f"http://127.0.0.1:{port}/talk.mp4"
    rc, _, stderr = run_clip(clip_kit, url, out)
    assert url in one_line_error(rc, stderr)
    assert not (out / ".work" / "downloads" / ".partial").exists()
    assert not (out / ".work" / "downloads").exists()


def test_html_served_as_mp4_is_not_retried(clip_kit: dict, tmp_path: Path) -> None:
    from tests.loopback import LoopbackServer

    params = yaml.safe_load(clip_kit["params"].read_text())
    params["download"].update(retries=3, backoff_base=5, backoff_max=10)
    patient = tmp_path / "params.yaml"
    patient.write_text(yaml.safe_dump(params))
    out = tmp_path / "out"
    with LoopbackServer() as server:
        server.add("page.mp4", b"<html><body>not a video</body></html>\n" * 40,
                   content_type="video/mp4")
        url = server.url("page.mp4")
        started = time.monotonic()
        rc, _, stderr = run_clip({**clip_kit, "params": patient}, url, out)
        took = time.monotonic() - started
    line = one_line_error(rc, stderr)
    assert url in line and "undecodable" in line
    assert took < 5, took  # one attempt: no 5 s backoff before a second one
    assert not (out / ".work" / "downloads" / ".partial").exists()


def test_a_dripping_url_is_cut_off_by_the_download_deadline(clip_kit: dict,
                                                            tmp_path: Path) -> None:
    from tests.loopback import LoopbackServer

    params = yaml.safe_load(clip_kit["params"].read_text())
    params["download"].update(deadline=4, timeout=30, retries=3, backoff_base=1, backoff_max=2)
    hurried = tmp_path / "params.yaml"
    hurried.write_text(yaml.safe_dump(params))
    out = tmp_path / "out"
    with LoopbackServer() as server:
        server.add("slow.mp4", clip_kit["video"].read_bytes(), rate=2048)  # 2 KB/s, no stall
        url = server.url("slow.mp4")
        started = time.monotonic()
        rc, _, stderr = run_clip({**clip_kit, "params": hurried}, url, out)
        took = time.monotonic() - started
    line = one_line_error(rc, stderr)
    assert url in line and "deadline" in line
    assert took < 15, took  # the 4 s deadline, not the socket timeout nor the drip's hours
    assert not (out / ".work" / "downloads" / ".partial").exists()
