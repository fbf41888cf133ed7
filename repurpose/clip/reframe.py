"""`--vertical` reframing: a 9:16 crop window that follows faces, else motion, else the centre.

The clip's range is decoded once at `analysis_fps` frames per second, `analysis_width` pixels
wide, in grey and in display orientation (ffmpeg applies the display rotation). On each frame:

1. faces: OpenCV's Haar cascade frontal-face detector (`haarcascade_frontalface_default.xml`,
   trained weights shipped inside the `opencv-python-headless` wheel); the target is the centre
   of the largest face, or of all faces when they fit in the crop together;
2. else motion: the column-weighted centre of the pixels that changed since the last frame
   (when enough of them changed);
3. else no target: the window holds where it was (the centre when nothing was ever found).

The targets are median-filtered over `smooth_seconds` (drops single misdetections), then
followed with a bounded pan speed (`max_pan`, frame widths per second) and a dead zone (small
offsets do not move the window: no jitter). The follower runs forwards and backwards in time
and the two paths are averaged: the result leads neither too early nor too late, and its speed
is still bounded. The path is sampled at every output frame and fed to ffmpeg's `crop` filter
through `sendcmd`; `path_stats` measures the frame-to-frame movement that clips.json records.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from repurpose.errors import UserError
from repurpose.media import MediaError, ffmpeg_exe

CASCADE = "haarcascade_frontalface_default.xml"
MOTION_LEVEL = 25  # grey levels: a pixel "moved" when it changed by more than this
MOTION_SHARE = 0.002  # share of moved pixels needed before motion counts as a target
MODE_SHARE = 0.2  # a clip "follows faces" when at least this share of its frames has one


@dataclass(frozen=True)
class ReframeSettings:
    """How the vertical crop window is found and moved."""

    size: tuple[int, int] = (1080, 1920)  # output (width, height) the crop is scaled to
    analysis_fps: float = 4.0  # frames per second looked at
    analysis_width: int = 320  # pixels: frames are analysed at this width
    max_pan: float = 0.25  # frame widths per second: the fastest the window moves
    dead_zone: float = 0.1  # crop widths: offsets of the target smaller than this are ignored
    smooth_seconds: float = 1.0  # median filter of the targets over this long


@dataclass(frozen=True)
class CropPath:
    """The crop window of one clip: its size and the left edge at every output frame."""

    width: int  # crop size in display pixels
    height: int
    y: int
    xs: tuple[int, ...]  # left edge per output frame
    fps: float
    mode: str  # face | motion | centre: what the window mostly followed
    face_share: float  # share of analysed frames with a face

    def stats(self) -> dict[str, float | int | str]:
        """What clips.json records about the path (pixels of the source picture)."""
        return {"mode": self.mode, "face_share": round(self.face_share, 3),
                "crop": [self.width, self.height], **path_stats(self.xs)}


def path_stats(xs: tuple[int, ...] | list[int] | np.ndarray) -> dict[str, float]:
    """Frame-to-frame movement of the crop window: max and mean pixels per frame."""
    steps = np.abs(np.diff(np.asarray(xs, dtype=np.float64)))
    if steps.size == 0:
        return {"max_step_px": 0.0, "mean_step_px": 0.0}
    return {"max_step_px": round(float(steps.max()), 3),
            "mean_step_px": round(float(steps.mean()), 3)}


def crop_size(width: int, height: int, size: tuple[int, int]) -> tuple[int, int]:
    """Even (w, h) of the largest crop of a `width` x `height` picture with the aspect of
    `size`: full height for wider pictures, full width for narrower ones."""
    aspect = size[0] / size[1]
    w = min(width, height * aspect)
    h = min(height, width / aspect)
    return max(2, int(w) // 2 * 2), max(2, int(h) // 2 * 2)


@lru_cache(maxsize=1)
def _detector():  # noqa: ANN202 - cv2.CascadeClassifier
    import cv2

    path = Path(cv2.data.haarcascades) / CASCADE
    detector = cv2.CascadeClassifier(str(path))
    if detector.empty():
        raise UserError(f"--vertical: cannot load the face detector {path}")
    return detector


def detect_faces(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Faces in a grey frame as (x, y, w, h) boxes, largest first."""
    side = max(20, gray.shape[0] // 12)
    found = _detector().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                         minSize=(side, side))
    boxes = [tuple(int(v) for v in box) for box in found]
    return sorted(boxes, key=lambda b: -b[2] * b[3])


def face_target(boxes: list[tuple[int, int, int, int]], crop_w: float) -> float:
    """Centre x of all faces when they fit in a crop `crop_w` wide, else of the largest."""
    left = min(b[0] for b in boxes)
    right = max(b[0] + b[2] for b in boxes)
    if right - left <= crop_w:
        return (left + right) / 2
    x, _, w, _ = boxes[0]
    return x + w / 2


def motion_target(prev: np.ndarray | None, gray: np.ndarray) -> float | None:
    """Column-weighted centre x of the pixels that changed since `prev`, if enough did."""
    if prev is None:
        return None
    moved = np.abs(gray.astype(np.int16) - prev.astype(np.int16)) > MOTION_LEVEL
    if moved.mean() < MOTION_SHARE:
        return None
    columns = moved.sum(axis=0).astype(np.float64)
    return float((columns * (np.arange(columns.size) + 0.5)).sum() / columns.sum())


def analysis_frames(path: str | os.PathLike[str], start: float, end: float,
                    display: tuple[int, int], settings: ReframeSettings) -> np.ndarray:
    """Grey frames of `[start, end)` at the analysis rate and width: (n, h, w) uint8."""
    w = settings.analysis_width // 2 * 2
    h = max(2, round(w * display[1] / display[0] / 2) * 2)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error",
           "-ss", f"{start:.3f}", "-i", str(path), "-t", f"{end - start:.3f}", "-an",
           "-vf", f"fps={settings.analysis_fps},scale={w}:{h},format=gray",
           "-f", "rawvideo", "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False, timeout=600)
    if proc.returncode != 0:
        raise MediaError(f"{path}: cannot decode frames for reframing: "
                         f"{proc.stderr.decode(errors='replace').strip()[-500:]}")
    n = len(proc.stdout) // (w * h)
    return np.frombuffer(proc.stdout[: n * w * h], np.uint8).reshape(n, h, w)


def targets(frames: np.ndarray, crop_frac: float) -> tuple[list[float | None], list[str]]:
    """Per analysed frame: the target centre (share of the frame width) and its kind."""
    out: list[float | None] = []
    kinds: list[str] = []
    prev = None
    for gray in frames:
        width = gray.shape[1]
        boxes = detect_faces(gray)
        if boxes:
            out.append(face_target(boxes, crop_frac * width) / width)
            kinds.append("face")
        else:
            x = motion_target(prev, gray)
            out.append(None if x is None else x / width)
            kinds.append("motion" if x is not None else "none")
        prev = gray
    return out, kinds


def _filled(values: list[float | None]) -> np.ndarray:
    """Gaps hold the last known value (leading gaps the first; all gaps: the centre)."""
    known = [v for v in values if v is not None]
    last = known[0] if known else 0.5
    out = []
    for v in values:
        last = v if v is not None else last
        out.append(last)
    return np.asarray(out, dtype=np.float64)


def _median(values: np.ndarray, k: int) -> np.ndarray:
    """Running median over `k` (odd) samples, edges padded."""
    if k <= 1 or values.size < 3:
        return values
    half = k // 2
    padded = np.pad(values, half, mode="edge")
    return np.array([np.median(padded[i:i + k]) for i in range(values.size)])


def _follow(values: np.ndarray, step: float, dead: float) -> np.ndarray:
    """A follower of `values` that moves at most `step` per sample and ignores offsets
    under `dead`."""
    out = np.empty_like(values)
    pos = values[0]
    for i, v in enumerate(values):
        err = v - pos
        if abs(err) > dead:
            pos += float(np.clip(err - np.sign(err) * dead, -step, step))
        out[i] = pos
    return out


def smooth_path(values: list[float | None], crop_frac: float, settings: ReframeSettings
                ) -> np.ndarray:
    """Window centres (share of frame width) per analysed frame: filtered, bounded-speed
    follower averaged over both directions of time, kept inside the frame."""
    half = crop_frac / 2
    if not values:
        return np.asarray([0.5])
    filled = _filled(values)
    k = max(1, int(round(settings.smooth_seconds * settings.analysis_fps)) // 2 * 2 + 1)
    filtered = np.clip(_median(filled, k), half, 1 - half)
    step = settings.max_pan / settings.analysis_fps
    dead = settings.dead_zone * crop_frac
    forward = _follow(filtered, step, dead)
    backward = _follow(filtered[::-1], step, dead)[::-1]
    return np.clip((forward + backward) / 2, half, 1 - half)


def frame_positions(centres: np.ndarray, analysis_fps: float, fps: float, duration: float,
                    display_w: int, crop_w: int) -> tuple[int, ...]:
    """Left edge of the crop at every output frame (linear between analysed frames)."""
    n = max(1, int(round(duration * fps)))
    t = np.arange(n) / fps
    sample_t = np.arange(centres.size) / analysis_fps
    centre = np.interp(t, sample_t, centres) * display_w
    left = np.clip(np.round(centre - crop_w / 2), 0, display_w - crop_w)
    return tuple(int(x) for x in left)


def plan_crop(path: str | os.PathLike[str], start: float, end: float,
              display: tuple[int, int], fps: float, settings: ReframeSettings) -> CropPath:
    """The crop window of `[start, end)` of the video at `path` (display size `display`)."""
    cw, ch = crop_size(display[0], display[1], settings.size)
    y = (display[1] - ch) // 2
    fps = fps if fps > 0 else 25.0
    if cw >= display[0]:  # already as narrow as the output: nothing to follow
        return CropPath(cw, ch, y, (0,), fps, "centre", 0.0)
    frames = analysis_frames(path, start, end, display, settings)
    crop_frac = cw / display[0]
    values, kinds = targets(frames, crop_frac)
    faces = kinds.count("face")
    motion = kinds.count("motion")
    mode = ("face" if faces >= MODE_SHARE * len(kinds) else
            "motion" if faces + motion >= MODE_SHARE * len(kinds) else "centre")
    centres = smooth_path(values, crop_frac, settings)
    xs = frame_positions(centres, settings.analysis_fps, fps, end - start, display[0], cw)
    return CropPath(cw, ch, y, xs, fps, mode, faces / max(1, len(kinds)))


def centre_crop(display: tuple[int, int], size: tuple[int, int]) -> CropPath:
    """A still crop window in the middle of the picture."""
    cw, ch = crop_size(display[0], display[1], size)
    return CropPath(cw, ch, (display[1] - ch) // 2, ((display[0] - cw) // 2,), 1.0, "centre",
                    0.0)


def sendcmd_text(crop: CropPath) -> str:
    """ffmpeg `sendcmd` commands moving the crop's left edge (only where it changes)."""
    lines = []
    last = None
    for i, x in enumerate(crop.xs):
        if x != last:
            at = max(0.0, (i - 0.5) / crop.fps)  # between frame i - 1 and frame i
            lines.append(f"{at:.4f} crop x {x};")
            last = x
    return "\n".join(lines) + "\n"
