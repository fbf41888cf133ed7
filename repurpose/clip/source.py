"""The input video: a local file used in place, or an http(s) URL downloaded whole.

A URL goes through the download stage's code: its typed `download` params
(`DownloadConfig`, the same strict reader; `source` and `url_template` do not apply), its yt-dlp
options, ffmpeg wiring, error classification and file verification (`repurpose.download.ytdlp`),
and its retry loop (`repurpose.download.retry`: backoff, Retry-After, the shared rate limiter,
`download.deadline`), without its section cut: the whole video at `download.format`, remuxed
to mp4 when yt-dlp chose another container. The file lands in `<work>/downloads/<stem>.mp4`
(stem: sha256 of URL + format) with a small record beside it, so a rerun with other export
options reuses it instead of fetching again. Anything that is not a video (an HTML page, a
404) is one clear error naming the URL.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repurpose import io
from repurpose.errors import UserError
from repurpose.io import sha256_file
from repurpose.media import MediaError, MediaInfo, probe
from repurpose.pervideo.inputs import VideoInput

if TYPE_CHECKING:
    from repurpose.download.job import DownloadConfig

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


def download_stem(url: str, fmt: str) -> str:
    """File stem of a URL's download: 11 hex characters of sha256(URL, format). It stands where
    the download code puts a youtube_id, so it has that shape (its path checks accept it)."""
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


def _fetch_whole(url: str, stem: str, work: str, cfg: DownloadConfig) -> Path:
    """One attempt (in the attempt process): the whole video into `work` with the download
    stage's yt-dlp options, verified decodable and as long as the site says."""
    from repurpose.download import ytdlp
    from repurpose.download.errors import TransientDownloadError
    from repurpose.download.verify import DURATION_TOLERANCE_S, verify_media

    # any site: yt-dlp matches the URL to its extractor (download.source does not apply)
    settings = dataclasses.replace(cfg.settings(), extractor=None)
    fetched = ytdlp.fetch_whole(url, stem, Path(work), settings)
    info = verify_media(fetched.path, expected=None)
    stated = fetched.source_duration
    if stated is not None and abs(info.duration - stated) > DURATION_TOLERANCE_S:
        raise TransientDownloadError(f"downloaded file lasts {info.duration:.2f} s, the site "
                                     f"says {stated:.2f} s (truncated download)", "truncated")
    return fetched.path


def download(url: str, folder: Path, cfg: DownloadConfig) -> tuple[Path, str, str]:
    """The whole video at `url` as `<folder>/<stem>.mp4`: (path, sha256, "fetched" | "reused")."""
    from repurpose.download.ratelimit import RateLimiter
    from repurpose.download.retry import GaveUp, limiter_key_for_url, with_retries

    stem = download_stem(url, cfg.format)
    target, record = folder / f"{stem}.mp4", folder / f"{stem}.json"
    sha = _reusable(target, record, url, cfg.format)
    if sha is not None:
        return target, sha, "reused"

    def finish(path: Path, attempts: int) -> str:
        digest, size = sha256_file(path), path.stat().st_size
        os.replace(path, target)
        io.write_json(record, {"url": url, "format": cfg.format, "sha256": digest,
                               "bytes": size, "attempts": attempts})
        return digest

    limiter = RateLimiter(cfg.rate_limit_seconds, limiter_key_for_url(url))
    work = folder / PARTIAL / stem
    try:
        sha = with_retries(cfg, stem, work, _fetch_whole, (url, stem, str(work), cfg), finish,
                           limiter, no_retry=NO_RETRY)
    except GaveUp as gave_up:
        f = gave_up.failure
        raise UserError(f"{url}: cannot download a video from this URL ({f.category}, "
                        f"{gave_up.attempts} attempt(s)): {f.message}"[:1500]) from None
    finally:
        _remove_if_empty(folder / PARTIAL, folder)
    return target, sha, "fetched"


def _remove_if_empty(*folders: Path) -> None:
    """Remove each folder that exists and is empty (work folders of a failed download)."""
    for path in folders:
        with contextlib.suppress(OSError):
            path.rmdir()


def url_source(url: str, work_dir: Path, cfg: DownloadConfig) -> Source:
    """Download (or reuse) the whole video at `url` and check it."""
    path, sha, how = download(url, Path(work_dir).resolve() / DOWNLOADS, cfg)
    info = _probe_video(path, url)
    return Source(url, path.resolve(), url, sha, info, downloaded=how,
                  rotation=display_rotation(path))


def download_config(section: Any) -> DownloadConfig:
    """The `download` params section as the download stage reads it (every key required, no
    other allowed), without the checks of `source` (a URL input is fetched as given)."""
    from repurpose.download.job import SECTION, DownloadConfig
    from repurpose.params import ParamsError

    if section is None:
        raise ParamsError(f"params {SECTION}: missing section (a URL input is fetched with it)")
    return DownloadConfig.from_section(section, check_source=False)


def resolve_source(text: str, work_dir: Path, download: DownloadConfig | None) -> Source:
    """The input as a local, readable video file (a URL is downloaded first with `download`,
    the params' `download` section as `download_config` reads it)."""
    if is_url(text):
        if download is None:
            download = download_config(None)  # the error: a URL needs the download section
        return url_source(text, work_dir, download)
    return local_source(text)
