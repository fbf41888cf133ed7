"""The prepared tables under `data/prepared/`: what later stages read.

- `windows.parquet`: one row per (split, window), with clips and per-second labels/targets.
- `videos.parquet`: one row per unique source video, with the source time ranges it needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from repurpose import io

VIDEOS_SCHEMA = pa.schema(
    [
        pa.field("youtube_id", pa.string(), nullable=False),
        # merged, sorted union of the windows' time ranges, absolute source seconds
        pa.field("ranges", pa.list_(pa.list_(pa.float64(), 2)), nullable=False),
        pa.field("start", pa.float64(), nullable=False),  # min over ranges (hull start)
        pa.field("end", pa.float64(), nullable=False),  # max over ranges (hull end)
        pa.field("splits", pa.list_(pa.string()), nullable=False),  # sorted split names
        pa.field("n_windows", pa.int32(), nullable=False),
    ]
)


@dataclass(frozen=True)
class VideoRanges:
    """One source video and the absolute time ranges the dataset needs from it."""

    youtube_id: str
    ranges: tuple[tuple[float, float], ...]
    splits: tuple[str, ...]
    n_windows: int

    @property
    def start(self) -> float:
        """First needed second (hull start)."""
        return self.ranges[0][0]

    @property
    def end(self) -> float:
        """Last needed second (hull end)."""
        return self.ranges[-1][1]


def merge_ranges(ranges: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """Union of [start, end] ranges: sorted, overlapping or touching ones merged."""
    merged: list[list[float]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((a, b) for a, b in merged)


def write_videos_table(path: str | os.PathLike[str], videos: list[VideoRanges]) -> None:
    """Atomically write the videos table, sorted by youtube_id."""
    rows = sorted(videos, key=lambda v: v.youtube_id)
    table = pa.table(
        {
            "youtube_id": [v.youtube_id for v in rows],
            "ranges": [[list(r) for r in v.ranges] for v in rows],
            "start": [v.start for v in rows],
            "end": [v.end for v in rows],
            "splits": [list(v.splits) for v in rows],
            "n_windows": [v.n_windows for v in rows],
        },
        schema=VIDEOS_SCHEMA,
    )
    io.write_parquet(path, table)


def read_videos_table(path: str | os.PathLike[str]) -> list[VideoRanges]:
    """Read the videos table written by the prepare stage."""
    table = pq.read_table(path)
    return [
        VideoRanges(
            youtube_id=row["youtube_id"],
            ranges=tuple((float(a), float(b)) for a, b in row["ranges"]),
            splits=tuple(row["splits"]),
            n_windows=int(row["n_windows"]),
        )
        for row in table.to_pylist()
    ]
