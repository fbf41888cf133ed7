"""The input video: a local file used in place, or an http(s) URL downloaded whole.

A URL goes through the download stage's yt-dlp code (`repurpose.download.ytdlp`: the same
YoutubeDL options, ffmpeg wiring, error classification and file verification), without its
section cut: the whole video at `download.format`, remuxed to mp4 when yt-dlp chose another
container. The file lands in `<work>/downloads/<key>.mp4` (key: sha256 of URL + format) with a
small record beside it, so a rerun with other export options reuses it instead of fetching
again. Transient failures are retried `download.retries` times with the stage's backoff;
anything that is not a video (an HTML page, a 404) is one clear error naming the URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repurpose import io
from repurpose.errors import UserError
from repurpose.features.inputs import VideoInput
from repurpose.io import sha256_file
from repurpose.media import MediaError, MediaInfo, probe

log = logging.getLogger(__name__)

URL_PREFIXES = ("http://", "https://")
DOWNLOADS = "downloads"
PARTIAL = ".partial"
MIN_SIDE = 16  # pixels: smaller pictures cannot be encoded as H.264 4:2:0 clips worth posting
# failures that another attempt at the same URL cannot heal (the server sent all its bytes)
NO_RETRY = frozenset({"undecodable"})


@dataclass(frozen=True)
class Source:
    """The video to repurpose, on local disk."""

    input: str  # as the user gave it
    path: Path  # the local file (the input itself, or the download)
    url: str | None  # the URL when the input was one
    sha256: str
    info: MediaInfo
    downloaded: str = ""  # "fetched" | "reused" for a URL, "" for a local file
    rotation: int = 0  # display rotation in degrees (phone videos: 90 / 270)

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) of the picture as players show it (and as ffmpeg decodes it)."""
        w, h = self.info.width, self.info.height
        return (h, w) if self.rotation % 180 == 90 else (w, h)

    @property
    def video_id(self) -> str:
        """Short content id: names this video's work under `.work/` (stable for equal bytes)."""
        return self.sha256[:16]

    def video_input(self) -> VideoInput:
        """The file as the feature stages see a downloaded video (offset 0, whole file)."""
        return VideoInput(youtube_id=self.video_id, path=str(self.path), sha256=self.sha256,
                          source_offset=0.0, duration=self.info.duration,
                          has_audio=self.info.has_audio)


def is_url(text: str) -> bool:
    """An http(s) URL (anything else is a path)."""
    return text.lower().startswith(URL_PREFIXES)


def _probe_video(path: Path, name: str) -> MediaInfo:
    try:
        info = probe(path)
    except MediaError as exc:
        raise UserError(f"{name}: not a readable video file ({exc})") from exc
    if not info.has_video:
        raise UserError(f"{name}: has no video stream (nothing to cut clips from)")
    if info.duration < 1.0:
        raise UserError(f"{name}: lasts {info.duration:.2f} s (too short to cut clips from)")
    if min(info.width, info.height) < MIN_SIDE:
        raise UserError(f"{name}: picture is {info.width}x{info.height} (clips need at least "
                        f"{MIN_SIDE}x{MIN_SIDE} pixels)")
    return info


def display_rotation(path: Path) -> int:
    """Display rotation of the first video frame in degrees (0, 90, 180 or 270)."""
    import av

    try:
        with av.open(str(path)) as container:
            for frame in container.decode(container.streams.video[0]):
                return int(round(getattr(frame, "rotation", 0) or 0)) % 360
    except (av.error.FFmpegError, IndexError, StopIteration):  # type: ignore[attr-defined]
        return 0
    return 0


def local_source(text: str) -> Source:
    """A local file, checked to be a readable video."""
    path = Path(text).expanduser()
    if not path.exists():
        raise UserError(f"{text}: no such file")
    if not path.is_file():
        raise UserError(f"{text}: not a file")
    if not os.access(path, os.R_OK):
        raise UserError(f"{text}: not readable (permission denied)")
    info = _probe_video(path, text)
    return Source(text, path.resolve(), None, sha256_file(path), info,
                  rotation=display_rotation(path))


@dataclass(frozen=True)
class DownloadSettings:
    """The keys of the `download` params section a whole-video download uses."""

    format: str = "bv*[height<=360]+ba/b[height<=360]/b"
    retries: int = 3
    backoff_base: float = 5.0
    backoff_max: float = 120.0
    timeout: float = 30.0
    cookies_file: str | None = None
    deadline: float = 900.0  # seconds for the whole download, every attempt and wait included

    @classmethod
    def from_section(cls, section: dict[str, Any] | None) -> DownloadSettings:
        section = section or {}
        default = cls()
        values = {k: section.get(k, getattr(default, k)) for k in default.__dataclass_fields__}
        try:
            out = cls(format=str(values["format"]), retries=int(values["retries"]),
                      backoff_base=float(values["backoff_base"]),
                      backoff_max=float(values["backoff_max"]),
                      timeout=float(values["timeout"]), cookies_file=values["cookies_file"],
                      deadline=float(values["deadline"]))
        except (TypeError, ValueError) as exc:
            raise UserError(f"params download: {exc}") from exc
        if out.cookies_file is not None and not Path(out.cookies_file).is_file():
            raise UserError(f"params download.cookies_file: {out.cookies_file} is not a file")
        if not 0 < out.deadline <= 86_400:
            raise UserError(f"params download.deadline: must be > 0 and at most 86400 seconds, "
                            f"got {out.deadline:g}")
        return out


def download_key(url: str, fmt: str) -> str:
    """File stem of a URL's download: 11 hex characters (a valid id for the yt-dlp helpers)."""
    return hashlib.sha256(f"{url}\n{fmt}".encode()).hexdigest()[:11]


def _reusable(target: Path, record: Path, url: str, fmt: str) -> str | None:
    """The recorded sha256 when the earlier download of this URL is intact, else None."""
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        if data.get("url") != url or data.get("format") != fmt:
            return None
        if target.stat().st_size != int(data["bytes"]):
            return None
        return str(data["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _fetch_whole(url: str, name: str, work: Path, settings: DownloadSettings
                 ) -> tuple[Path, float | None]:
    """One attempt: the whole video into `work` with the download stage's yt-dlp options.
    Returns the mp4 and the duration the site states (if any)."""
    from repurpose.download import ytdlp

    yset = ytdlp.YtdlpSettings(format=settings.format, timeout=settings.timeout,
                               cookies_file=settings.cookies_file)
    fetched = ytdlp.fetch_whole(url, name, work, yset)
    return fetched.path, fetched.source_duration


def download(url: str, folder: Path, settings: DownloadSettings) -> tuple[Path, str, str]:
    """The whole video at `url` as `<folder>/<key>.mp4`: (path, sha256, "fetched" | "reused")."""
    from repurpose.download.errors import (
        TransientDownloadError,
        classify_exception,
        retry_delay,
    )
    from repurpose.download.sandbox import run_with_deadline
    from repurpose.download.verify import DURATION_TOLERANCE_S, verify_media
    from repurpose.download.ytdlp import clear_dir

    name = download_key(url, settings.format)
    target, record = folder / f"{name}.mp4", folder / f"{name}.json"
    sha = _reusable(target, record, url, settings.format)
    if sha is not None:
        return target, sha, "reused"
    work = folder / PARTIAL / name
    attempt = 0
    began = time.monotonic()
    try:
        while True:
            attempt += 1
            clear_dir(work)
            work.mkdir(parents=True, exist_ok=True)
            left = settings.deadline - (time.monotonic() - began)
            if left <= 0:
                raise UserError(f"{url}: no complete download within download.deadline="
                                f"{settings.deadline:g} s ({attempt - 1} attempt(s))")
            try:  # one attempt in its own process group, killed at the deadline
                path, stated = run_with_deadline(_fetch_whole, (url, name, work, settings),
                                                 left, name)
                info = verify_media(path, expected=None)
                if stated is not None and abs(info.duration - stated) > DURATION_TOLERANCE_S:
                    raise TransientDownloadError(
                        f"downloaded file lasts {info.duration:.2f} s, the site says "
                        f"{stated:.2f} s (truncated download)", "truncated")
                break
            except Exception as exc:  # noqa: BLE001 - every failure is classified
                failure = classify_exception(exc)
                notes = " | ".join(getattr(exc, "__notes__", ()))
            message = failure.message  # as the download stage: notes only when unclassified
            if notes and failure.category == "unknown" and notes not in message:
                message = f"{message} | {notes}"
            if failure.permanent or failure.category in NO_RETRY or attempt > settings.retries:
                raise UserError(f"{url}: cannot download a video from this URL "
                                f"({failure.category}): {message}"[:1500])
            delay = retry_delay(failure, attempt, settings.backoff_base, settings.backoff_max)
            if time.monotonic() - began + delay >= settings.deadline:
                raise UserError(f"{url}: cannot download a video from this URL within "
                                f"download.deadline={settings.deadline:g} s ({failure.category}):"
                                f" {message}"[:1500])
            log.info("%s: attempt %d failed (%s), retrying in %.1f s", url, attempt,
                     failure.category, delay)
            time.sleep(delay)
        sha = sha256_file(path)
        size = path.stat().st_size
        os.replace(path, target)
        io.write_json(record, {"url": url, "format": settings.format, "sha256": sha,
                               "bytes": size, "attempts": attempt})
    finally:
        clear_dir(work)
        _remove_if_empty(folder / PARTIAL, folder)
    return target, sha, "fetched"


def _remove_if_empty(*folders: Path) -> None:
    """Remove each folder that exists and is empty (work folders of a failed download)."""
    for path in folders:
        with contextlib.suppress(OSError):
            path.rmdir()


def url_source(url: str, work_dir: Path, settings: DownloadSettings) -> Source:
    """Download (or reuse) the whole video at `url` and check it."""
    path, sha, how = download(url, Path(work_dir).resolve() / DOWNLOADS, settings)
    info = _probe_video(path, url)
    return Source(url, path.resolve(), url, sha, info, downloaded=how,
                  rotation=display_rotation(path))


def resolve_source(text: str, work_dir: Path, download_section: dict[str, Any] | None) -> Source:
    """The input as a local, readable video file (downloading a URL first)."""
    if is_url(text):
        return url_source(text, work_dir, DownloadSettings.from_section(download_section))
    return local_source(text)
