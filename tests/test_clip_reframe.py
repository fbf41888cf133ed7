"""`--vertical` reframing on a video in which a real face (scikit-image's astronaut photo) moves
across the frame: the face stays inside the 9:16 crop, the window pans smoothly, and the output
has the requested size."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from repurpose.media import ffmpeg_exe, probe

W, H, FPS, SECONDS = 480, 270, 12, 8.0
FACE = 100  # pixels: the face patch pasted into every frame
X0, X1 = 20, W - FACE - 20  # its left edge moves linearly from X0 to X1


def face_patch() -> np.ndarray:
    """The astronaut's head (RGB), FACE x FACE pixels."""
    import cv2
    from skimage import data

    head = data.astronaut()[40:210, 145:315]  # the face is at (177, 66) + 95 px
    return cv2.resize(head, (FACE, FACE), interpolation=cv2.INTER_AREA)


def face_x(t: float) -> float:
    """Left edge of the face at `t` seconds."""
    return X0 + (X1 - X0) * min(1.0, max(0.0, t / SECONDS))


def make_face_video(path: Path, audio_from: Path | None = None) -> Path:
    """An mp4 with a textured still background and the face moving left to right."""
    rng = np.random.default_rng(0)
    background = (rng.integers(90, 140, (H, W, 1)) * np.ones((1, 1, 3))).astype(np.uint8)
    patch = face_patch()
    y = (H - FACE) // 2
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{W}x{H}", "-r", str(FPS), "-i", "-"]
    if audio_from is not None:
        cmd += ["-i", str(audio_from), "-map", "0:v", "-map", "1:a", "-c:a", "aac", "-shortest"]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-t",
            str(SECONDS), str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for i in range(int(SECONDS * FPS)):
        frame = background.copy()
        x = int(round(face_x(i / FPS)))
        frame[y:y + FACE, x:x + FACE] = patch
        proc.stdin.write(frame.tobytes())
    proc.stdin.close()
    assert proc.wait() == 0
    return path


def frames(path: Path, size: tuple[int, int], every: float) -> list[tuple[float, np.ndarray]]:
    """(time, RGB frame) every `every` seconds of an mp4 of known size."""
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-vf",
                          f"fps=1/{every}:start_time=0", "-f", "rawvideo", "-pix_fmt",
                          "rgb24", "-"], capture_output=True, check=True).stdout
    n = len(raw) // (size[0] * size[1] * 3)
    arr = np.frombuffer(raw[: n * size[0] * size[1] * 3], np.uint8).reshape(n, size[1],
                                                                          size[0], 3)
    return [(i * every, arr[i]) for i in range(n)]


def face_visible(frame: np.ndarray, scale: float) -> tuple[float, int]:
    """(match score, left edge) of the face patch found in `frame` (scaled by `scale`)."""
    import cv2

    patch = face_patch()
    if scale != 1.0:
        patch = cv2.resize(patch, (round(FACE * scale), round(FACE * scale)))
    res = cv2.matchTemplate(frame, patch, cv2.TM_CCOEFF_NORMED)
    _, best, _, loc = cv2.minMaxLoc(res)
    return best, loc[0]


@pytest.fixture(scope="module")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_face_video(tmp_path_factory.mktemp("face") / "face.mp4")


def test_detector_finds_the_real_face() -> None:
    import cv2

    from repurpose.clip.reframe import detect_faces

    frame = np.full((H, W), 115, np.uint8)
    frame[80:80 + FACE, 300:300 + FACE] = cv2.cvtColor(face_patch(), cv2.COLOR_RGB2GRAY)
    boxes = detect_faces(frame)
    assert boxes, "no face found"
    x, y, w, h = boxes[0]
    assert 300 <= x + w / 2 <= 300 + FACE and 80 <= y + h / 2 <= 80 + FACE
    assert detect_faces(np.full((H, W), 115, np.uint8)) == []  # nothing in a blank frame


def test_crop_follows_the_face_smoothly(face_video: Path, tmp_path: Path) -> None:
    from repurpose.clip.export import export_clip
    from repurpose.clip.reframe import ReframeSettings, centre_crop, plan_crop, sendcmd_text

    settings = ReframeSettings(size=(150, 270))  # no scaling: the crop is the output
    crop = plan_crop(face_video, 0.0, SECONDS, (W, H), FPS, settings)
    assert crop.mode == "face" and crop.face_share > 0.8
    assert (crop.width, crop.height) == (150, 270) and len(crop.xs) == int(SECONDS * FPS)
    stats = crop.stats()
    bound = settings.max_pan * W / FPS  # pixels per frame
    assert stats["max_step_px"] <= bound + 1, stats
    steps = np.diff(crop.xs)
    assert (np.diff(np.sign(steps[steps != 0])) != 0).sum() <= 2  # no back-and-forth jitter
    cmd = tmp_path / "crop.cmd"
    cmd.write_text(sendcmd_text(crop))
    out = tmp_path / "clip.mp4"
    export_clip(face_video, 0.0, SECONDS, out, W, H, crop=crop, crop_commands=cmd,
                size=(150, 270))
    info = probe(out)
    assert (info.width, info.height) == (150, 270)
    centre = centre_crop((W, H), (150, 270)).xs[0]
    outside_centre = 0
    for t, frame in frames(out, (150, 270), every=0.5):
        score, _ = face_visible(frame, 1.0)
        assert score > 0.8, (t, score)  # the whole face is in the picture
        fx = face_x(t)
        outside_centre += not (centre <= fx and fx + FACE <= centre + 150)
    assert outside_centre >= 6  # a centre crop would have lost the face most of the time


def test_no_face_and_no_motion_is_a_still_centre_crop(tmp_path: Path) -> None:
    from repurpose.clip.reframe import ReframeSettings, plan_crop
    from tests.synthetic_media import pattern_video

    still = pattern_video(tmp_path / "blue.mp4", 4, size=(320, 180), audio="none")
    crop = plan_crop(still, 0.0, 4.0, (320, 180), 10, ReframeSettings(size=(1080, 1920)))
    assert crop.mode == "centre" and set(crop.xs) == {(320 - crop.width) // 2}
    assert crop.stats()["max_step_px"] == 0.0


def test_path_smoothing_bounds_speed_and_ignores_jitter() -> None:
    from repurpose.clip.reframe import ReframeSettings, smooth_path

    s = ReframeSettings(analysis_fps=4, max_pan=0.25, dead_zone=0.1, smooth_seconds=1.0)
    rng = np.random.default_rng(1)
    jitter = list(0.5 + rng.normal(0, 0.01, 40))  # a face that trembles in place
    still = smooth_path(jitter, 0.3, s)
    assert np.ptp(still) < 0.01
    jump = [0.2] * 20 + [0.8] * 20  # a cut to someone on the other side
    path = smooth_path(jump + [None] * 4, 0.3, s)  # gaps hold the last position
    assert np.abs(np.diff(path)).max() <= s.max_pan / s.analysis_fps + 1e-9
    assert path[0] == pytest.approx(0.2 + 0.03, abs=0.02) and path[-1] > 0.7
    assert np.all(path >= 0.15) and np.all(path <= 0.85)  # the window stays in the frame


@pytest.mark.slow
def test_clip_vertical_follows_the_face_end_to_end(clip_kit: dict, tmp_path: Path) -> None:
    from tests.clip_kit import run_clip

    video = make_face_video(tmp_path / "face-talk.mp4", audio_from=clip_kit["video"])
    out = tmp_path / "out"
    rc, _, stderr = run_clip(clip_kit, str(video), out, "--vertical", "--size", "216x384",
                             "--max-clips", "1", "--no-snap")
    assert rc == 0, stderr
    clip = json.loads((out / "clips.json").read_text())["clips"][0]
    assert clip["reframe"]["mode"] == "face" and clip["size"] == [216, 384]
    info = probe(out / clip["file"])
    assert (info.width, info.height) == (216, 384)
    for t, frame in frames(out / clip["file"], (216, 384), every=1.0):
        score, _ = face_visible(frame, 384 / 270)
        assert score > 0.7, (t, score)
