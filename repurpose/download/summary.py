"""The printed summary and the exit status of a download run."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from repurpose.download import ledger as L
from repurpose.download.job import Outcome

log = logging.getLogger(__name__)


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


def exit_code(rows: list[L.LedgerRow], max_failed_fraction: float) -> int:
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
