"""One video's download, start to finish: `run_job(job) -> Outcome`.

This is the function the stage maps over videos (threads, Prefect tasks or Dask workers), so
it is module-level, takes one picklable `Job`, never raises for a per-video failure, and
persists its own ledger record before returning. Steps:

1. reuse: the previous record is ok for the same source and time range, and the file on disk
   still has its size and sha256 -> nothing is fetched;
2. keep: the previous record failed permanently (same source) -> not retried unless asked;
3. fetch with retries (`retry.py`, the loop `repurpose clip` uses too): each attempt writes
   under `<out>/.partial/<id>/`, the result is probed and decoded and checked to cover the
   range, then renamed to `<out>/<id>.mp4` and recorded. Permanent failures stop at once;
   transient ones back off exponentially with jitter (Retry-After honoured; a rate limit or bot
   check also pauses the other workers). Attempts and backoff waits together get
   `download.deadline` seconds per video: each attempt runs in a child process group that is
   killed when the time is up (`sandbox.py`), whatever the fetch path (yt-dlp, its ffmpeg, the
   local cut, the probe), and the video is left for the next run as a transient `deadline`
   failure.

The cut is `download.cut` (`cut.py`): a keyframe-aligned stream copy by default, whose file
starts at the keyframe before the range (`source_offset`, the first packet time, is recorded),
or an exact re-encode.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repurpose.download import ledger as L
from repurpose.download.cut import CUTS
from repurpose.download.errors import (
    DownloadFailure,
    PermanentDownloadError,
    TransientDownloadError,
    classify_exception,
)
from repurpose.download.local import cut_local, find_local
from repurpose.download.ratelimit import RateLimiter
from repurpose.download.retry import GaveUp, limiter_key_for_url, with_retries
from repurpose.download.verify import (
    DURATION_TOLERANCE_S,
    expected_duration,
    verify_media,
)
from repurpose.download.ytdlp import (
    YtdlpSettings,
    fetch_section,
    remote_duration,
    source_url,
)
from repurpose.io import sha256_file
from repurpose.media import MediaInfo
from repurpose.params import ParamsError, config_from_section
from repurpose.splits.schema import check_id

log = logging.getLogger(__name__)

SECTION = "download"
SOURCES = ("youtube", "url", "local")
PARTIAL_DIR = ".partial"
_EXTRACTORS = {"youtube": "Youtube", "url": "Generic"}


@dataclass(frozen=True)
class DownloadConfig:
    """The `download` params section (see stages/download.py for each key's meaning)."""

    source: str = "local"
    url_template: str | None = None
    format: str = "bv*[height<=360]+ba/b[height<=360]/b"
    retries: int = 3
    backoff_base: float = 5.0
    backoff_max: float = 120.0
    timeout: float = 30.0
    rate_limit_seconds: float = 0.0
    cookies_file: str | None = None
    max_failed_fraction: float = 0.2
    deadline: float = 900.0
    cut: str = "copy"
    local_dir: str | None = None

    @classmethod
    def from_section(
        cls, section: Mapping[str, Any], local_dir: str | None = None, check_source: bool = True
    ) -> DownloadConfig:
        """Read and check every key of the `download` params section (all are required, no
        other is allowed). `check_source` False skips the checks of `source`, `url_template`
        and the local folder (`repurpose clip` fetches the URL it is given)."""
        cfg = config_from_section(cls, dict(section) if isinstance(section, Mapping) else section,
                                  SECTION, local_dir=local_dir)
        if check_source:
            cfg.check_source()
        cfg.check()
        return cfg

    def check_source(self) -> None:
        """Raise ParamsError when `source` cannot be fetched as configured."""
        where = f"params {SECTION}"
        if self.source not in SOURCES:
            raise ParamsError(f"{where}.source: {self.source!r} is not one of {', '.join(SOURCES)}")
        if self.source == "url" and (
            not self.url_template or "{youtube_id}" not in self.url_template
        ):
            raise ParamsError(
                f"{where}.url_template: must contain '{{youtube_id}}' when source is url"
            )
        if self.source == "local" and not self.local_dir:
            raise ParamsError(f"{where}.source is 'local': pass --local-dir with the video files")
        if self.local_dir and self.source == "local" and not Path(self.local_dir).is_dir():
            raise ParamsError(f"--local-dir {self.local_dir}: no such folder")

    def check(self) -> None:
        """Raise ParamsError for values that cannot work (other than the source's)."""
        where = f"params {SECTION}"
        if self.cut not in CUTS:
            raise ParamsError(f"{where}.cut: {self.cut!r} is not one of {', '.join(CUTS)}")
        if not self.format.strip():
            raise ParamsError(f"{where}.format: empty")
        for name in ("retries", "backoff_base", "backoff_max", "rate_limit_seconds"):
            if getattr(self, name) < 0:
                raise ParamsError(f"{where}.{name}: must be >= 0")
        if self.timeout <= 0:
            raise ParamsError(f"{where}.timeout: must be > 0 seconds")
        if not 0 < self.deadline <= 86400:
            raise ParamsError(f"{where}.deadline: must be > 0 and at most 86400 seconds")
        if not 0 <= self.max_failed_fraction <= 1:
            raise ParamsError(f"{where}.max_failed_fraction: must be between 0 and 1")
        if self.cookies_file is not None and not Path(self.cookies_file).is_file():
            raise ParamsError(f"{where}.cookies_file: {self.cookies_file} is not a file")

    def settings(self) -> YtdlpSettings:
        """The yt-dlp knobs of this config (the source names the extractor: YouTube's, or the
        generic one for `url`, as documented for url_template)."""
        return YtdlpSettings(format=self.format, timeout=self.timeout,
                             cookies_file=self.cookies_file, cut=self.cut,
                             extractor=_EXTRACTORS.get(self.source))

    def limiter_key(self) -> str:
        """Which requests share a rate limit: all YouTube ones on this machine, or one host."""
        if self.source == "url":
            return limiter_key_for_url(self.url_template or "")
        return self.source


@dataclass(frozen=True)
class Job:
    """One video to bring to disk."""

    youtube_id: str
    start: float  # hull start, absolute source seconds
    end: float  # hull end
    out_dir: str
    config: DownloadConfig
    previous: L.LedgerRow | None = None
    retry_failed: bool = False


@dataclass(frozen=True)
class Outcome:
    """What happened to one video: its ledger row and how it got there."""

    row: L.LedgerRow
    action: str  # fetched | reused | kept (earlier permanent failure) | failed


def run_job(job: Job) -> Outcome:
    """Reuse, keep or fetch one video; persist its record; never raise for a video failure."""
    vid = check_id(job.youtube_id)
    out = Path(job.out_dir)
    prev = job.previous
    if prev is not None and _reusable(prev, job, out):
        return Outcome(prev, "reused")
    if (
        prev is not None
        and prev.status == L.FAILED_PERMANENT
        and prev.source == job.config.source
        and not job.retry_failed
    ):
        return Outcome(prev, "kept")
    row = _fetch_with_retries(job, vid, out)
    L.write_record(out, row)
    return Outcome(row, "fetched" if row.ok else "failed")


def _reusable(prev: L.LedgerRow, job: Job, out: Path) -> bool:
    """The previous ok download matches this job and its file is intact (size and sha256)."""
    if not (
        prev.ok
        and prev.source == job.config.source
        and prev.cut == job.config.cut
        and abs(prev.requested_start - job.start) < 1e-6
        and abs(prev.requested_end - job.end) < 1e-6
        and prev.file == L.video_file_name(job.youtube_id)
    ):
        return False
    path = out / prev.file
    try:
        if path.stat().st_size != prev.bytes:
            log.warning(
                "%s: %s changed size since it was verified; fetching again", job.youtube_id, path
            )
            return False
    except OSError:
        return False
    if sha256_file(path) != prev.sha256:
        log.warning(
            "%s: %s changed content since it was verified; fetching again", job.youtube_id, path
        )
        return False
    return True


def _fetch_with_retries(job: Job, vid: str, out: Path) -> L.LedgerRow:
    cfg = job.config
    limiter = (
        RateLimiter(cfg.rate_limit_seconds, cfg.limiter_key()) if cfg.source != "local" else None
    )
    work = out / PARTIAL_DIR / vid

    def finish(result: tuple[Path, MediaInfo, float], attempts: int) -> L.LedgerRow:
        return _finish(job, vid, out, *result, attempts)

    try:
        return with_retries(cfg, vid, work, _fetch_and_verify, (job, vid, str(work)), finish,
                            limiter)
    except GaveUp as gave_up:
        return _failed_row(job, gave_up.failure, gave_up.attempts, out)


def _fetch_and_verify(job: Job, vid: str, work_dir: str) -> tuple[Path, MediaInfo, float]:
    """One try (run in the attempt process): fetch or cut into `work_dir`, then verify it.
    Returns the file, what it holds, and the absolute source second of its t = 0."""
    cfg = job.config
    work = Path(work_dir)
    if cfg.source == "local":
        if not cfg.local_dir:
            raise PermanentDownloadError("download.source is 'local' but no --local-dir", "config")
        cut = cut_local(find_local(cfg.local_dir, vid), work / f"{vid}.mp4", job.start, job.end,
                        method=cfg.cut)
        path, first, source_duration = cut.path, cut.start, cut.source_duration
        info = verify_media(path, expected_duration(first, job.end, source_duration))
    else:
        url = source_url(cfg.source, vid, cfg.url_template)
        fetched = fetch_section(url, vid, job.start, job.end, work, cfg.settings())
        path, first, source_duration = fetched.path, fetched.start, fetched.source_duration
        info = verify_media(path, expected=None)  # decodable; length checked below
        expected = expected_duration(first, job.end, source_duration)
        if (
            info.duration < expected - DURATION_TOLERANCE_S
            and source_duration is None
            and fetched.media_url
        ):
            # Short: truncated, or the source ends before the range? Ask the source's header.
            source_duration = remote_duration(fetched.media_url, fetched.http_headers, cfg.timeout)
            expected = expected_duration(first, job.end, source_duration)
        _check_length(info, expected, source_duration)
    _check_start(first, job.start)
    return path, info, first


def _check_start(first: float, start: float) -> None:
    """The file must not begin after the range it is for (a copy begins at or before it)."""
    if first > start + DURATION_TOLERANCE_S:
        raise TransientDownloadError(
            f"downloaded file starts at {first:.3f} s, after the needed range's start "
            f"{start:.3f} s", "misaligned")


def _check_length(info: MediaInfo, expected: float, source_duration: float | None) -> None:
    if abs(info.duration - expected) <= DURATION_TOLERANCE_S:
        return
    known = "unknown" if source_duration is None else f"{source_duration:.2f} s"
    raise TransientDownloadError(
        f"downloaded file lasts {info.duration:.2f} s, expected {expected:.2f} s "
        f"(source length {known}): truncated or incomplete download",
        "truncated",
    )


def _finish(
    job: Job, vid: str, out: Path, path: Path, info: MediaInfo, first: float, attempt: int
) -> L.LedgerRow:
    """Hash, rename into place (atomic), and build the ok row."""
    digest = sha256_file(path)
    size = path.stat().st_size
    name = L.video_file_name(vid)
    os.replace(path, out / name)
    return L.LedgerRow(
        youtube_id=vid,
        status=L.OK,
        attempts=attempt,
        bytes=size,
        duration=round(info.duration, 3),
        width=info.width,
        height=info.height,
        fps=round(info.fps, 3),
        has_audio=info.has_audio,
        sha256=digest,
        source_offset=first,
        requested_start=job.start,
        requested_end=job.end,
        source=job.config.source,
        cut=job.config.cut,
        file=name,
    )


def _failed_row(job: Job, failure: DownloadFailure, attempts: int, out: Path) -> L.LedgerRow:
    """The failed row. A stale file of this video is removed: the ledger no longer vouches
    for it."""
    (out / L.video_file_name(job.youtube_id)).unlink(missing_ok=True)
    return L.LedgerRow(
        youtube_id=job.youtube_id,
        status=L.FAILED_PERMANENT if failure.permanent else L.FAILED_TRANSIENT,
        error_category=failure.category,
        error_message=failure.message,
        attempts=attempts,
        source_offset=job.start,
        requested_start=job.start,
        requested_end=job.end,
        source=job.config.source,
        cut=job.config.cut,
    )


def failed_outcome(job: Job, exc: BaseException) -> Outcome:
    """The outcome of a job whose function itself raised (a bug, or a lost worker): recorded
    as a transient `internal` failure so that the next run tries again. Files are left alone."""
    message = classify_exception(exc).message
    row = L.LedgerRow(
        youtube_id=job.youtube_id,
        status=L.FAILED_TRANSIENT,
        error_category="internal",
        error_message=f"{type(exc).__name__}: {message}"[:1000],
        source_offset=job.start,
        requested_start=job.start,
        requested_end=job.end,
        source=job.config.source,
        cut=job.config.cut,
    )
    with contextlib.suppress(OSError):
        L.write_record(job.out_dir, row)
    return Outcome(row, "failed")
