"""Stage `download`: bring the needed time range of every video to disk, with a ledger.

    repurpose download --videos data/prepared/videos.parquet --out data/videos \\
        [--local-dir data/sample_videos] [--retry-failed]

Reads the videos table (one row per source video with the absolute ranges it needs) and params
section `download`; writes `<out>/<youtube_id>.mp4` covering the hull [start, end] of each
video's ranges, and the ledger `<out>/ledger.parquet` (see repurpose/download/ledger.py), whose
`source_offset` says at which absolute source second each file starts (with `cut: copy`, the
first packet time: the keyframe at or before the range, usually fractional).

Params (section `download`, all required):
  source              youtube | url | local: where videos come from
  url_template        URL with {youtube_id} for source url (any site yt-dlp's generic
                      extractor handles), else null
  format              yt-dlp format selector; merged to mp4
  cut                 copy: keyframe-aligned stream copy, no re-encode (the file starts at the
                      keyframe before the range) | reencode: exact cut, x264 veryfast
  retries             extra attempts per video for transient failures, within one run
  backoff_base        seconds before the first retry; doubles each retry, with jitter
  backoff_max         cap on one backoff wait; a longer Retry-After leaves the video for the
                      next run
  timeout             socket / ffmpeg read timeout, seconds
  rate_limit_seconds  minimum seconds between request starts, over all workers on the machine
  cookies_file        Netscape cookies file for yt-dlp (null = none)
  max_failed_fraction the stage exits non-zero only if more than this share of videos failed
  deadline            seconds one video may take over all its attempts and backoff waits;
                      the attempt in flight is killed then (its ffmpeg too)

Stopping: SIGINT/SIGTERM stop every child process (ffmpeg included) and end the stage at
once (`repurpose.signals`); what is in flight is removed at the next start.

Resumable: every finished video's row is written at once under `<out>/.records/`; a video
whose ok row still matches its file (size + sha256) and range is not fetched again; videos that
failed permanently are not retried unless `--retry-failed`; transient failures are retried on
the next run. Videos no longer in the table are dropped from the ledger; their files and
records are left on disk (so re-adding a video with the same range costs nothing).
Run it standalone (no Prefect, serial unless `--task-runner threads`):
`python -m stages.download --help`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import sys
import time
from pathlib import Path

from repurpose import io
from repurpose.download import ledger as L
from repurpose.download.job import (
    PARTIAL_DIR,
    SECTION,
    DownloadConfig,
    Outcome,
    failed_outcome,
    run_job,
)
from repurpose.download.plan import plan
from repurpose.download.summary import exit_code, summary_lines
from repurpose.media import ffmpeg_exe
from repurpose.params import load_section
from repurpose.runner import Mapper
from repurpose.signals import stop_children_on_signal

log = logging.getLogger(__name__)

LEDGER_REFRESH_S = 30.0  # rewrite ledger.parquet at most this often while a run goes on


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI arguments of the stage."""
    parser.add_argument(
        "--videos",
        default="data/prepared/videos.parquet",
        help="videos table written by `prepare` (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        default="data/videos",
        help="folder for <youtube_id>.mp4 and ledger.parquet (default: %(default)s)",
    )
    parser.add_argument(
        "--local-dir",
        default=None,
        help="folder of <youtube_id>.<ext> files, for download.source: local",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="also retry videos that failed permanently in an earlier run",
    )


def main(args: argparse.Namespace, mapper: Mapper) -> int:
    """Download every video of the table through `mapper`; write the ledger; print a summary."""
    # absolute paths: per-video work may run in other processes (Dask workers)
    local_dir = str(Path(args.local_dir).resolve()) if args.local_dir else None
    cfg = DownloadConfig.from_section(load_section(args.params, SECTION), local_dir)
    ffmpeg_exe()  # a clear error now rather than one per video
    out = Path(args.out).resolve()
    started = time.monotonic()
    with io.folder_lock(out, "download run"), stop_children_on_signal("download"):
        # leftovers of a killed run: attempt folders, half-written ledger, records and files
        shutil.rmtree(out / PARTIAL_DIR, ignore_errors=True)
        io.remove_stale_tmp(out)
        io.remove_stale_tmp(out / L.RECORDS_DIR)
        jobs, skipped = plan(Path(args.videos), out, cfg, args.retry_failed)
        ledger_path = out / L.LEDGER_NAME
        rows: dict[str, L.LedgerRow] = dict(skipped)
        rows.update({j.youtube_id: j.previous for j in jobs if j.previous is not None})
        outcomes: list[Outcome] = []
        last_write = time.monotonic()
        progress = _progress(len(jobs))
        try:
            for job, result in mapper(run_job, jobs, key=lambda j: j.youtube_id):
                if isinstance(result, BaseException):
                    log.error("download: %s: internal error: %r", job.youtube_id, result)
                    result = failed_outcome(job, result)
                outcomes.append(result)
                rows[job.youtube_id] = result.row
                if not result.row.ok and result.action != "kept":
                    log.warning(
                        "download: %s %s (%s): %s",
                        job.youtube_id,
                        result.row.status,
                        result.row.error_category,
                        result.row.error_message[:300],
                    )
                progress.update(1)
                if time.monotonic() - last_write > LEDGER_REFRESH_S:
                    L.write_ledger(ledger_path, list(rows.values()))
                    last_write = time.monotonic()
        finally:
            progress.close()
            # Only videos of the current table; a killed run still leaves the records.
            current = {j.youtube_id for j in jobs} | set(skipped)
            L.write_ledger(ledger_path, [r for k, r in rows.items() if k in current])
            with contextlib.suppress(OSError):
                (out / PARTIAL_DIR).rmdir()
    final = [rows[k] for k in sorted(rows) if k in current]
    shown = Path(args.out) / L.LEDGER_NAME
    for line in summary_lines(final, outcomes, time.monotonic() - started, shown):
        print(line)
    return exit_code(final, cfg.max_failed_fraction)


def _progress(total: int):  # noqa: ANN202 - a tqdm bar or a stand-in
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover

        class _Null:
            def update(self, n: int) -> None: ...
            def close(self) -> None: ...

        return _Null()
    return tqdm(total=total, desc="download", unit="video", disable=None, dynamic_ncols=True)


if __name__ == "__main__":  # `python -m stages.download ...`: no Prefect, serial unless told
    from repurpose.stage_registry import run_standalone

    sys.exit(run_standalone("download", add_arguments, main))
