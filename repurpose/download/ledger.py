"""The download ledger: one row per video saying what is on disk and why not.

Two layers, so that killing the stage loses only the videos in flight:
- `<out>/.records/<youtube_id>.json`: one atomically written record per finished video,
  written the moment that video finishes (ok or failed);
- `<out>/ledger.parquet`: the consolidated table of the videos in the current videos table,
  rewritten atomically during and at the end of a run. Downstream stages read this one:

    from repurpose.download.ledger import ok_videos
    for youtube_id, row in ok_videos("data/videos/ledger.parquet").items():
        path = row.path_in("data/videos")        # data/videos/<youtube_id>.mp4
        second_0 = row.source_offset              # absolute source second where the file starts

`source_offset` is the file's true start: with `download.cut: copy` the first packet time, at
the keyframe at or before `requested_start` (so usually fractional and earlier); with
`reencode` it equals `requested_start`. Records written before `requested_start` and `cut`
existed were exact cuts: they read as `requested_start = source_offset`, `cut = reencode`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from repurpose import io
from repurpose.splits.schema import check_id

LEDGER_NAME = "ledger.parquet"
RECORDS_DIR = ".records"

OK = "ok"
FAILED_PERMANENT = "failed_permanent"
FAILED_TRANSIENT = "failed_transient"
SKIPPED = "skipped"
STATUSES = (OK, FAILED_PERMANENT, FAILED_TRANSIENT, SKIPPED)

LEDGER_SCHEMA = pa.schema(
    [
        pa.field("youtube_id", pa.string(), nullable=False),
        pa.field(
            "status", pa.string(), nullable=False
        ),  # ok|failed_permanent|failed_transient|skipped
        pa.field("error_category", pa.string(), nullable=False),  # "" when ok
        pa.field("error_message", pa.string(), nullable=False),
        pa.field("attempts", pa.int32(), nullable=False),  # attempts in the run that set status
        pa.field("bytes", pa.int64(), nullable=False),  # file size
        pa.field("duration", pa.float64(), nullable=False),  # seconds in the file
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("fps", pa.float64(), nullable=False),
        pa.field("has_audio", pa.bool_(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("source_offset", pa.float64(), nullable=False),  # absolute second of file's t=0
        pa.field("requested_start", pa.float64(), nullable=False),  # absolute hull start asked for
        pa.field("requested_end", pa.float64(), nullable=False),  # absolute hull end asked for
        pa.field("source", pa.string(), nullable=False),  # youtube | url | local
        pa.field("cut", pa.string(), nullable=False),  # copy | reencode ("" when nothing was cut)
        pa.field("file", pa.string(), nullable=False),  # file name beside the ledger, "" if none
        # no wall-clock column: the ledger is a DVC output and must be bit-reproducible
    ]
)


@dataclass(frozen=True)
class LedgerRow:
    """One video's download state (see LEDGER_SCHEMA for the columns)."""

    youtube_id: str
    status: str
    error_category: str = ""
    error_message: str = ""
    attempts: int = 0
    bytes: int = 0
    duration: float = 0.0
    width: int = 0
    height: int = 0
    fps: float = 0.0
    has_audio: bool = False
    sha256: str = ""
    source_offset: float = 0.0
    requested_start: float = 0.0
    requested_end: float = 0.0
    source: str = ""
    cut: str = ""
    file: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK

    def path_in(self, folder: str | os.PathLike[str]) -> Path:
        """Where this row's file lies, given the ledger's folder."""
        if not self.file:
            raise ValueError(f"{self.youtube_id}: no file (status {self.status})")
        return Path(folder) / self.file

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LedgerRow:
        """Build from a dict, ignoring unknown keys (records written by other versions)."""
        names = {f.name for f in fields(cls)}
        data = dict(data)
        if "requested_start" not in data:  # written before stream copies: an exact cut
            data["requested_start"] = data.get("source_offset", 0.0)
            data.setdefault("cut", "reencode" if data.get("status") == OK else "")
        row = cls(**{k: v for k, v in data.items() if k in names})
        if row.status not in STATUSES:
            raise ValueError(f"{row.youtube_id}: unknown status {row.status!r}")
        return row

def video_file_name(youtube_id: str) -> str:
    """`<youtube_id>.mp4`, after checking the id is safe in a path."""
    return f"{check_id(youtube_id)}.mp4"


def record_path(out_dir: str | os.PathLike[str], youtube_id: str) -> Path:
    return Path(out_dir) / RECORDS_DIR / f"{check_id(youtube_id)}.json"


def write_record(out_dir: str | os.PathLike[str], row: LedgerRow) -> None:
    """Persist one video's row at once (atomic), so a killed run keeps it."""
    io.write_json(record_path(out_dir, row.youtube_id), row.to_dict())


def read_record(out_dir: str | os.PathLike[str], youtube_id: str) -> LedgerRow | None:
    """A video's last record, or None (absent or unreadable: treated as never downloaded)."""
    path = record_path(out_dir, youtube_id)
    try:
        return LedgerRow.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def write_ledger(path: str | os.PathLike[str], rows: list[LedgerRow]) -> None:
    """Atomically write the ledger, sorted by youtube_id."""
    ordered = sorted(rows, key=lambda r: r.youtube_id)
    columns = {f.name: [getattr(r, f.name) for r in ordered] for f in fields(LedgerRow)}
    io.write_parquet(path, pa.table(columns, schema=LEDGER_SCHEMA))


def read_ledger(path: str | os.PathLike[str]) -> list[LedgerRow]:
    """All rows of a ledger written by the download stage."""
    p = Path(path)
    if not p.is_file():
        from repurpose.errors import UserError

        raise UserError(f"{p}: download ledger not found (run `repurpose download` first)")
    return [LedgerRow.from_dict(d) for d in pq.read_table(p).to_pylist()]


def ok_videos(path: str | os.PathLike[str]) -> dict[str, LedgerRow]:
    """youtube_id -> row for the videos downloaded and verified; downstream skips the rest.

    Ids and file names of ok rows become paths downstream, so a ledger whose ok row has an
    unsafe id or a file name other than `<youtube_id>.<ext>` is refused (UserError)."""
    from repurpose.errors import UserError
    from repurpose.splits.schema import is_safe_id

    rows = {}
    for index, row in enumerate(read_ledger(path)):
        if not row.ok:
            continue
        if not is_safe_id(row.youtube_id):
            raise UserError(f"{path}: entry {index}: field 'youtube_id': unsafe id "
                            f"{row.youtube_id!r} (expected 11 characters of [A-Za-z0-9_-])")
        name = Path(row.file or "")
        if name.name != row.file or name.stem != row.youtube_id:
            raise UserError(f"{path}: entry {index} (youtube_id {row.youtube_id!r}): field "
                            f"'file': {row.file!r} is not '<youtube_id>.<ext>' in the folder")
        rows[row.youtube_id] = row
    return rows
