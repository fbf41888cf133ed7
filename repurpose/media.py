"""Media helpers: where ffmpeg lives, and what a media file holds (probed with PyAV)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from repurpose.errors import UserError

FFMPEG_ENV = "REPURPOSE_FFMPEG"


class MediaError(UserError):
    """A media file cannot be read, or a media tool is missing or failed."""


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: $REPURPOSE_FFMPEG, else imageio-ffmpeg's, else one on PATH."""
    override = os.environ.get(FFMPEG_ENV)
    if override:
        if not Path(override).is_file():
            raise MediaError(f"${FFMPEG_ENV}={override} is not a file")
        return override
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - any failure means "not available", fall through
        pass
    found = shutil.which("ffmpeg")
    if found:
        return found
    raise MediaError(
        "ffmpeg not found: install the 'imageio-ffmpeg' package (it ships a static ffmpeg), "
        f"install ffmpeg on PATH, or set ${FFMPEG_ENV} to an ffmpeg binary"
    )


def run_ffmpeg(args: list[str], timeout: float | None = None) -> None:
    """Run ffmpeg with `args` (quiet, no stdin); raise MediaError with its stderr on failure."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise MediaError(f"ffmpeg failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds: container duration and its first video and audio streams."""

    duration: float  # seconds
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    video_codec: str = ""
    audio_codec: str = ""
    audio_rate: int = 0

    def to_dict(self) -> dict[str, object]:
        """Plain dict, for tables and JSON."""
        return asdict(self)


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Open `path` with PyAV and describe it; MediaError if it is not a readable media file."""
    import av

    p = Path(path)
    if not p.is_file():
        raise MediaError(f"{p}: no such file")
    try:
        with av.open(str(p)) as container:
            video = container.streams.video[0] if container.streams.video else None
            audio = container.streams.audio[0] if container.streams.audio else None
            duration = _duration(container, video, audio)
            info = MediaInfo(
                duration=duration,
                has_video=video is not None,
                has_audio=audio is not None,
                width=int(video.codec_context.width) if video else 0,
                height=int(video.codec_context.height) if video else 0,
                fps=float(video.average_rate or video.guessed_rate or 0) if video else 0.0,
                video_codec=video.codec_context.name if video else "",
                audio_codec=audio.codec_context.name if audio else "",
                audio_rate=int(audio.codec_context.sample_rate or 0) if audio else 0,
            )
    except av.error.FFmpegError as exc:  # type: ignore[attr-defined]
        raise MediaError(f"{p}: not a readable media file: {exc}") from exc
    if not info.has_video and not info.has_audio:
        raise MediaError(f"{p}: no audio or video stream")
    return info


def _duration(container, video, audio) -> float:  # noqa: ANN001 - PyAV objects
    """Longest of the stream durations, else the container's (seconds)."""
    best = 0.0
    for stream in (video, audio):
        if stream is not None and stream.duration is not None and stream.time_base is not None:
            best = max(best, float(stream.duration * stream.time_base))
    if best == 0.0 and container.duration is not None:
        best = container.duration / 1_000_000
    return best


def count_video_frames(path: str | os.PathLike[str]) -> int:
    """Decode-free count of video packets (frames) in the first video stream."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for pkt in container.demux(stream) if pkt.size > 0)
