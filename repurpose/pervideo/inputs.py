"""What the per-video stages read: the videos the download stage delivered, and their rows.

One small function (`load_videos`) stands between the stages and the download ledger, so the
ledger's layout can change in one place.

Rows and the file's own time: the file starts at absolute source second `source_offset`
(the ledger's column; fractional when a download starts at a keyframe). Row `t` (absolute
second) covers `[t, t + 1)`; its frame is the one shown at absolute `t + 0.5`, its audio is
absolute `[t, t + 1)`. A file lasting `D` seconds gets the rows whose midpoint `t + 0.5` lies
inside `[offset, offset + D)`: rows `[round(offset), round(offset + D))` with halves rounded up,
computed with `timeline.second_index(x + 0.5)`. With an integer offset (the usual case) that is
`offset .. offset + round(D) - 1`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from repurpose.errors import UserError
from repurpose.io import sha256_file
from repurpose.media import MediaInfo
from repurpose.timeline import second_index

SHORTER_TOLERANCE = 1.0  # seconds a file may fall short of the ledger before it is flagged


@dataclass(frozen=True)
class VideoInput:
    """One downloaded video as the per-video stages see it."""

    youtube_id: str
    path: str
    sha256: str  # content hash of the file (from the ledger, else computed)
    source_offset: float  # absolute source second of the file's t = 0
    duration: float  # seconds, as the ledger records them (0 = unknown)
    has_audio: bool

    def local_time(self, absolute: float) -> float:
        """File time of absolute source time `absolute`."""
        return absolute - self.source_offset


def row_range(source_offset: float, duration: float) -> tuple[int, int]:
    """Rows `[first, stop)` of a file starting at absolute `source_offset`, lasting `duration` s:
    the seconds whose midpoint lies inside the file (see the module docstring)."""
    first = second_index(max(0.0, source_offset) + 0.5)
    stop = second_index(max(0.0, source_offset + duration) + 0.5)
    return first, max(first, stop)


def media_flags(video: VideoInput, info: MediaInfo) -> list[str]:
    """Flags the probe alone raises: `shorter_than_ledger`, `short_video`."""
    flags = []
    if video.duration and info.duration < video.duration - SHORTER_TOLERANCE:
        flags.append("shorter_than_ledger")
    if info.duration < 1.0:
        flags.append("short_video")
    return flags


def load_videos(ledger: str | os.PathLike[str], videos_dir: str | os.PathLike[str],
                hash_missing: bool = True) -> list[VideoInput]:
    """The videos with status ok in the download ledger, sorted by id (a missing sha256 is
    computed from the file when `hash_missing`)."""
    from repurpose.download.ledger import ok_videos

    if not Path(ledger).is_file():
        raise UserError(f"{ledger}: download ledger not found (run `repurpose download` first)")
    out = []
    for youtube_id, row in sorted(ok_videos(ledger).items()):
        path = row.path_in(videos_dir) if row.file else Path(videos_dir) / f"{youtube_id}.mp4"
        sha = row.sha256 or (sha256_file(path) if hash_missing and path.is_file() else "")
        out.append(VideoInput(
            youtube_id=youtube_id,
            path=str(path),
            sha256=sha,
            source_offset=float(row.source_offset or 0.0),
            duration=float(row.duration or 0.0),
            has_audio=bool(row.has_audio),
        ))
    return out
