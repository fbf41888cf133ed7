"""`repurpose validate` and the prepare stage on bad and good split files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repurpose.cli import main as cli_main

GOOD = {
    "youtube_id": "abcdefghijk",
    "timeRange": [0, 100.0],
    "segments": [[10.5, 30.25], [50, 70]],
    "timeRangeOffset": [0, 100.0],
    "segmentsOffset": [[10.5, 30.25], [50, 70]],
    "coverage": 0.4,
}


def entry(**changes):
    e = json.loads(json.dumps(GOOD))
    for k, v in changes.items():
        if v is KeyError:
            e.pop(k)
        else:
            e[k] = v
    return e


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


BAD_CASES = {
    "invalid_json": ('[{"youtube_id": "abcdefghijk",', None, "invalid JSON at line 1"),
    "not_a_list": ('{"youtube_id": "abcdefghijk"}', None, "top level must be a JSON list"),
    "missing_field": (None, entry(timeRange=KeyError), "field 'timeRange': missing"),
    "wrong_type_id": (None, entry(youtube_id=12345678901),
                      "field 'youtube_id': expected a string"),
    "wrong_type_range": (None, entry(timeRange="0-100"),
                         "field 'timeRange': expected [start, end]"),
    "bool_is_not_a_number": (None, entry(timeRange=[0, True]), "expected a number, got a boolean"),
    "nan": ('[{"youtube_id": "abcdefghijk", "timeRange": [0, NaN], "segments": [[1, 2]]}]',
            None, "field 'timeRange': NaN or infinite number"),
    "infinity": ('[{"youtube_id": "abcdefghijk", "timeRange": [0, 10], '
                 '"segments": [[1, Infinity]]}]', None, "field 'segments[0]': NaN or infinite"),
    "window_end_before_start": (None, entry(timeRange=[50, 50], timeRangeOffset=KeyError),
                                "field 'timeRange': end 50 <= start 50"),
    "clip_end_before_start": (None, entry(segments=[[30, 10]], segmentsOffset=KeyError),
                              "field 'segments[0]': end 10 <= start 30"),
    "clip_outside_window": (None, entry(segments=[[90, 120]], segmentsOffset=KeyError),
                            "field 'segments[0]': clip [90, 120] outside its window [0, 100]"),
    "empty_clips": (None, entry(segments=[], segmentsOffset=KeyError),
                    "field 'segments': empty clip list"),
    "unsafe_id": (None, entry(youtube_id="../../etc/passwd"), "field 'youtube_id': unsafe id"),
    "offsets_disagree": (None, entry(segmentsOffset=[[10.5, 30.25], [40, 70]]),
                         "field 'segmentsOffset[1]'"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_validate_rejects_bad_input_naming_file_entry_field(tmp_path, capsys, case):
    text, bad_entry, expected = BAD_CASES[case]
    if text is None:
        text = json.dumps([GOOD, bad_entry])  # the bad one is entry 1
    path = write(tmp_path / "val.json", text)
    assert cli_main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    assert expected in err
    if bad_entry is not None:
        assert "entry 1" in err and "entry 0" not in err


def test_every_problem_of_every_file_is_reported(tmp_path, capsys):
    a = write(tmp_path / "a.json", json.dumps([entry(youtube_id="bad"), entry(segments=[])]))
    b = write(tmp_path / "b.json", json.dumps([GOOD, entry(timeRange=[0, -1])]))
    assert cli_main(["validate", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "3 invalid value(s)" in err
    assert f"{a}: entry 0" in err and f"{a}: entry 1" in err and f"{b}: entry 1" in err


def test_duplicates_and_shared_ids_are_warnings(tmp_path, capsys):
    val = write(tmp_path / "val.json", json.dumps([GOOD, GOOD]))
    test = write(tmp_path / "test.json", json.dumps([entry(timeRange=[0, 120.0],
                                                            timeRangeOffset=[0, 120.0])]))
    assert cli_main(["validate", str(val), str(test)]) == 0
    out = capsys.readouterr().out
    assert "duplicate entries (kept once by prepare): val: 1" in out
    assert "ids shared between splits: test+val: 1" in out


def _params(tmp_path: Path, splits=("train", "val", "test")) -> Path:
    p = tmp_path / "params.yaml"
    p.write_text(
        "orchestration: {prefect: false, task_runner: serial}\n"
        f"prepare: {{dataset: mini, splits: [{', '.join(splits)}]}}\n",
        encoding="utf-8",
    )
    return p


def test_prepare_writes_nothing_on_bad_input(tmp_path, capsys):
    splits = tmp_path / "splits"
    splits.mkdir()
    write(splits / "train.json", json.dumps([GOOD]))
    write(splits / "val.json", json.dumps([GOOD]))
    write(splits / "test.json", json.dumps([entry(segments=[[1, 2], [3, float("nan")]])]))
    out = tmp_path / "prepared"
    out.mkdir()
    (out / "windows.parquet").write_bytes(b"previous result")
    rc = cli_main(["prepare", "--params", str(_params(tmp_path)), "--splits-dir", str(splits),
                   "--out", str(out)])
    assert rc == 2
    assert "test.json: entry 0 (youtube_id 'abcdefghijk'): field 'segments[1]'" in (
        capsys.readouterr().err
    )
    assert sorted(p.name for p in out.iterdir()) == ["windows.parquet"]
    assert (out / "windows.parquet").read_bytes() == b"previous result"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".prepared")]


def test_prepare_writes_windows_and_videos_tables(tmp_path):
    from repurpose.splits.tables import read_videos_table
    from repurpose.splits.windows import read_windows

    splits = tmp_path / "splits"
    splits.mkdir()
    late = entry(timeRange=[1800, 2400.0], timeRangeOffset=[0, 600.0],
                 segments=[[1810.5, 1830]], segmentsOffset=[[10.5, 30]])
    write(splits / "train.json", json.dumps([GOOD, late, GOOD]))
    write(splits / "val.json", json.dumps([entry(youtube_id="zyxwvutsrqp")]))
    write(splits / "test.json", json.dumps([entry(timeRange=[0, 1800.0],
                                                  timeRangeOffset=[0, 1800.0])]))
    out = tmp_path / "prepared"
    rc = cli_main(["prepare", "--params", str(_params(tmp_path)), "--splits-dir", str(splits),
                   "--out", str(out)])
    assert rc == 0
    windows = read_windows(out / "windows.parquet")
    assert [(w.split, w.window_id) for w in windows] == [
        ("test", "abcdefghijk@0-1800"),
        ("train", "abcdefghijk@0-100"),
        ("train", "abcdefghijk@1800-2400"),
        ("val", "zyxwvutsrqp@0-100"),
    ]
    late_w = windows[2]
    assert late_w.clips == ((10.5, 30.0),) and late_w.labels.shape == (601,)
    assert late_w.labels[10:31].all() and late_w.labels.sum() == 21
    videos = {v.youtube_id: v for v in read_videos_table(out / "videos.parquet")}
    assert videos["abcdefghijk"].ranges == ((0.0, 2400.0),)
    assert videos["abcdefghijk"].splits == ("test", "train")
    assert videos["abcdefghijk"].n_windows == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["splits"] == {"train": 2, "val": 1, "test": 1}
    assert summary["duplicates"] == {"train": 1, "val": 0, "test": 0}


def test_an_empty_split_file_is_one_clear_error(tmp_path, capsys):
    empty = tmp_path / "val.json"
    empty.write_text("[]")
    assert cli_main(["validate", str(empty)]) == 2  # was a ValueError traceback (found by fuzz)
    err = capsys.readouterr().err
    assert "no windows in these split files" in err and str(empty) in err
    assert "Traceback" not in err


def test_prepare_of_empty_split_files_is_one_clear_error(tmp_path, capsys):
    splits = tmp_path / "splits"
    splits.mkdir()
    for name in ("train", "val", "test"):
        (splits / f"{name}.json").write_text("[]")
    out = tmp_path / "out"
    argv = ["prepare", "--no-prefect", "--splits-dir", str(splits), "--out", str(out)]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "no windows in these split files" in err and "Traceback" not in err
    assert not (out / "windows.parquet").exists()
