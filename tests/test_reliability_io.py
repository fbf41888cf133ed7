"""Issue 12 item 2, the class: a staging folder a killed writer left beside a folder output
(e.g. `models/.last.XXXXXXXX.tmp`, seen after kill -9 of `repurpose train`) is removed by the
next write of that output; other hidden files are not."""

from __future__ import annotations

from pathlib import Path

from repurpose import io


def test_atomic_dir_removes_stale_staging_of_its_target_only(tmp_path: Path) -> None:
    stale = tmp_path / ".last.0hu78gml.tmp"
    stale.mkdir()
    (stale / ".state.pt.7gc3zf9q.tmp").write_bytes(b"")
    (stale / "model.safetensors").write_bytes(b"half")
    other = tmp_path / ".figures.abcdefgh.tmp"  # another output's staging: not ours
    other.mkdir()
    mine = tmp_path / ".notes.txt"
    mine.write_text("keep")
    with io.atomic_dir(tmp_path / "last") as tmp:
        (tmp / "state.pt").write_bytes(b"whole")
    assert (tmp_path / "last" / "state.pt").read_bytes() == b"whole"
    assert not stale.exists() and other.is_dir() and mine.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".figures.abcdefgh.tmp", ".notes.txt",
                                                           "last"]


def test_remove_stale_tmp_matches_only_temporary_names(tmp_path: Path) -> None:
    for name in (".a.parquet.x1y2z3w4.tmp", ".b.json.abcdefgh.tmp"):
        (tmp_path / name).write_bytes(b"")
    for name in ("a.parquet", ".hidden", ".c.json.tmp", ".d.TOOLONG99.tmp", "e.abcdefgh.tmp"):
        (tmp_path / name).write_bytes(b"")
    assert io.remove_stale_tmp(tmp_path, names=["a.parquet"]) == 1
    assert io.remove_stale_tmp(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".c.json.tmp", ".d.TOOLONG99.tmp", ".hidden", "a.parquet", "e.abcdefgh.tmp"]
