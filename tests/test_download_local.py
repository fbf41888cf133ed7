"""The download stage's `local` source (ffmpeg cuts of the user's files), the ledger API,
reuse checks (size + sha256 + range), dropped videos, and file verification."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

import stages.download as stage
from repurpose.download import ledger as L
from repurpose.download.errors import PermanentDownloadError, TransientDownloadError
from repurpose.download.job import DownloadConfig
from repurpose.download.local import find_local
from repurpose.download.verify import verify_media
from repurpose.io import sha256_file
from repurpose.media import probe
from repurpose.params import ParamsError
from repurpose.runner import serial_map
from repurpose.splits.tables import VideoRanges, write_videos_table
from tests.loopback import make_video

PARAMS = """download:
  source: local
  url_template: null
  format: "bv*[height<=360]+ba/b[height<=360]/b"
  retries: 1
  backoff_base: 0.01
  backoff_max: 1
  timeout: 30
  rate_limit_seconds: 0
  cookies_file: null
  max_failed_fraction: 0.5
  deadline: 120
  cut: {cut}
"""
GOP = 2.0  # make_video's keyframe interval (s)


def check_range(row: L.LedgerRow, path: Path, cut: str, start: float, stop: float) -> None:
    """The file covers [start, stop] of the source: exactly when re-encoded; from the keyframe
    before `start` (within one GOP) when stream-copied, with that start in the row."""
    duration = probe(path).duration
    assert (row.requested_start, row.cut) == (start, cut)
    if cut == "reencode":
        assert row.source_offset == start
        assert abs(duration - (stop - start)) <= 0.1  # exact cut
    else:
        assert start - GOP - 0.05 <= row.source_offset <= start, row
        assert abs(row.source_offset + duration - stop) <= 0.1, (row, duration)
    assert abs(row.duration - duration) < 1e-3


@pytest.fixture(scope="module")
def source_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("src") / "src.mp4", duration=20.0)


def setup(tmp: Path, src: Path, have: list[str], table: dict[str, tuple[float, float]],  # noqa: ANN201
          cut: str = "copy"):
    local = tmp / "local"
    local.mkdir(exist_ok=True)
    for vid in have:
        shutil.copyfile(src, local / f"{vid}.mp4")
    (tmp / "params.yaml").write_text(PARAMS.format(cut=cut), encoding="utf-8")
    write_videos_table(
        tmp / "videos.parquet",
        [VideoRanges(v, (hull,), ("test",), 1) for v, hull in table.items()],
    )
    return argparse.Namespace(
        params=str(tmp / "params.yaml"), videos=str(tmp / "videos.parquet"),
        out=str(tmp / "out"), local_dir=str(local), retry_failed=False,
    )


@pytest.mark.parametrize("cut", ["copy", "reencode"])
def test_local_cuts_reuse_refetch_and_drop(
    tmp_path: Path, source_video: Path, capsys: pytest.CaptureFixture, cut: str
) -> None:
    table = {
        "local000001": (5.0, 12.0),  # inside the 20 s file
        "local000002": (15.0, 25.0),  # runs past the end: what exists is recorded
        "missing0001": (0.0, 5.0),  # no file
    }
    args = setup(tmp_path, source_video, ["local000001", "local000002"], table, cut)
    assert stage.main(args, serial_map) == 0  # 1 of 3 failed: under 0.5
    out = tmp_path / "out"
    rows = {r.youtube_id: r for r in L.read_ledger(out / L.LEDGER_NAME)}

    one = rows["local000001"]
    assert (one.status, one.source, one.requested_end) == ("ok", "local", 12.0)
    check_range(one, out / "local000001.mp4", cut, 5.0, 12.0)
    assert one.has_audio and (one.width, one.height) == (320, 180)

    two = rows["local000002"]
    assert two.status == "ok" and two.requested_end == 25.0
    check_range(two, out / "local000002.mp4", cut, 15.0, 20.0)  # the source ends at 20 s

    gone = rows["missing0001"]
    assert (gone.status, gone.error_category, gone.attempts) == ("failed_permanent", "not_found", 1)
    assert "ok 2 (fetched 2, reused 0)" in capsys.readouterr().out

    ok = L.ok_videos(out / L.LEDGER_NAME)
    assert set(ok) == {"local000001", "local000002"}
    assert ok["local000001"].path_in(out) == out / "local000001.mp4"

    # Second run: nothing is cut again.
    mtime = (out / "local000001.mp4").stat().st_mtime_ns
    assert stage.main(args, serial_map) == 0
    assert "ok 2 (fetched 0, reused 2)" in capsys.readouterr().out
    assert (out / "local000001.mp4").stat().st_mtime_ns == mtime

    # A damaged file (same size, other bytes) is noticed by its sha256 and fetched again;
    # a changed range is fetched again; a video dropped from the table leaves the ledger.
    path = out / "local000002.mp4"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    del table["missing0001"]
    table["local000001"] = (2.0, 10.0)
    write_videos_table(
        tmp_path / "videos.parquet", [VideoRanges(v, (h,), ("test",), 1) for v, h in table.items()]
    )
    assert stage.main(args, serial_map) == 0
    assert "ok 2 (fetched 2, reused 0)" in capsys.readouterr().out
    rows = {r.youtube_id: r for r in L.read_ledger(out / L.LEDGER_NAME)}
    assert set(rows) == {"local000001", "local000002"}
    check_range(rows["local000001"], out / "local000001.mp4", cut, 2.0, 10.0)
    assert sha256_file(path) == rows["local000002"].sha256
    assert (out / L.RECORDS_DIR / "missing0001.json").is_file()  # records of dropped videos stay


def test_damaged_file_is_never_ok(tmp_path: Path, source_video: Path) -> None:
    # the user's file is cut short (moov first, so it still opens): cutting it fails verify
    data = source_video.read_bytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(TransientDownloadError) as err:
        verify_media(broken, expected=20.0)
    assert err.value.category in ("undecodable", "truncated")
    with pytest.raises(TransientDownloadError) as err:
        verify_media(tmp_path / "absent.mp4", expected=None)
    assert err.value.category == "undecodable"
    info = verify_media(source_video, expected=20.0)
    assert info.has_video and info.has_audio
    with pytest.raises(TransientDownloadError) as err:
        verify_media(source_video, expected=25.0)
    assert err.value.category == "truncated"


def test_find_local_and_config_errors(tmp_path: Path, source_video: Path) -> None:
    shutil.copyfile(source_video, tmp_path / "abcdefghijk.mkv")
    assert find_local(tmp_path, "abcdefghijk").name == "abcdefghijk.mkv"
    with pytest.raises(PermanentDownloadError):
        find_local(tmp_path, "zzzzzzzzzzz")
    with pytest.raises(ValueError):
        find_local(tmp_path, "../abcdefgh")
    section = {
        "source": "local", "url_template": None, "format": "b", "retries": 1,
        "backoff_base": 1, "backoff_max": 2, "timeout": 5, "rate_limit_seconds": 0,
        "cookies_file": None, "max_failed_fraction": 0.2, "deadline": 120, "cut": "copy",
    }
    assert DownloadConfig.from_section(section, str(tmp_path)).source == "local"
    with pytest.raises(ParamsError, match="--local-dir"):
        DownloadConfig.from_section(section, None)
    # repurpose clip reads the same section without the source checks (it fetches a URL)
    assert DownloadConfig.from_section(section, None, check_source=False).cut == "copy"
    with pytest.raises(ParamsError, match=r"download\.cut: 'exact' is not one of copy, reencode"):
        DownloadConfig.from_section({**section, "cut": "exact"}, str(tmp_path))
    with pytest.raises(ParamsError, match=r"download: unknown key\(s\) retires"):
        DownloadConfig.from_section({**section, "retires": 3}, str(tmp_path))
    with pytest.raises(ParamsError, match=r"download\.cut: missing"):
        DownloadConfig.from_section({k: v for k, v in section.items() if k != "cut"}, None,
                                    check_source=False)
    with pytest.raises(ParamsError, match="url_template"):
        DownloadConfig.from_section({**section, "source": "url"}, None)
    with pytest.raises(ParamsError, match="source"):
        DownloadConfig.from_section({**section, "source": "ftp"}, None)
    with pytest.raises(ParamsError, match="missing"):
        DownloadConfig.from_section({k: v for k, v in section.items() if k != "retries"}, None)
    with pytest.raises(ParamsError, match="cookies_file"):
        no_cookies = {**section, "cookies_file": str(tmp_path / "no")}
        DownloadConfig.from_section(no_cookies, str(tmp_path))


def test_records_roundtrip_and_unreadable_record(tmp_path: Path) -> None:
    row = L.LedgerRow("abcdefghijk", "ok", bytes=3, sha256="x", file="abcdefghijk.mp4")
    L.write_record(tmp_path, row)
    assert L.read_record(tmp_path, "abcdefghijk") == row
    L.record_path(tmp_path, "abcdefghijk").write_text("{not json", encoding="utf-8")
    assert L.read_record(tmp_path, "abcdefghijk") is None  # unreadable: treated as never done
    L.write_ledger(tmp_path / "ledger.parquet", [row, L.LedgerRow("zzzzzzzzzzz", "skipped")])
    assert [r.youtube_id for r in L.read_ledger(tmp_path / "ledger.parquet")] == [
        "abcdefghijk", "zzzzzzzzzzz"
    ]
    assert list(L.ok_videos(tmp_path / "ledger.parquet")) == ["abcdefghijk"]


def test_records_from_before_stream_copies_read_as_exact_cuts(
    tmp_path: Path, source_video: Path, capsys: pytest.CaptureFixture
) -> None:
    # a record and a ledger as the re-encoding version wrote them: no requested_start, no cut
    args = setup(tmp_path, source_video, ["local000001"], {"local000001": (5.0, 12.0)},
                 "reencode")
    assert stage.main(args, serial_map) == 0
    out = tmp_path / "out"
    record = L.record_path(out, "local000001")
    old = {k: v for k, v in json.loads(record.read_text()).items()
           if k not in ("requested_start", "cut")}
    record.write_text(json.dumps(old), encoding="utf-8")
    row = L.read_record(out, "local000001")
    assert (row.requested_start, row.cut, row.source_offset) == (5.0, "reencode", 5.0)
    # so the same exact cut is reused, and the new default (copy) fetches again
    assert stage.main(args, serial_map) == 0
    assert "ok 1 (fetched 0, reused 1)" in capsys.readouterr().out
    (tmp_path / "params.yaml").write_text(PARAMS.format(cut="copy"), encoding="utf-8")
    assert stage.main(args, serial_map) == 0
    assert "ok 1 (fetched 1, reused 0)" in capsys.readouterr().out
    assert L.read_record(out, "local000001").cut == "copy"
