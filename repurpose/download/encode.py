"""How exact cuts are re-encoded: H.264 (x264 `veryfast`) + AAC in mp4, moov atom first.

An exact cut must re-encode (a stream copy starts at a keyframe). x264's default preset
(`medium`) made this the bottleneck (~12 s per minute of 360p on 2 cores); `veryfast` takes
~5 s for a file of about the same size. Features are computed from 224-px frames at 1 fps, so
the preset costs nothing downstream. Used by `cut.exact_cut`: downloads with
`download.cut: reencode` (yt-dlp's exact sections and local cuts) and every `repurpose clip`
output file; the download default is a stream copy (`cut.copy_cut`), which encodes nothing.

One encoder (and decoder) thread: with x264's frame threads, two cuts of the same file were
seen to differ (one video of nine in three test runs on a busy machine), so a teammate's
download would not match. Per-video work runs in parallel workers anyway, so the stage's
throughput on a busy machine stays about the same.
"""

from __future__ import annotations

import subprocess
from functools import lru_cache

X264_PRESET = "veryfast"


@lru_cache(maxsize=8)
def has_encoder(ffmpeg: str, name: str) -> bool:
    """Whether this ffmpeg build has encoder `name`."""
    try:
        out = subprocess.run(
            [ffmpeg, "-hide_banner", "-encoders"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.strip())


def encode_args(ffmpeg: str) -> list[str]:
    """ffmpeg output options for an exact-cut mp4 (ffmpeg's defaults if no libx264)."""
    args: list[str] = []
    if has_encoder(ffmpeg, "libx264"):
        args += ["-c:v", "libx264", "-preset", X264_PRESET, "-pix_fmt", "yuv420p",
                 "-x264-params", "threads=1:sliced-threads=0"]
    args += ["-threads", "1", "-c:a", "aac", "-movflags", "+faststart"]
    return args
