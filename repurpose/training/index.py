"""Which windows can be used, and how many rows each gets (pyarrow metadata only, no torch).

A window is used when its video downloaded fine (download ledger status "ok"), every modality
has vectors for it, and the rows line up. Rows used = the shortest of: the label rows
(`int(duration) + 1`), and each modality's feature rows for `window_rows(start, end)`.
Because the reference builds one label row more than `int(end) - int(start)` feature rows,
dropping that one last label row is expected and counted apart; any other truncation (a
modality shorter than the window: video cut short, extractor stopped early) is counted per
modality and logged. Nothing is skipped or cut silently: `Funnel` holds every count.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from repurpose.features.shards import FeatureMeta, read_meta, shard_paths
from repurpose.model.config import MODALITIES
from repurpose.splits.windows import Window, read_windows
from repurpose.timeline import window_rows

log = logging.getLogger(__name__)


def usable_videos(ledger: str | os.PathLike[str] | None) -> set[str] | None:
    """Ids whose download ledger status is "ok"; None (no check) when there is no ledger.

    One small function so it can become `repurpose.download.ledger.ok_videos(ledger)` later.
    """
    if ledger is None or not Path(ledger).is_file():
        log.warning("download ledger %s not found: not checking download status", ledger)
        return None
    table = pq.read_table(ledger, columns=["youtube_id", "status"])
    ids = table.column("youtube_id").to_pylist()
    status = table.column("status").to_pylist()
    return {yid for yid, st in zip(ids, status, strict=True) if st == "ok"}


@dataclass(frozen=True)
class Span:
    """Seconds one video has in one modality: `t` sorted (None when t_min..t_max contiguous)."""

    t_min: int
    t_max: int
    t: np.ndarray | None = None

    def rows(self, first: int, stop: int) -> int:
        """Usable rows of [first, stop): contiguous from `first`, or 0 (leading gap)."""
        if self.t is None:
            if self.t_min > first or self.t_max < first:
                return 0
            return min(stop, self.t_max + 1) - first
        lo = int(np.searchsorted(self.t, first))
        if lo >= len(self.t) or self.t[lo] != first:
            return 0
        run = self.t[lo:lo + (stop - first)] - first
        breaks = np.flatnonzero(run != np.arange(len(run)))
        return int(breaks[0]) if len(breaks) else len(run)


@dataclass(frozen=True)
class ModalityIndex:
    """One modality folder: its FeatureMeta and each video's span of seconds."""

    folder: Path
    meta: FeatureMeta
    spans: dict[str, Span]


def index_modality(folder: str | os.PathLike[str]) -> ModalityIndex | None:
    """Scan a modality folder's shard metadata (row-group statistics of `t`); None if empty."""
    folder = Path(folder)
    meta: FeatureMeta | None = None
    spans: dict[str, Span] = {}
    for path in shard_paths(folder) if folder.is_dir() else []:
        shard_meta, videos = read_meta(path)
        meta = meta or shard_meta
        pf = pq.ParquetFile(path)
        t_col = pf.schema_arrow.get_field_index("t")
        for group, yid in enumerate(videos):
            rg = pf.metadata.row_group(group)
            stats = rg.column(t_col).statistics
            n = rg.num_rows
            if stats is not None and stats.has_min_max and stats.max - stats.min + 1 == n:
                spans[yid] = Span(int(stats.min), int(stats.max))
            elif n:
                t = np.sort(pf.read_row_group(group, columns=["t"]).column("t").to_numpy())
                spans[yid] = Span(int(t[0]), int(t[-1]), t)
    return None if meta is None else ModalityIndex(folder, meta, spans)


def index_features(features_dir: str | os.PathLike[str]) -> dict[str, ModalityIndex | None]:
    """Index `<features_dir>/<modality>/` for every modality (None where a folder is empty)."""
    return {m: index_modality(Path(features_dir) / m) for m in MODALITIES}


@dataclass(frozen=True)
class WindowPlan:
    """A usable window and the number of rows (seconds) it contributes."""

    window: Window
    rows: int


@dataclass
class Funnel:
    """Counts from the split's windows down to the windows used (per split)."""

    split: str
    windows: int = 0
    videos: int = 0
    ledger_checked: bool = False
    videos_downloaded: int = 0
    videos_not_downloaded: int = 0
    windows_not_downloaded: int = 0
    windows_missing: dict[str, int] = field(default_factory=dict)  # per modality
    windows_missing_any: int = 0
    windows_empty: int = 0  # all present but no common row
    windows_used: int = 0
    videos_used: int = 0
    label_rows_dropped_expected: int = 0  # the reference's extra last label row
    windows_truncated: int = 0  # windows cut beyond that one row
    rows_truncated: dict[str, int] = field(default_factory=dict)  # rows lost to each modality

    def to_dict(self) -> dict:
        """JSON-ready counts."""
        return asdict(self)

    def lines(self) -> list[str]:
        """Human summary."""
        ledger = (f"{self.videos_downloaded} downloaded, {self.videos_not_downloaded} not"
                  if self.ledger_checked else "no ledger, download status not checked")
        missing = ", ".join(f"{m} {n}" for m, n in self.windows_missing.items() if n) or "none"
        out = [
            f"{self.split}: {self.windows} windows of {self.videos} videos ({ledger})",
            f"  skipped: {self.windows_not_downloaded} not downloaded, "
            f"{self.windows_missing_any} missing a modality ({missing}), "
            f"{self.windows_empty} without rows",
            f"  used: {self.windows_used} windows of {self.videos_used} videos",
        ]
        if self.label_rows_dropped_expected:
            out.append(f"  aligned: dropped the last label row of "
                       f"{self.label_rows_dropped_expected} windows (labels have int(duration)+1"
                       f" rows, features int(end)-int(start))")
        if self.windows_truncated:
            lost = ", ".join(f"{m} {n}" for m, n in self.rows_truncated.items() if n)
            out.append(f"  truncated: {self.windows_truncated} windows to their shortest "
                       f"modality (rows short: {lost})")
        return out


def plan_windows(windows: list[Window], split: str, modalities: dict[str, ModalityIndex | None],
                 ok: set[str] | None) -> tuple[list[WindowPlan], Funnel]:
    """Usable windows with their row counts, and the funnel of what was skipped or cut."""
    funnel = Funnel(split=split, windows=len(windows),
                    windows_missing={m: 0 for m in MODALITIES},
                    rows_truncated={m: 0 for m in MODALITIES})
    videos = {w.youtube_id for w in windows}
    funnel.videos = len(videos)
    if ok is not None:
        funnel.ledger_checked = True
        funnel.videos_downloaded = len(videos & ok)
        funnel.videos_not_downloaded = len(videos - ok)
    plans: list[WindowPlan] = []
    used_videos: Counter[str] = Counter()
    for w in windows:
        if ok is not None and w.youtube_id not in ok:
            funnel.windows_not_downloaded += 1
            continue
        first, stop = window_rows(w.start, w.end)
        rows: dict[str, int] = {}
        for m in MODALITIES:
            index = modalities.get(m)
            span = index.spans.get(w.youtube_id) if index is not None else None
            rows[m] = span.rows(first, stop) if span is not None else 0
            if span is None:
                funnel.windows_missing[m] += 1
        if any(modalities.get(m) is None or w.youtube_id not in modalities[m].spans
               for m in MODALITIES):
            funnel.windows_missing_any += 1
            continue
        n_labels = len(w.labels)
        used = min(n_labels, *rows.values())
        if used <= 0:
            funnel.windows_empty += 1
            continue
        full = stop - first
        if n_labels == full + 1 and used == full:
            funnel.label_rows_dropped_expected += 1
        elif used < min(n_labels, full):
            funnel.windows_truncated += 1
            for m in MODALITIES:
                funnel.rows_truncated[m] += max(0, min(n_labels, full) - rows[m])
        plans.append(WindowPlan(w, used))
        used_videos[w.youtube_id] += 1
    funnel.windows_used = len(plans)
    funnel.videos_used = len(used_videos)
    return plans, funnel


def load_plans(windows_path: str | os.PathLike[str], split: str,
               modalities: dict[str, ModalityIndex | None],
               ok: set[str] | None) -> tuple[list[WindowPlan], Funnel]:
    """Read one split's windows and plan them; log the funnel."""
    plans, funnel = plan_windows(read_windows(windows_path, split), split, modalities, ok)
    for line in funnel.lines():
        log.info("%s", line)
    return plans, funnel
