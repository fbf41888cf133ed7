"""The Parquet shard contract for per-second features.

`data/features/<modality>/part-NNNNN.parquet`, one row per (video, second):

| column       | type                                   | meaning                              |
|--------------|----------------------------------------|--------------------------------------|
| `youtube_id` | string                                 | source video                         |
| `t`          | int32                                  | absolute second of the source video  |
| `embedding`  | fixed_size_list<float16 or float32, D> | the vector for `[t, t + 1)`          |

Rows are sorted by (`youtube_id`, `t`), one row group per video. File metadata (key
`repurpose`) is JSON: modality, backend key, weights identity, dim, dtype, fps, backend params
and the row-group index `videos` (youtube_id per row group) so one video is read without a scan.
Optionally a second key (`repurpose.keys`) maps each video to the cache key of the result it
holds, so a writer can tell an up-to-date shard from a stale one without reading its rows.

Only `youtube_id` is dictionary-encoded: a dictionary over float16 vectors never fits, and
pyarrow's fallback made one row group ~10x slower to decode (benchmarks/loader.py). Readers
read only `t` and `embedding`; shards written the old way still read, just slower.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from repurpose import io
from repurpose.errors import UserError
from repurpose.timeline import window_rows

META_KEY = b"repurpose"
VIDEO_KEYS_KEY = b"repurpose.keys"
SHARD_GLOB = "part-*.parquet"
DTYPES = {"float16": np.float16, "float32": np.float32}
WRITER_OPTIONS: dict = {"use_dictionary": ["youtube_id"]}  # pq.ParquetWriter keyword arguments
READ_COLUMNS = ["t", "embedding"]


class ShardError(UserError):
    """A shard is unreadable or disagrees with the contract (names the file and what is off)."""


@dataclass(frozen=True)
class FeatureMeta:
    """What produced a modality's vectors; stored in every shard's file metadata."""

    modality: str  # visual | audio | text
    backend: str  # registry key, e.g. clip-vit-b32
    weights: str  # weights identity, e.g. sha256 of the checkpoint or a package@version
    dim: int
    dtype: str = "float16"  # float16 | float32
    fps: float = 1.0  # vectors per second
    params: dict = field(default_factory=dict)  # the backend's params that change results

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")

    def schema(self) -> pa.Schema:
        """Arrow schema of a shard of this modality."""
        value = pa.float16() if self.dtype == "float16" else pa.float32()
        return pa.schema([
            pa.field("youtube_id", pa.string(), nullable=False),
            pa.field("t", pa.int32(), nullable=False),
            pa.field("embedding", pa.list_(value, self.dim), nullable=False),
        ])


@dataclass(frozen=True)
class VideoFeatures:
    """One video's vectors: `t` [T] absolute seconds (ascending), `embedding` [T, D]."""

    youtube_id: str
    t: np.ndarray
    embedding: np.ndarray

    def __post_init__(self) -> None:
        if self.embedding.ndim != 2 or len(self.t) != len(self.embedding):
            raise ValueError(
                f"{self.youtube_id}: t {self.t.shape} and embedding {self.embedding.shape} "
                "must be [T] and [T, D]"
            )


def write_shard(path: str | os.PathLike[str], videos: Sequence[VideoFeatures],
                meta: FeatureMeta, video_keys: Mapping[str, str] | None = None) -> None:
    """Atomically write one shard: videos sorted by id, one row group per video.

    `video_keys` (optional): youtube_id -> key of the result stored (see `read_video_keys`)."""
    ordered = sorted(videos, key=lambda v: v.youtube_id)
    metadata = {META_KEY: json.dumps(
        {**asdict(meta), "videos": [v.youtube_id for v in ordered]}
    ).encode()}
    if video_keys is not None:
        metadata[VIDEO_KEYS_KEY] = json.dumps(dict(sorted(video_keys.items()))).encode()
    schema = meta.schema().with_metadata(metadata)
    np_dtype = DTYPES[meta.dtype]
    with io.atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, **WRITER_OPTIONS) as writer:
        for v in ordered:
            if v.embedding.shape[1] != meta.dim:
                raise ValueError(f"{v.youtube_id}: dim {v.embedding.shape[1]} != {meta.dim}")
            order = np.argsort(v.t, kind="stable")
            flat = pa.array(v.embedding[order].astype(np_dtype, copy=False).reshape(-1))
            table = pa.table({
                "youtube_id": pa.array([v.youtube_id] * len(v.t), pa.string()),
                "t": pa.array(np.asarray(v.t)[order], pa.int32()),
                "embedding": pa.FixedSizeListArray.from_arrays(flat, meta.dim),
            }, schema=schema)
            writer.write_table(table, row_group_size=max(1, len(v.t)))


def read_meta(path: str | os.PathLike[str]) -> tuple[FeatureMeta, list[str]]:
    """A shard's FeatureMeta and its row-group video ids."""
    try:
        raw = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid) as exc:
        raise ShardError(f"{path}: not a readable Parquet shard: {exc}") from exc
    if META_KEY not in raw:
        raise ShardError(f"{path}: no '{META_KEY.decode()}' metadata (not a feature shard)")
    data = json.loads(raw[META_KEY])
    videos = data.pop("videos")
    return FeatureMeta(**data), videos


def read_video_keys(path: str | os.PathLike[str]) -> dict[str, str]:
    """youtube_id -> result key recorded by `write_shard(video_keys=...)`; {} if none."""
    try:
        raw = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid) as exc:
        raise ShardError(f"{path}: not a readable Parquet shard: {exc}") from exc
    return json.loads(raw[VIDEO_KEYS_KEY]) if VIDEO_KEYS_KEY in raw else {}


def shard_paths(folder: str | os.PathLike[str]) -> list[Path]:
    """The shards of one modality folder, in name order."""
    return sorted(Path(folder).glob(SHARD_GLOB))


class FeatureStore:
    """Read access to one modality folder: which videos it has, and their vectors."""

    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ShardError(f"{self.folder}: no such feature folder")

    @cached_property
    def _index(self) -> tuple[FeatureMeta | None, dict[str, tuple[Path, int]]]:
        meta, index = None, {}
        for path in shard_paths(self.folder):
            shard_meta, videos = read_meta(path)
            if meta is None:
                meta = shard_meta
            elif _identity(shard_meta) != _identity(meta):
                raise ShardError(f"{path}: produced by {_identity(shard_meta)}, other shards "
                                 f"of {self.folder} by {_identity(meta)}")
            for group, youtube_id in enumerate(videos):
                index[youtube_id] = (path, group)
        return meta, index

    @property
    def meta(self) -> FeatureMeta:
        """The FeatureMeta shared by every shard of the folder."""
        meta = self._index[0]
        if meta is None:
            raise ShardError(f"{self.folder}: no shards")
        return meta

    @property
    def videos(self) -> set[str]:
        """Ids of the videos that have vectors."""
        return set(self._index[1])

    def read(self, youtube_id: str) -> VideoFeatures:
        """All vectors of one video (KeyError if absent)."""
        path, group = self._index[1][youtube_id]
        table = pq.ParquetFile(path).read_row_group(group, columns=READ_COLUMNS)
        return _to_video(youtube_id, table, self.meta.dim)

    def read_many(self, youtube_ids: Iterable[str]) -> dict[str, VideoFeatures]:
        """Vectors of several videos, reading each shard once."""
        wanted = sorted(set(youtube_ids) & self.videos)
        by_file: dict[Path, list[int]] = {}
        for yid in wanted:
            path, group = self._index[1][yid]
            by_file.setdefault(path, []).append(group)
        out = {}
        for path, groups in by_file.items():
            table = pq.ParquetFile(path).read_row_groups(sorted(groups))
            ids = table.column("youtube_id").to_numpy(zero_copy_only=False)
            bounds = np.flatnonzero(ids[1:] != ids[:-1]) + 1
            for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(ids)], strict=True):
                part = table.slice(int(lo), int(hi - lo))
                out[ids[lo]] = _to_video(ids[lo], part, self.meta.dim)
        return out

    def window(self, youtube_id: str, start: float, end: float) -> np.ndarray:
        """Vectors of rows `window_rows(start, end)`, [T, D]; T is shorter where rows are missing
        at the end (video shorter than the window); a gap inside is an error."""
        return window_slice(self.read(youtube_id), start, end)


def window_slice(video: VideoFeatures, start: float, end: float) -> np.ndarray:
    """Rows of `video` for absolute window [start, end), [T, D] (see FeatureStore.window)."""
    first, stop = window_rows(start, end)
    lo, hi = np.searchsorted(video.t, [first, stop])
    rows = video.t[lo:hi]
    if len(rows) and (rows[0] != first or np.any(np.diff(rows) != 1)):
        raise ShardError(f"{video.youtube_id}: seconds {first}..{stop - 1} are not contiguous "
                         f"in the features (first present: {int(rows[0])})")
    return video.embedding[lo:hi]


def _identity(meta: FeatureMeta) -> tuple:
    return (meta.modality, meta.backend, meta.weights, meta.dim, meta.dtype, meta.fps)


def _to_video(youtube_id: str, table: pa.Table, dim: int) -> VideoFeatures:
    emb = table.column("embedding").combine_chunks()
    values = emb.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    return VideoFeatures(youtube_id, table.column("t").to_numpy(), values)
