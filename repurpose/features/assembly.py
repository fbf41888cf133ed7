"""Stable Parquet shards from per-video results (the results and their cache:
`repurpose.pervideo.results`).

Shards: video -> shard `sha1(youtube_id) mod n_shards`, so adding or changing one video touches
exactly one shard. Each shard records the result key of every video it holds
(`shards.read_video_keys`); a shard whose metadata and keys already match is not rewritten.
The shards are deterministic (no timings, no counts), like `videos.parquet` and `failures.json`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from repurpose.features.shards import (
    DTYPES,
    SHARD_GLOB,
    FeatureMeta,
    ShardError,
    VideoFeatures,
    read_meta,
    read_video_keys,
    write_shard,
)
from repurpose.pervideo.results import (
    Entry,
    ResultCache,
    RunReport,
    ShardReport,
    write_status,
)

log = logging.getLogger(__name__)


def shard_of(youtube_id: str, n_shards: int) -> int:
    """Stable shard index of a video (independent of which other videos exist)."""
    return int(hashlib.sha1(youtube_id.encode()).hexdigest()[:8], 16) % n_shards


def shard_path(out_dir: Path, index: int) -> Path:
    return out_dir / f"part-{index:05d}.parquet"


def assemble_shards(out_dir: str | os.PathLike[str], meta: FeatureMeta,
                    entries: Mapping[str, Entry], arrays: Callable[[str, str], np.ndarray],
                    n_shards: int) -> tuple[ShardReport, dict[str, int]]:
    """Write the shards of the ok `entries` (rewriting only those that changed), remove stale
    ones. `arrays(youtube_id, key)` gives a video's `[n_rows, dim]` vectors (only called for
    shards that are rewritten). Returns the report and youtube_id -> shard index."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale_tmp in out.glob(".part-*.tmp"):  # left by a killed writer
        stale_tmp.unlink(missing_ok=True)
    members: dict[int, dict[str, Entry]] = {}
    for yid, entry in entries.items():
        if entry.ok:
            members.setdefault(shard_of(yid, n_shards), {})[yid] = entry
    report = ShardReport()
    wanted_paths = set()
    for index in sorted(members):
        path = shard_path(out, index)
        wanted_paths.add(path.name)
        keys = {yid: e.key for yid, e in members[index].items()}
        if _up_to_date(path, meta, keys):
            report.unchanged += 1
            continue
        videos = []
        for yid, e in sorted(members[index].items()):
            arr = arrays(yid, e.key)
            t = np.arange(e.first_t, e.first_t + e.n_rows, dtype=np.int32)
            videos.append(VideoFeatures(yid, t, arr))
        write_shard(path, videos, meta, video_keys=keys)
        report.written += 1
    for path in out.glob(SHARD_GLOB):
        if path.name not in wanted_paths:
            path.unlink()
            report.removed += 1
    assignment = {yid: idx for idx, group in members.items() for yid in group}
    return report, assignment


def _up_to_date(path: Path, meta: FeatureMeta, keys: Mapping[str, str]) -> bool:
    if not path.is_file():
        return False
    try:
        have_meta, videos = read_meta(path)
        return have_meta == meta and sorted(videos) == sorted(keys) and \
            read_video_keys(path) == dict(keys)
    except (ShardError, ValueError, TypeError, KeyError):
        return False


def finish(out_dir: str | os.PathLike[str], meta: FeatureMeta, entries: Mapping[str, Entry],
           cache: ResultCache, n_shards: int, report: RunReport) -> RunReport:
    """Write shards, status table and failures file; complete and return the report."""
    out = Path(out_dir)
    report.shards, assignment = assemble_shards(out, meta, entries, cache.array, n_shards)
    return write_status(out, meta.modality, meta.backend, entries, assignment, report)


def check_dtype(value: object, where: str) -> str:
    from repurpose.params import ParamsError

    if value not in DTYPES:
        raise ParamsError(f"params {where}.dtype: expected one of {sorted(DTYPES)}, got {value!r}")
    return str(value)
