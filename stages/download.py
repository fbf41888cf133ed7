"""Stage `download`: bring the needed time range of every video to disk, with a ledger.

    repurpose download --videos data/prepared/videos.parquet --out data/videos \\
        [--local-dir data/sample_videos] [--retry-failed]

Reads the videos table (one row per source video with the absolute ranges it needs) and params
section `download`; writes `<out>/<youtube_id>.mp4` covering the hull [start, end] of each
video's ranges, and the ledger `<out>/ledger.parquet` (see repurpose/download/ledger.py), whose
`source_offset` says at which absolute source second each file starts.

Params (section `download`, all required):
  source              youtube | url | local: where videos come from
  url_template        URL with {youtube_id} for source url (any site yt-dlp's generic
                      extractor handles), else null
  format              yt-dlp format selector; merged/re-encoded to mp4
  retries             extra attempts per video for transient failures, within one run
  backoff_base        seconds before the first retry; doubles each retry, with jitter
  backoff_max         cap on one backoff wait; a longer Retry-After leaves the video for the
                      next run
  timeout             socket / ffmpeg read timeout, seconds
  rate_limit_seconds  minimum seconds between request starts, over all workers on the machine
  cookies_file        Netscape cookies file for yt-dlp (null = none)
  max_failed_fraction the stage exits non-zero only if more than this share of videos failed

Resumable: every finished video's row is written at once under `<out>/.records/`; a video
whose ok row still matches its file (size + sha256) and range is not fetched again; videos that
failed permanently are not retried unless `--retry-failed`; transient failures are retried on
the next run. Videos no longer in the table are dropped from the ledger; their files and
records are left on disk (so re-adding a video with the same range costs nothing).
Run it standalone (no Prefect, serial or threads): `python -m stages.download --help`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from repurpose.download import ledger as L
from repurpose.download.job import (
    PARTIAL_DIR,
    SECTION,
    DownloadConfig,
    Job,
    Outcome,
    failed_outcome,
    run_job,
)
from repurpose.errors import UserError
from repurpose.media import ffmpeg_exe
from repurpose.params import load_section
from repurpose.runner import Mapper
from repurpose.splits.schema import is_safe_id
from repurpose.splits.tables import read_videos_table

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


@contextlib.contextmanager
def _run_lock(out: Path) -> Iterator[None]:
    """One download run per output folder at a time."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise UserError(f"{out}: another download run is using this folder") from exc
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


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
            ).stamped()
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
                requested_end=end,
                source=cfg.source,
            ).stamped()
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


def main(args: argparse.Namespace, mapper: Mapper) -> int:
    """Download every video of the table through `mapper`; write the ledger; print a summary."""
    # absolute paths: per-video work may run in other processes (Dask workers)
    local_dir = str(Path(args.local_dir).resolve()) if args.local_dir else None
    cfg = DownloadConfig.from_section(load_section(args.params, SECTION), local_dir)
    ffmpeg_exe()  # a clear error now rather than one per video
    out = Path(args.out).resolve()
    started = time.monotonic()
    with _run_lock(out):
        shutil.rmtree(out / PARTIAL_DIR, ignore_errors=True)  # leftovers of a killed run
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
    return _exit_code(final, cfg.max_failed_fraction)


def _progress(total: int):  # noqa: ANN202 - a tqdm bar or a stand-in
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover

        class _Null:
            def update(self, n: int) -> None: ...
            def close(self) -> None: ...

        return _Null()
    return tqdm(total=total, desc="download", unit="video", disable=None, dynamic_ncols=True)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def summary_lines(
    rows: list[L.LedgerRow], outcomes: list[Outcome], seconds: float, ledger_path: Path
) -> list[str]:
    """Human summary: ok / failed by category / skipped / bytes / reused vs fetched."""
    status = Counter(r.status for r in rows)
    actions = Counter(o.action for o in outcomes)
    lines = [
        f"download: {len(rows)} videos: ok {status[L.OK]} (fetched {actions['fetched']}, "
        f"reused {actions['reused']}), failed_permanent {status[L.FAILED_PERMANENT]}, "
        f"failed_transient {status[L.FAILED_TRANSIENT]}, skipped {status[L.SKIPPED]}"
    ]
    for st in (L.FAILED_PERMANENT, L.FAILED_TRANSIENT, L.SKIPPED):
        cats = Counter(r.error_category for r in rows if r.status == st)
        if cats:
            lines.append(
                f"download:   {st}: " + ", ".join(f"{c} {n}" for c, n in cats.most_common())
            )
    if actions["kept"]:
        lines.append(
            f"download:   {actions['kept']} permanent failures of earlier runs not retried "
            "(--retry-failed retries them)"
        )
    fetched = sum(o.row.bytes for o in outcomes if o.action == "fetched")
    on_disk = sum(r.bytes for r in rows if r.ok)
    hours = sum(r.duration for r in rows if r.ok) / 3600
    lines.append(
        f"download: {_mb(fetched)} written this run, {_mb(on_disk)} on disk for {hours:.2f} h "
        f"of ok video, {seconds:.1f} s; ledger -> {ledger_path}"
    )
    return lines


def _exit_code(rows: list[L.LedgerRow], max_failed_fraction: float) -> int:
    failed = sum(r.status in (L.FAILED_PERMANENT, L.FAILED_TRANSIENT) for r in rows)
    if rows and failed / len(rows) > max_failed_fraction:
        log.error(
            "download: %d of %d videos failed (%.0f%%), more than download.max_failed_fraction=%g",
            failed,
            len(rows),
            100 * failed / len(rows),
            max_failed_fraction,
        )
        return 1
    return 0


def _standalone(argv: Sequence[str] | None = None) -> int:
    """`python -m stages.download ...`: the stage without Prefect (serial, or N threads)."""
    from repurpose.runner import local_mapper

    parser = argparse.ArgumentParser(
        prog="python -m stages.download", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    parser.add_argument(
        "--params", default="params.yaml", help="params file (default: %(default)s)"
    )
    parser.add_argument("--workers", type=int, default=1, help="threads (default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return main(args, local_mapper("threads" if args.workers > 1 else "serial", args.workers))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_standalone())
