"""Checking a downloaded file before it may be called ok: decodable, complete, hashed."""

from __future__ import annotations

import os
from pathlib import Path

from repurpose.download.errors import PermanentDownloadError, TransientDownloadError
from repurpose.media import MediaError, MediaInfo, probe

# A file may be this much shorter or longer than asked for (seconds): stream-length rounding
# and audio/video length differences, but far less than any real truncation we care about.
DURATION_TOLERANCE_S = 1.0



def expected_duration(start: float, end: float, source_duration: float | None) -> float:
    """Seconds a cut of [start, end] should last, given the source's length when known."""
    stop = end if source_duration is None else min(end, source_duration)
    return max(0.0, stop - start)


def _decodes(path: Path, at: float) -> None:
    """Decode one video frame at or after `at` seconds (seeking), else raise MediaError."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if at > 0:
                container.seek(int(at * 1_000_000), any_frame=False, backward=True)
            for frame in container.decode(stream):
                del frame
                return
    except (av.error.FFmpegError, IndexError) as exc:  # type: ignore[attr-defined]
        raise MediaError(f"{path}: cannot decode at {at:.1f} s: {exc}") from exc
    raise MediaError(f"{path}: no decodable video frame at {at:.1f} s")


def verify_media(
    path: str | os.PathLike[str],
    expected: float | None,
    tolerance: float = DURATION_TOLERANCE_S,
) -> MediaInfo:
    """Probe `path` and decode its first and last seconds; check its length.

    `expected` is the length the file should have (None: unknown, then only decodability is
    checked). A broken file raises TransientDownloadError (category `undecodable` or
    `truncated`): a bad download is worth another try, never ok. A file without any video
    stream raises PermanentDownloadError (`no_video`).
    """
    p = Path(path)
    try:
        info = probe(p)
    except MediaError as exc:
        raise TransientDownloadError(
            f"downloaded file is not decodable: {exc}", "undecodable"
        ) from exc
    if not info.has_video:
        raise PermanentDownloadError(f"{p.name}: the source has no video stream", "no_video")
    try:
        _decodes(p, 0.0)
        if info.duration > 2.0:
            _decodes(p, info.duration - 1.5)
    except MediaError as exc:
        raise TransientDownloadError(
            f"downloaded file is not decodable: {exc}", "undecodable"
        ) from exc
    if expected is not None and abs(info.duration - expected) > tolerance:
        raise TransientDownloadError(
            f"downloaded file lasts {info.duration:.2f} s, expected {expected:.2f} s "
            "(truncated or incomplete download)",
            "truncated",
        )
    return info
