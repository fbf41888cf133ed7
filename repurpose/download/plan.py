"""Planning a download run: which videos need a job, which are skipped without one."""

from __future__ import annotations

import logging
from pathlib import Path

from repurpose.download import ledger as L
from repurpose.download.job import DownloadConfig, Job
from repurpose.errors import UserError
from repurpose.splits.schema import is_safe_id
from repurpose.splits.tables import read_videos_table

log = logging.getLogger(__name__)


def plan(
    videos_path: Path, out: Path, cfg: DownloadConfig, retry_failed: bool
) -> tuple[list[Job], dict[str, L.LedgerRow]]:
    """Jobs for the videos table, and rows for videos skipped without a job."""
    if not videos_path.is_file():
        raise UserError(f"{videos_path}: videos table not found (run `repurpose prepare` first)")
    try:
        videos = read_videos_table(videos_path)
    except Exception as exc:  # noqa: BLE001 - any unreadable table is the user's to fix
        raise UserError(f"{videos_path}: cannot read the videos table: {exc}") from exc
    jobs: list[Job] = []
    skipped: dict[str, L.LedgerRow] = {}
    seen: set[str] = set()
    for video in videos:
        vid = video.youtube_id
        if not is_safe_id(vid):
            # never becomes a path; reported in the ledger under a printable form
            safe = repr(vid)[:40]
            skipped[safe] = L.LedgerRow(
                youtube_id=safe,
                status=L.SKIPPED,
                error_category="invalid_id",
                error_message="youtube_id is not 11 characters of [A-Za-z0-9_-]",
                source=cfg.source,
            )
            continue
        if vid in seen:
            log.warning("download: %s appears twice in %s; using its first row", vid, videos_path)
            continue
        seen.add(vid)
        start, end = float(video.start), float(video.end)
        if not (end > start >= 0):
            skipped[vid] = L.LedgerRow(
                youtube_id=vid,
                status=L.SKIPPED,
                error_category="empty_range",
                error_message=f"needed range [{start:g}, {end:g}] is empty",
                source_offset=start,
                requested_start=start,
                requested_end=end,
                source=cfg.source,
            )
            continue
        jobs.append(
            Job(
                youtube_id=vid,
                start=start,
                end=end,
                out_dir=str(out),
                config=cfg,
                previous=L.read_record(out, vid),
                retry_failed=retry_failed,
            )
        )
    return jobs, skipped
