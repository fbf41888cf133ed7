"""Fetching one time range of one video through the yt-dlp Python API.

yt-dlp downloads a section (`download_ranges`) with ffmpeg (`-ss`/`-t` on the media URLs). By
`download.cut`: `copy` (default) stream-copies from the keyframe at or before the range start,
with `-copyts`, so the file keeps the source's timestamps; `rebase_to_zero` (cut.py) then reads
its first packet time (the ledger's `source_offset`) and rewrites it to start at 0. `reencode`
sets `force_keyframes_at_cuts`, so the cut is exact (x264 veryfast, `encode.py`) and starts at
the range start. ffmpeg is the one `repurpose.media.ffmpeg_exe()` finds (imageio-ffmpeg's
binary, or a system one). Its file name is versioned (`ffmpeg-linux-x86_64-v9.0.2`); yt-dlp
accepts that path as `ffmpeg_location`, but its check "can ffmpeg download sections?" builds its
helper without the YoutubeDL params and reads a context variable instead (the CLI sets it from
`--ffmpeg-location`), so we set both, for the duration of the call.

A copied section's first packet time is read in the source URL's own seconds, assumed to start
at 0 (YouTube's files do; a generic URL whose container starts later would shift it).
"""
from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repurpose.download.cut import rebase_to_zero
from repurpose.download.encode import encode_args
from repurpose.download.errors import (
    PermanentDownloadError,
    TransientDownloadError,
    classify_exception,
)
from repurpose.media import ffmpeg_exe, run_ffmpeg
from repurpose.splits.schema import check_id

YOUTUBE_URL = "https://www.youtube.com/watch?v={youtube_id}"
DEFAULT_FORMAT = "bv*[height<=360]+ba/b[height<=360]/b"


@dataclass(frozen=True)
class YtdlpSettings:
    """The yt-dlp knobs the stage exposes as params."""

    format: str = DEFAULT_FORMAT
    timeout: float = 30.0  # socket timeout (s), also ffmpeg's read/write timeout
    cookies_file: str | None = None
    cut: str = "copy"  # copy (keyframe-aligned stream copy) | reencode (exact cut)
    # yt-dlp extractor key (Youtube, Generic), None = let yt-dlp match the URL against all of
    # them (~1,900 regexes compiled in every fresh attempt process: about 0.5 s of CPU)
    extractor: str | None = None


@dataclass(frozen=True)
class Fetched:
    """A downloaded section and what yt-dlp knew about its source."""

    path: Path
    start: float  # absolute source second of the file's t = 0 (0 for a whole video)
    source_duration: float | None  # seconds, when the site says
    media_url: str | None  # the (first) media URL, to probe the source length if needed
    http_headers: dict[str, str]


def source_url(source: str, youtube_id: str, url_template: str | None = None) -> str:
    """The URL yt-dlp is given for a video, by `download.source`."""
    vid = check_id(youtube_id)
    if source == "youtube":
        return YOUTUBE_URL.format(youtube_id=vid)
    if source == "url":
        if not url_template or "{youtube_id}" not in url_template:
            raise ValueError("download.url_template must contain '{youtube_id}'")
        return url_template.format(youtube_id=vid)
    raise ValueError(f"source {source!r} is not fetched with yt-dlp")


class _Collector:
    """A yt-dlp logger that keeps warnings and errors instead of printing them."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def debug(self, msg: str) -> None:
        return

    def info(self, msg: str) -> None:
        return

    def warning(self, msg: str) -> None:
        self.messages.append(msg)

    def error(self, msg: str) -> None:
        self.messages.append(msg)


@contextlib.contextmanager
def _ffmpeg_for_ytdlp(ffmpeg: str) -> Iterator[None]:
    """Make yt-dlp's ffmpeg availability checks see `ffmpeg` (in this thread/context only)."""
    from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

    token = FFmpegPostProcessor._ffmpeg_location.set(ffmpeg)
    try:
        yield
    finally:
        FFmpegPostProcessor._ffmpeg_location.reset(token)


def ydl_options(
    settings: YtdlpSettings,
    work_dir: Path,
    file_stem: str,
    start: float,
    end: float,
    ffmpeg: str,
    logger: Any = None,
) -> dict[str, Any]:
    """The YoutubeDL params for one section download into `work_dir/<file_stem>.<ext>`."""
    import yt_dlp

    exact = settings.cut == "reencode"
    opts: dict[str, Any] = {
        "format": settings.format,
        "merge_output_format": "mp4",
        "outtmpl": {"default": str(work_dir / f"{check_id(file_stem)}.%(ext)s")},
        "paths": {"home": str(work_dir), "temp": str(work_dir)},
        "download_ranges": yt_dlp.utils.download_range_func(None, [(start, end)]),
        "force_keyframes_at_cuts": exact,
        "ffmpeg_location": ffmpeg,
        # ffmpeg reads the media URLs itself: bound each read/write, or a stalled server hangs it
        "external_downloader_args": {
            "ffmpeg_i": ["-rw_timeout", str(int(settings.timeout * 1e6)), "-threads", "1",
                         # copy: keep the source's timestamps, so the first one can be read
                         *([] if exact else ["-copyts"])],
            # reencode: x264 veryfast + AAC, the exact cut; copy: yt-dlp's `-c copy`
            "ffmpeg_o": encode_args(ffmpeg) if exact else [],
        },
        "socket_timeout": settings.timeout,
        # our per-video loop is the one retry layer: attempts in the ledger are real attempts
        "retries": 0,
        "fragment_retries": 0,
        "extractor_retries": 0,
        "noplaylist": True,
        "playlist_items": "1",
        "overwrites": True,
        "continuedl": False,
        "nopart": False,
        "noprogress": True,
        "quiet": True,
        "no_warnings": False,
        "color": {"stdout": "never", "stderr": "never"},
        "logger": logger,
    }
    if settings.cookies_file:
        opts["cookiefile"] = settings.cookies_file
    return opts


def _first_video_info(info: dict[str, Any]) -> dict[str, Any]:
    if info.get("_type") in ("playlist", "multi_video"):
        entries = [e for e in (info.get("entries") or []) if e]
        if not entries:
            raise PermanentDownloadError("the URL is a playlist without videos", "not_a_video")
        return entries[0]
    return info


def fetch_section(
    url: str, youtube_id: str, start: float, end: float, work_dir: Path, settings: YtdlpSettings
) -> Fetched:
    """Download [start, end] (source seconds) of `url` into `work_dir`; one attempt.

    Raises DownloadFailure (classified) on any failure. The file returned is an mp4 in
    `work_dir`, not yet verified.
    """
    return _fetch(url, youtube_id, work_dir, settings, (start, end))


def fetch_whole(url: str, file_stem: str, work_dir: Path, settings: YtdlpSettings) -> Fetched:
    """Download the whole video at `url` into `work_dir/<file_stem>.mp4` (no cut, no re-encode);
    one attempt, failures classified as for `fetch_section`. `file_stem` is checked like a
    youtube_id (11 characters of [A-Za-z0-9_-]), as every file name this code writes."""
    return _fetch(url, file_stem, work_dir, settings, None)


def _fetch(url: str, file_stem: str, work_dir: Path, settings: YtdlpSettings,
           section: tuple[float, float] | None) -> Fetched:
    import yt_dlp

    ffmpeg = ffmpeg_exe()
    logger = _Collector()
    start, end = section or (0.0, 0.0)
    opts = ydl_options(settings, work_dir, file_stem, start, end, ffmpeg, logger)
    if section is None:  # the whole video: no range, no cut
        for key in ("download_ranges", "force_keyframes_at_cuts"):
            opts.pop(key)
        args = opts["external_downloader_args"]
        args.pop("ffmpeg_o")
        args["ffmpeg_i"] = [a for a in args["ffmpeg_i"] if a != "-copyts"]
    try:
        with _ffmpeg_for_ytdlp(ffmpeg), yt_dlp.YoutubeDL(opts) as ydl:
            meta = _first_video_info(ydl.extract_info(url, download=False, process=False,
                                                      ie_key=settings.extractor))
            duration = _float_or_none(meta.get("duration"))
            if section is not None and duration is not None and start >= duration:
                raise PermanentDownloadError(
                    f"the needed range starts at {start:g} s but the video lasts {duration:g} s",
                    "out_of_range",
                )
            if meta.get("is_live") or meta.get("live_status") in ("is_live", "is_upcoming"):
                raise TransientDownloadError("the video is live or upcoming", "live")
            info = _first_video_info(ydl.process_ie_result(meta, download=True))
        path = _downloaded_path(info, work_dir, file_stem)
        first = start if section is not None else 0.0
        if section is not None and settings.cut == "copy":  # starts at a keyframe: read it
            path, first = _rebased(path)
        else:
            path = _as_mp4(path)
    except Exception as exc:  # noqa: BLE001 - every failure is classified
        failure = classify_exception(exc)
        if logger.messages and failure.category == "unknown":
            failure.message = f"{failure.message} | {' | '.join(logger.messages[-3:])}"[:1000]
        raise failure from exc
    formats = info.get("requested_formats") or [info]
    media_url = formats[0].get("url") if formats else None
    headers = formats[0].get("http_headers") or info.get("http_headers") or {}
    return Fetched(
        path=path,
        start=first,
        source_duration=duration,  # as the extractor states it, before sections rewrite it
        media_url=media_url if isinstance(media_url, str) else None,
        http_headers={str(k): str(v) for k, v in headers.items()},
    )


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _downloaded_path(info: dict[str, Any], work_dir: Path, file_stem: str) -> Path:
    for item in info.get("requested_downloads") or []:
        fp = item.get("filepath") or item.get("_filename")
        if fp and Path(fp).is_file():
            return Path(fp)
    candidates = [
        p
        for p in work_dir.glob(f"{check_id(file_stem)}.*")
        if p.is_file() and not p.name.endswith((".part", ".ytdl", ".temp"))
    ]
    if len(candidates) == 1:
        return candidates[0]
    raise TransientDownloadError("yt-dlp reported success but wrote no file", "empty_download")


def _rebased(path: Path) -> tuple[Path, float]:
    """The copied section as an mp4 starting at 0, and its first packet time in the source."""
    target = path.with_name(f"{path.stem}.rebased.mp4")
    first = rebase_to_zero(path, target)
    return target, first


def _as_mp4(path: Path) -> Path:
    """The file as an mp4 (remuxed without re-encoding when yt-dlp chose another container)."""
    if path.suffix.lower() == ".mp4":
        return path
    target = path.with_name(f"{path.stem}.remux.mp4")
    run_ffmpeg(["-i", str(path), "-map", "0", "-c", "copy", "-f", "mp4", str(target)])
    path.unlink(missing_ok=True)
    return target


def remote_duration(url: str, headers: dict[str, str], timeout: float) -> float | None:
    """The length a media URL's container header states (PyAV), or None if unreadable."""
    import av

    options = {"rw_timeout": str(int(timeout * 1e6))}
    if headers and url.startswith(("http://", "https://")):
        options["headers"] = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    try:
        with av.open(url, options=options, timeout=timeout) as container:
            if container.duration:
                return container.duration / 1_000_000
            best = 0.0
            for stream in container.streams:
                if stream.duration is not None and stream.time_base is not None:
                    best = max(best, float(stream.duration * stream.time_base))
            return best or None
    except Exception:  # noqa: BLE001 - "unknown" is an answer
        return None


def clear_dir(path: Path) -> None:
    """Remove a work folder and everything in it."""
    shutil.rmtree(path, ignore_errors=True)
