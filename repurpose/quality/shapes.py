"""Datasets of any size shaped like Repurpose-10K, for the loader, dry-run and GPU benchmarks:
window and clip structure copied from the real split files, random vectors at any dims written
through the real shard writer. Speed and memory only: the vectors carry no signal (the planted
signal for quality is `repurpose.quality.planted`)."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from repurpose.features.shards import FeatureMeta, VideoFeatures, write_shard
from repurpose.timeline import window_rows

SPLIT_SHARES = (("train", 0.8), ("val", 0.1), ("test", 0.1))
POOL_ROWS = 8192  # random vectors per modality that the synthetic rows are drawn from


def real_like_splits(real_files: Sequence[str | os.PathLike[str]], n_videos: int, seed: int = 0,
                     shares: Sequence[tuple[str, float]] = SPLIT_SHARES) -> dict[str, list[dict]]:
    """Split-file entries of `n_videos` made-up videos (ids `syn` + 8 digits), each copying every
    entry of a real video drawn with replacement from `real_files`: windows per video, window
    lengths and starts, clips and coverage follow the real distribution. Videos are dealt to
    the splits in order by `shares`."""
    real: dict[str, list[dict]] = defaultdict(list)
    for path in real_files:
        for entry in json.loads(Path(path).read_text(encoding="utf-8")):
            real[entry["youtube_id"]].append(entry)
    ids = sorted(real)
    picks = np.random.default_rng(seed).integers(len(ids), size=n_videos)
    edges = np.cumsum([share for _, share in shares]) / sum(share for _, share in shares)
    out: dict[str, list[dict]] = {name: [] for name, _ in shares}
    for k, pick in enumerate(picks):
        split = shares[int(np.searchsorted(edges, (k + 0.5) / n_videos))][0]
        yid = f"syn{k:08d}"
        out[split].extend({**entry, "youtube_id": yid} for entry in real[ids[pick]])
    return out


def feature_rows(entries: Iterable[dict]) -> dict[str, np.ndarray]:
    """Per video the feature rows (absolute seconds, sorted int32) its windows read."""
    spans: dict[str, list[np.ndarray]] = defaultdict(list)
    for entry in entries:
        first, stop = window_rows(*entry["timeRange"])
        spans[entry["youtube_id"]].append(np.arange(first, stop, dtype=np.int32))
    return {yid: np.unique(np.concatenate(parts)) for yid, parts in spans.items()}


def write_feature_shards(features_dir: str | os.PathLike[str], rows: Mapping[str, np.ndarray],
                         dims: Mapping[str, int], n_shards: int, dtype: str = "float16",
                         seed: int = 0) -> dict[str, int]:
    """Write `<features_dir>/<modality>/part-NNNNN.parquet` for every video's `rows` through
    the real writer, one shard per `shard_of(youtube_id, n_shards)` like the extract stage.
    Each row is one of `POOL_ROWS` standard-normal vectors per modality, drawn at random (no
    signal). Returns counts: shards, videos, rows (seconds) and bytes written."""
    from repurpose.features.assembly import shard_of

    members: dict[int, list[str]] = defaultdict(list)
    for yid in sorted(rows):
        members[shard_of(yid, n_shards)].append(yid)
    written = 0
    for k, (modality, dim) in enumerate(sorted(dims.items())):
        meta = FeatureMeta(modality, f"synthetic-{modality}", "random-normal", dim, dtype)
        rng = np.random.default_rng([seed, k])
        pool = rng.standard_normal((POOL_ROWS, dim), dtype=np.float32).astype(dtype)
        for shard, ids in sorted(members.items()):
            videos = [VideoFeatures(yid, rows[yid], pool[rng.integers(POOL_ROWS, size=len(t))])
                      for yid in ids for t in [rows[yid]]]
            path = Path(features_dir) / modality / f"part-{shard:05d}.parquet"
            write_shard(path, videos, meta)
            written += path.stat().st_size
    return {"shards": len(members), "videos": len(rows),
            "rows": int(sum(len(r) for r in rows.values())), "bytes": written}
