"""The ffmpeg cuts: keyframe-aligned stream copies and exact re-encoded cuts, in one place.

- `copy_cut` (the download default, `download.cut: copy`): no decode, no encode. ffmpeg's input
  seek lands on the keyframe at or before the range start, so the file begins up to one GOP
  early (a video with keyframes 10 s apart may start 10 s before the range); it runs to the
  range end. The cut keeps the source's timestamps (`-copyts`), its first packet time is read
  back, then one more stream copy rebases the file to start at 0 (`+faststart`). That first
  packet time, in the source's own seconds, is the ledger's `source_offset`: usually not an
  integer, and the feature stages place rows by it (`pervideo/inputs.py`).
- `exact_cut` (`download.cut: reencode`, and every `repurpose clip` output file): `-ss` before
  `-i`, which ffmpeg makes frame-exact when transcoding, with `encode.encode_args` (x264
  veryfast + AAC). About 280 CPU seconds per hour of 360p video on this class of machine,
  against well under a second for the copy.

`rebase_to_zero` is also what yt-dlp's stream-copied sections go through (`ytdlp.py`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from repurpose.download.encode import encode_args
from repurpose.media import MediaError, ffmpeg_exe, run_ffmpeg

CUTS = ("copy", "reencode")
PathLike = str | os.PathLike[str]


def container_start(path: PathLike) -> float:
    """Seconds of the container's first timestamp (0.0 when it states none), as ffmpeg counts."""
    import av

    try:
        with av.open(str(path)) as container:
            start = container.start_time
    except av.error.FFmpegError as exc:  # type: ignore[attr-defined]
        raise MediaError(f"{path}: cannot open: {exc}") from exc
    return 0.0 if start is None else start / 1_000_000


def rebase_to_zero(raw: PathLike, target: PathLike, timeout: float | None = None) -> float:
    """Stream-copy `raw` into the mp4 `target` so that it starts at 0 (moov first); return the
    start `raw` had (its first packet time, seconds). `raw` is removed."""
    start = container_start(raw)
    args = ["-i", str(raw), "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy",
            "-movflags", "+faststart", "-f", "mp4", str(target)]
    run_ffmpeg(args, timeout=timeout)
    Path(raw).unlink(missing_ok=True)
    return round(start, 6)


def copy_cut(source: PathLike, start: float, length: float, target: PathLike,
             timeout: float | None = None) -> float:
    """Stream-copy `[keyframe <= start, start + length)` of `source` into the mp4 `target`
    (starting at 0); return the absolute source second of the file's t = 0 (first packet)."""
    origin = container_start(source)  # ffmpeg's -ss and our seconds count from here
    target = Path(target)
    raw = target.with_name(f"{target.stem}.copyts.mp4")
    args = ["-copyts", "-ss", f"{start:.3f}", "-t", f"{length:.3f}", "-i", str(source),
            "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", "-f", "mp4", str(raw)]
    try:
        run_ffmpeg(args, timeout=timeout)
        first = rebase_to_zero(raw, target, timeout)
    finally:
        raw.unlink(missing_ok=True)
    return round(max(0.0, first - origin), 6)


def exact_cut(source: PathLike, start: float, length: float, target: PathLike, *,
              filters: Sequence[str] = (), crf: str | None = None, strip: bool = False,
              decoder_threads: int | None = 1, timeout: float | None = None) -> None:
    """Re-encode exactly `[start, start + length)` of `source` into the mp4 `target` (H.264 +
    AAC, `encode_args`): `filters` as -vf, `crf` for x264, `strip` drops subtitle/data streams
    and metadata, `decoder_threads` 1 keeps the bytes the same in every run (None: ffmpeg's)."""
    args = ["-threads", str(decoder_threads)] if decoder_threads else []
    args += ["-ss", f"{start:.3f}", "-i", str(source), "-t", f"{length:.3f}",
             "-map", "0:v:0", "-map", "0:a:0?"]
    if strip:
        args += ["-sn", "-dn", "-map_metadata", "-1"]
    if filters:
        args += ["-vf", ",".join(filters)]
    args += encode_args(ffmpeg_exe())
    if crf is not None:
        args += ["-crf", crf]
    run_ffmpeg([*args, "-f", "mp4", str(target)], timeout=timeout)


def cut(source: PathLike, start: float, length: float, target: PathLike, method: str,
        timeout: float | None = None) -> float:
    """Cut by `method` (`copy` | `reencode`); return the absolute start of the file's t = 0."""
    if method == "copy":
        return copy_cut(source, start, length, target, timeout)
    if method == "reencode":
        exact_cut(source, start, length, target, timeout=timeout)
        return start
    raise ValueError(f"cut method {method!r} is not one of {', '.join(CUTS)}")

