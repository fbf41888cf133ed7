"""Per-video results: their outcome (`Entry`), their cache, and the status files of a run.

Cache (`--cache`, outside DVC's outputs so it survives `dvc repro` deleting them):
`<cache>/<youtube_id>/<key>.json` (the outcome; written last, so it marks a complete entry) and
`<key>.npy` (the vectors, `[n_rows, dim]` in the output dtype). `key` hashes everything that
changes the numbers: the video's sha256 and source offset, backend key, its params, weights
identity, output dtype and the recipe version. A video is reused only when its entry loads
with the expected shape; media failures are cached too (they are properties of the file).

Outputs that DVC tracks are deterministic (no timings, no computed/reused counts):
`videos.parquet` (status, reason, flags per video) and `failures.json`. The run's counts are
printed and returned as a `RunReport`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from repurpose import io

log = logging.getLogger(__name__)

RECIPE_VERSION = 1  # bump when the per-second sampling rules change
STATUS_FILE = "videos.parquet"
FAILURES_FILE = "failures.json"
OK, FAILED = "ok", "failed"
NON_FINITE = "non_finite"  # failure reason: the backend produced NaN or infinite vectors


STATUS_SCHEMA = pa.schema([
    pa.field("youtube_id", pa.string(), nullable=False),
    pa.field("status", pa.string(), nullable=False),  # ok | failed
    pa.field("reason", pa.string(), nullable=False),  # why it failed ("" when ok)
    pa.field("flags", pa.list_(pa.string()), nullable=False),  # e.g. no_audio, silent, vfr
    pa.field("message", pa.string(), nullable=False),
    pa.field("first_t", pa.int32(), nullable=False),  # first row (absolute second)
    pa.field("n_rows", pa.int32(), nullable=False),
    pa.field("shard", pa.int32(), nullable=False),  # -1 when not in a shard
    pa.field("key", pa.string(), nullable=False),  # result key
])


@dataclass(frozen=True)
class Entry:
    """The outcome of one video for one modality (what the cache's JSON holds)."""

    youtube_id: str
    key: str
    status: str  # ok | failed
    reason: str = ""  # failure reason, e.g. undecodable, too_short, no_transcript
    flags: tuple[str, ...] = ()  # handled oddities, e.g. no_audio, silent, vfr, truncated
    message: str = ""
    first_t: int = 0
    n_rows: int = 0
    dim: int = 0
    computed: bool = True  # False when it came from the cache (not stored)

    @property
    def ok(self) -> bool:
        return self.status == OK and self.n_rows > 0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("computed")
        d["flags"] = list(self.flags)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Entry:
        return cls(**{**d, "flags": tuple(d.get("flags", ())), "computed": False})


def result_key(**parts: Any) -> str:
    """Hex key over canonical JSON of `parts` (plus the recipe version)."""
    blob = json.dumps({"recipe": RECIPE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class ResultCache:
    """Per-video results under one folder (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def _paths(self, youtube_id: str, key: str) -> tuple[Path, Path]:
        folder = self.root / youtube_id
        return folder / f"{key}.json", folder / f"{key}.npy"

    def load(self, youtube_id: str, key: str, dim: int) -> Entry | None:
        """The cached entry if complete and of the expected shape, else None."""
        meta_path, array_path = self._paths(youtube_id, key)
        try:
            entry = Entry.from_json(json.loads(meta_path.read_text(encoding="utf-8")))
            if entry.key != key or entry.youtube_id != youtube_id:
                return None
            if entry.status == OK:
                arr = np.load(array_path, mmap_mode="r")
                if arr.shape != (entry.n_rows, dim):
                    return None
            return entry
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def array(self, youtube_id: str, key: str) -> np.ndarray:
        return np.load(self._paths(youtube_id, key)[1])

    def save(self, entry: Entry, array: np.ndarray | None) -> Entry:
        """Write the vectors, then the JSON (atomic each; the JSON marks completion). An ok
        entry whose vectors are not all finite is saved and returned as failed instead."""
        entry, array = finite_or_failed(entry, array)
        meta_path, array_path = self._paths(entry.youtube_id, entry.key)
        if array is not None:
            with io.atomic_path(array_path) as tmp, open(tmp, "wb") as fh:
                np.save(fh, array)
        io.write_json(meta_path, entry.to_json())
        return entry


def finite_or_failed(entry: Entry, array: np.ndarray | None) -> tuple[Entry, np.ndarray | None]:
    """(entry, array) unchanged if every value is finite; else a `non_finite` failure (no
    vectors): NaN or inf in a shard would poison training, so such a video is never stored."""
    if array is None or entry.status != OK:
        return entry, array
    bad_rows = ~np.isfinite(array).all(axis=tuple(range(1, array.ndim)))
    if not bad_rows.any():
        return entry, array
    first = int(np.flatnonzero(bad_rows)[0])
    message = (f"{int(bad_rows.sum())} of {len(array)} rows hold NaN or infinite values "
               f"(first: second {entry.first_t + first})")
    log.warning("%s: %s", entry.youtube_id, message)
    return Entry(entry.youtube_id, entry.key, FAILED, reason=NON_FINITE, flags=entry.flags,
                 message=message, first_t=entry.first_t, dim=entry.dim), None


def remove_stale(out_dir: str | os.PathLike[str], cache: ResultCache) -> int:
    """Delete the temporary files a killed run left in the shard folder and in the cache
    (call it at the start, before any worker writes); the count."""
    removed = io.remove_stale_tmp(out_dir)
    if cache.root.is_dir():
        for folder in cache.root.iterdir():
            if folder.is_dir():
                removed += io.remove_stale_tmp(folder)
    return removed


@dataclass
class ShardReport:
    written: int = 0
    unchanged: int = 0
    removed: int = 0


def status_table(entries: Mapping[str, Entry], assignment: Mapping[str, int]) -> pa.Table:
    rows = [entries[yid] for yid in sorted(entries)]
    return pa.table({
        "youtube_id": [e.youtube_id for e in rows],
        "status": [OK if e.ok else FAILED for e in rows],
        "reason": ["" if e.ok else (e.reason or "no_rows") for e in rows],
        "flags": [list(e.flags) for e in rows],
        "message": [e.message for e in rows],
        "first_t": [e.first_t for e in rows],
        "n_rows": [e.n_rows for e in rows],
        "shard": [assignment.get(e.youtube_id, -1) for e in rows],
        "key": [e.key for e in rows],
    }, schema=STATUS_SCHEMA)


def write_if_changed_parquet(path: Path, table: pa.Table) -> bool:
    """Write `table` unless the file already holds an equal table. True if written."""
    if path.is_file():
        try:
            if pq.read_table(path).equals(table):
                return False
        except (OSError, pa.ArrowInvalid):
            pass
    io.write_parquet(path, table)
    return True


def write_if_changed_json(path: Path, obj: Any) -> bool:
    text = json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    io.write_text(path, text)
    return True


@dataclass
class RunReport:
    """What one run of a per-video feature stage did (printed; not a DVC output)."""

    modality: str
    backend: str
    videos: int = 0
    computed: int = 0
    reused: int = 0
    failed: Counter = field(default_factory=Counter)  # reason -> count
    flagged: Counter = field(default_factory=Counter)  # flag -> count
    errors: list[str] = field(default_factory=list)  # non-media errors (not cached)
    shards: ShardReport = field(default_factory=ShardReport)
    files: str = ""  # for stages without shards: what was written, e.g. "3 transcripts written"

    def lines(self) -> list[str]:
        failed = sum(self.failed.values())
        out = [f"{self.modality} ({self.backend}): {self.videos} videos: {self.computed} computed, "
               f"{self.reused} reused, {failed} failed"]
        if self.failed:
            out.append("  failed by reason: " + ", ".join(
                f"{r} {n}" for r, n in sorted(self.failed.items())))
        if self.flagged:
            out.append("  flagged: " + ", ".join(f"{r} {n}" for r, n in sorted(
                self.flagged.items())))
        if self.files:
            out.append(f"  {self.files}")
        else:
            out.append(f"  shards: {self.shards.written} written, {self.shards.unchanged} "
                       f"unchanged, {self.shards.removed} removed")
        out.extend(f"  error: {e}" for e in self.errors[:20])
        return out


def write_status(out: Path, modality: str, backend: str, entries: Mapping[str, Entry],
                 assignment: Mapping[str, int], report: RunReport) -> RunReport:
    """Write `videos.parquet` and `failures.json` (if changed); count failures and flags."""
    out.mkdir(parents=True, exist_ok=True)
    write_if_changed_parquet(out / STATUS_FILE, status_table(entries, assignment))
    failures: dict[str, dict[str, list[str]]] = {"failed": {}, "flagged": {}}
    for yid in sorted(entries):
        e = entries[yid]
        if not e.ok:
            reason = e.reason or "no_rows"
            failures["failed"].setdefault(reason, []).append(yid)
            report.failed[reason] += 1
        for flag in e.flags:
            failures["flagged"].setdefault(flag, []).append(yid)
            report.flagged[flag] += 1
    write_if_changed_json(out / FAILURES_FILE, {"modality": modality, "backend": backend,
                                                **failures})
    return report


def collect(results: Iterable[tuple[Any, Entry | BaseException]], report: RunReport,
            entries: dict[str, Entry], youtube_id_of) -> None:  # noqa: ANN001
    """Fold mapper results into `entries` and `report` (exceptions = non-media errors)."""
    for item, result in results:
        yid = youtube_id_of(item)
        if isinstance(result, BaseException):
            msg = f"{yid}: {type(result).__name__}: {result}"
            log.error("%s", msg)
            report.errors.append(msg)
            entries[yid] = Entry(yid, "", FAILED, reason="error", message=str(result)[:500])
        else:
            entries[yid] = result
            if result.computed:
                report.computed += 1
            else:
                report.reused += 1


def check_positive_int(value: object, where: str) -> int:
    from repurpose.params import ParamsError

    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ParamsError(f"params {where}: expected a positive integer, got {value!r}")
    return value
