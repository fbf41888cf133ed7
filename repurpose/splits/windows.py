"""The windows table: one row per (split, window) with clips, labels and regression targets."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from repurpose import io
from repurpose.splits.labels import window_labels, window_targets
from repurpose.splits.schema import SplitEntry
from repurpose.splits.tables import VideoRanges, merge_ranges

WINDOWS_SCHEMA = pa.schema(
    [
        pa.field("split", pa.string(), nullable=False),
        pa.field("window_id", pa.string(), nullable=False),  # <youtube_id>@<start>-<end>
        pa.field("youtube_id", pa.string(), nullable=False),
        pa.field("start", pa.float64(), nullable=False),  # absolute source seconds
        pa.field("end", pa.float64(), nullable=False),
        pa.field("clips", pa.list_(pa.list_(pa.float64(), 2)), nullable=False),  # window seconds
        pa.field("n_seconds", pa.int32(), nullable=False),  # label rows: int(end - start) + 1
        pa.field("labels", pa.list_(pa.int8()), nullable=False),  # [n_seconds]
        pa.field("targets", pa.list_(pa.list_(pa.float32(), 2)), nullable=False),  # [n_seconds, 2]
        pa.field("coverage", pa.float64()),
        pa.field("entry_index", pa.int32(), nullable=False),  # position in the split file
    ]
)


@dataclass(frozen=True)
class Window:
    """One training/evaluation window: a record of the windows table."""

    split: str
    window_id: str
    youtube_id: str
    start: float
    end: float
    clips: tuple[tuple[float, float], ...]  # window seconds
    labels: np.ndarray  # int8 [n_seconds]
    targets: np.ndarray  # float32 [n_seconds, 2]

    @property
    def duration(self) -> float:
        """Window length in seconds."""
        return self.end - self.start


def windows_table(entries: Iterable[SplitEntry]) -> pa.Table:
    """Windows table of unique entries, sorted by (split, youtube_id, start, end)."""
    rows = sorted(entries, key=lambda e: (e.split, e.youtube_id, e.start, e.end, e.index))
    labels = [window_labels(e.duration, e.clips) for e in rows]
    targets = [window_targets(e.duration, e.clips) for e in rows]
    offsets = pa.array(np.concatenate([[0], np.cumsum([len(x) for x in labels])]), pa.int32())
    flat_labels = pa.array(np.concatenate(labels), pa.int8())
    flat_targets = pa.FixedSizeListArray.from_arrays(
        pa.array(np.concatenate(targets).reshape(-1), pa.float32()), 2
    )
    return pa.table(
        {
            "split": [e.split for e in rows],
            "window_id": [e.window_id for e in rows],
            "youtube_id": [e.youtube_id for e in rows],
            "start": [e.start for e in rows],
            "end": [e.end for e in rows],
            "clips": [[list(c) for c in e.clips] for e in rows],
            "n_seconds": [len(lab) for lab in labels],
            "labels": pa.ListArray.from_arrays(offsets, flat_labels),
            "targets": pa.ListArray.from_arrays(offsets, flat_targets),
            "coverage": [e.coverage for e in rows],
            "entry_index": [e.index for e in rows],
        },
        schema=WINDOWS_SCHEMA,
    )


def write_windows(path: str | os.PathLike[str], table: pa.Table) -> None:
    """Atomically write the windows table."""
    io.write_parquet(path, table)


def read_windows(path: str | os.PathLike[str], split: str | None = None) -> list[Window]:
    """Read windows (optionally of one split) as typed records."""
    table = pq.read_table(path, filters=[("split", "=", split)] if split else None)
    table = table.combine_chunks()
    bounds = np.concatenate([[0], np.cumsum(table.column("n_seconds").to_numpy())])
    labels = table.column("labels").chunk(0).flatten().to_numpy() if table.num_rows else []
    targets = (
        table.column("targets").chunk(0).flatten().flatten().to_numpy().reshape(-1, 2)
        if table.num_rows else []
    )
    meta = table.select(["split", "window_id", "youtube_id", "start", "end", "clips"]).to_pylist()
    return [
        Window(
            split=row["split"],
            window_id=row["window_id"],
            youtube_id=row["youtube_id"],
            start=row["start"],
            end=row["end"],
            clips=tuple((a, b) for a, b in row["clips"]),
            labels=labels[bounds[i]:bounds[i + 1]],
            targets=targets[bounds[i]:bounds[i + 1]],
        )
        for i, row in enumerate(meta)
    ]


def videos_needed(entries: Iterable[SplitEntry]) -> list[VideoRanges]:
    """Each unique video with the union of its windows' ranges, over all splits."""
    ranges: dict[str, list[tuple[float, float]]] = defaultdict(list)
    splits: dict[str, set[str]] = defaultdict(set)
    for e in entries:
        ranges[e.youtube_id].append((e.start, e.end))
        splits[e.youtube_id].add(e.split)
    return [
        VideoRanges(yid, merge_ranges(r), tuple(sorted(splits[yid])), len(r))
        for yid, r in sorted(ranges.items())
    ]
