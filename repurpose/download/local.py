"""The `local` source: cut the needed range out of the user's own files with ffmpeg.

Files are looked up as `<local_dir>/<youtube_id>.<ext>` (the id is checked first). The cut is
`download.cut`: a keyframe-aligned stream copy (default; the file starts at the keyframe before
the range, and `Cut.start` says where) or an exact re-encode (`reencode`); see `cut.py`.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from repurpose.download.cut import cut
from repurpose.download.errors import PermanentDownloadError, TransientDownloadError
from repurpose.media import MediaError, probe
from repurpose.splits.schema import check_id

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".m4v", ".avi", ".ts", ".flv")


@dataclass(frozen=True)
class Cut:
    """A section cut from a local file."""

    path: Path
    source_duration: float
    start: float  # absolute source second of the file's t = 0 (first packet, for a copy)


def find_local(local_dir: str | Path, youtube_id: str) -> Path:
    """The user's file for `youtube_id` in `local_dir` (first known extension), or a
    permanent `not_found` failure."""
    folder = Path(local_dir)
    vid = check_id(youtube_id)
    for ext in VIDEO_EXTENSIONS:
        candidate = folder / f"{vid}{ext}"
        if candidate.is_file():
            return candidate
    raise PermanentDownloadError(
        f"no file {vid}.<{'|'.join(e.lstrip('.') for e in VIDEO_EXTENSIONS)}> in {folder}",
        "not_found",
    )


def cut_local(
    source: Path, target: Path, start: float, end: float, timeout: float | None = None,
    method: str = "copy",
) -> Cut:
    """Cut [start, end] (source seconds, clamped to the file's length) from `source` into
    the mp4 `target`, by `method` (`copy` | `reencode`)."""
    try:
        info = probe(source)
    except MediaError as exc:
        raise PermanentDownloadError(
            f"local file is not readable media: {exc}", "invalid_media"
        ) from exc
    if not info.has_video:
        raise PermanentDownloadError(f"{source.name}: no video stream", "no_video")
    if start >= info.duration:
        raise PermanentDownloadError(
            f"the needed range starts at {start:g} s but {source.name} lasts {info.duration:g} s",
            "out_of_range",
        )
    length = min(end, info.duration) - start
    try:
        first = cut(source, start, length, target, method, timeout=timeout)
    except MediaError as exc:
        raise TransientDownloadError(
            f"ffmpeg could not cut {source.name}: {exc}", "ffmpeg"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise TransientDownloadError(f"ffmpeg timed out cutting {source.name}", "timeout") from exc
    return Cut(path=target, source_duration=info.duration, start=first)
