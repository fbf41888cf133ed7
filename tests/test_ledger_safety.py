"""A hand-edited ledger cannot make downstream stages read or write outside their folders."""

import pytest

from repurpose.download.ledger import LedgerRow, ok_videos, write_ledger
from repurpose.errors import UserError


def _ledger(tmp_path, **row):
    base = {"youtube_id": "abcdefghijk", "status": "ok", "file": "abcdefghijk.mp4"}
    path = tmp_path / "ledger.parquet"
    write_ledger(path, [LedgerRow(**{**base, **row})])
    return path


def test_ok_rows_are_returned(tmp_path):
    assert list(ok_videos(_ledger(tmp_path))) == ["abcdefghijk"]


@pytest.mark.parametrize("row, field", [
    ({"youtube_id": "../../etc/pw", "file": "../../etc/pw.mp4"}, "youtube_id"),
    ({"file": "../abcdefghijk.mp4"}, "file"),
    ({"file": "/etc/passwd"}, "file"),
    ({"file": "zzzzzzzzzzz.mp4"}, "file"),
])
def test_unsafe_ids_or_files_are_refused_naming_the_field(tmp_path, row, field):
    path = _ledger(tmp_path, **row)
    with pytest.raises(UserError, match=f"{path}: entry 0.*field '{field}'"):
        ok_videos(path)


def test_failed_rows_with_odd_ids_are_ignored(tmp_path):
    path = _ledger(tmp_path, youtube_id="bad id", status="skipped", file="")
    assert ok_videos(path) == {}
