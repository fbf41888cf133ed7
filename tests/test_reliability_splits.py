"""Issue 12, split files: `prepare` replaces only its own files and cleans up after a kill,
negative zero is one window, numbers have sane bounds, deep JSON is one clear line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from repurpose.cli import main as cli_main
from tests.conftest import REPO_ROOT, venv_env

GOOD = {
    "youtube_id": "abcdefghijk",
    "timeRange": [0, 100.0],
    "segments": [[10.5, 30.25], [50, 70]],
    "timeRangeOffset": [0, 100.0],
    "segmentsOffset": [[10.5, 30.25], [50, 70]],
    "coverage": 0.4,
}


def _params(path: Path, splits: list[str]) -> Path:
    path.write_text(yaml.safe_dump({
        "prepare": {"dataset": "t", "splits": splits},
        "orchestration": {"prefect": False, "task_runner": "serial"},
    }), encoding="utf-8")
    return path


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _prepare(tmp_path: Path, splits_dir: Path, out: Path, names: list[str]) -> int:
    params = _params(tmp_path / "params.yaml", names)
    return cli_main(["prepare", "--splits-dir", str(splits_dir), "--out", str(out),
                     "--params", str(params), "--no-prefect"])


# ---------------------------------------------------------------- items 1 and 2


def test_prepare_into_an_existing_folder_keeps_other_files(tmp_path: Path) -> None:
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "val.json").write_text(json.dumps([GOOD]), encoding="utf-8")
    out = tmp_path / "u"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("notes")
    (out / "sub" / "keep.txt").write_text("keep")
    (out / "windows.parquet").write_bytes(b"old, replaced")
    assert _prepare(tmp_path, splits, out, ["val"]) == 0
    assert (out / "notes.txt").read_text() == "notes"
    assert (out / "sub" / "keep.txt").read_text() == "keep"
    assert pq.read_table(out / "windows.parquet").num_rows == 1
    assert json.loads((out / "summary.json").read_text())["videos"] == 1
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_prepare_on_a_file_is_one_line_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "val.json").write_text(json.dumps([GOOD]), encoding="utf-8")
    out = tmp_path / "out"
    out.write_text("a file")
    assert _prepare(tmp_path, splits, out, ["val"]) == 2
    assert str(out) in _one_error_line(capsys.readouterr().err)
    assert out.read_text() == "a file"


def _big_split(path: Path, n: int) -> None:
    """`n` distinct valid entries: enough work that a kill lands while prepare writes."""
    entries = []
    for i in range(n):
        yid = f"v{i:010d}"
        entries.append({"youtube_id": yid, "timeRange": [0, 1800.0],
                        "segments": [[10.0 + k * 100, 40.0 + k * 100] for k in range(10)]})
    path.write_text(json.dumps(entries), encoding="utf-8")


def test_killed_prepare_leaves_nothing_the_next_run_does_not_remove(tmp_path: Path) -> None:
    splits = tmp_path / "splits"
    splits.mkdir()
    _big_split(splits / "val.json", 3000)
    params = _params(tmp_path / "params.yaml", ["val"])
    out = tmp_path / "prepared"
    (out).mkdir()
    (out / "notes.txt").write_text("mine")
    cmd = [sys.executable, "-m", "repurpose.cli", "prepare", "--splits-dir", str(splits),
           "--out", str(out), "--params", str(params), "--no-prefect"]
    env = venv_env(PYTHONPATH=str(REPO_ROOT))
    leftovers = False
    for attempt in range(6):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:  # wait for the staging folder
            if any(p.name.startswith(".staging.") for p in out.iterdir()):
                break
            time.sleep(0.005)
        time.sleep(0.05 * attempt)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        leftovers |= any(p.name.endswith(".tmp") for p in out.iterdir())
    assert leftovers, "no kill landed while prepare was writing: the test proved nothing"
    # an older version's sibling staging folder, as issue 12 found it
    legacy = tmp_path / ".prepared.abcd1234.tmp"
    legacy.mkdir()
    (legacy / "windows.parquet").write_bytes(b"partial")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert not legacy.exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert pq.read_table(out / "windows.parquet").num_rows == 3000


# ---------------------------------------------------------------- item 4: negative zero


def test_negative_zero_start_is_the_same_window_as_zero(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entry = {**GOOD, "timeRange": [-0.0, 100.0], "timeRangeOffset": [-0.0, 100.0]}
    splits = tmp_path / "splits"
    splits.mkdir()
    gt = splits / "val.json"
    gt.write_text(json.dumps([entry]), encoding="utf-8")
    assert "[-0.0, 100.0]" in gt.read_text()
    out = tmp_path / "prepared"
    assert _prepare(tmp_path, splits, out, ["val"]) == 0
    table = pq.read_table(out / "windows.parquet").to_pylist()
    assert table[0]["window_id"] == "abcdefghijk@0-100"
    assert str(table[0]["start"]) == "0.0"
    for window in ([0.0, 100.0], [-0.0, 100.0]):
        pred = tmp_path / "pred.jsonl"
        pred.write_text(json.dumps({"youtube_id": "abcdefghijk", "window": window,
                                    "segments": [[10.5, 30.25, 0.9]]}) + "\n")
        metrics = tmp_path / "m.json"
        params = str(_params(tmp_path / "p.yaml", ["val"]))
        assert cli_main(["evaluate", "--gt", str(gt), "--pred", str(pred), "--out", str(metrics),
                         "--params", params, "--no-prefect"]) == 0, capsys.readouterr().err
        assert json.loads(metrics.read_text())["counts"]["windows_with_predictions"] == 1


# ---------------------------------------------------------------- item 6: bounds


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"timeRange": [0, 1e308], "timeRangeOffset": [0, 1e308]}, "timeRange", "past 604800"),
    ({"timeRange": [0, 1e10], "timeRangeOffset": [0, 1e10]}, "timeRange", "past 604800"),
    ({"timeRange": [0, 90000.0], "timeRangeOffset": [0, 90000.0]}, "timeRange", "24 h"),
    ({"timeRange": [0, 10**400]}, "timeRange", "too large"),
    ({"segments": [[10.5, 1e308], [50, 70]]}, "segments[0]", "past 604800"),
    ({"coverage": 1e308}, "coverage", "above 1"),
])
def test_numbers_out_of_bounds_are_one_line_naming_file_entry_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict, field: str,
        words: str) -> None:
    splits = tmp_path / "splits"
    splits.mkdir()
    good = {**GOOD, "youtube_id": "zzzzzzzzzzz"}
    text = json.dumps([good, {**GOOD, **change}])
    (splits / "val.json").write_text(text, encoding="utf-8")
    for argv in (["validate", str(splits / "val.json")], None):
        out = tmp_path / "prepared"
        code = (cli_main(argv) if argv else _prepare(tmp_path, splits, out, ["val"]))
        assert code == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "val.json: entry 1 (youtube_id 'abcdefghijk')" in line
        assert f"field '{field}'" in line and words in line
        assert not out.exists() or not (out / "windows.parquet").exists()


def test_a_24_hour_window_is_accepted(tmp_path: Path) -> None:
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "val.json").write_text(json.dumps([{**GOOD, "timeRange": [0, 86400.0],
                                                  "timeRangeOffset": [0, 86400.0]}]))
    assert _prepare(tmp_path, splits, tmp_path / "out", ["val"]) == 0
    assert pq.read_table(tmp_path / "out" / "windows.parquet")["n_seconds"][0].as_py() == 86401


# ---------------------------------------------------------------- item 11: deep JSON


@pytest.fixture(scope="module")
def deep_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("deep") / "val.json"
    path.write_text("[" * 50_000_000)
    return path


def test_deep_json_in_validate_and_prepare_is_one_line(
        deep_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["validate", str(deep_file)]) == 2
    assert str(deep_file) in _one_error_line(capsys.readouterr().err)
    out = tmp_path / "prepared"
    assert _prepare(tmp_path, deep_file.parent, out, ["val"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(deep_file) in line and "nested too deeply" in line
    assert not out.exists()


def test_deep_unknown_field_that_parses_is_ignored(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    depth = sys.getrecursionlimit() - 50  # json.loads manages, re-encoding it may not
    path = tmp_path / "val.json"
    good = json.dumps(GOOD)[:-1]
    path.write_text(f'[{good}, "extra": ' + "[" * depth + "]" * depth + "}]")
    assert cli_main(["validate", str(path)]) == 0  # an unknown field is ignored, however deep
    assert "ok, 1 windows" in capsys.readouterr().out


@pytest.mark.parametrize("line", [
    '{"youtube_id": "abcdefghijk", "window": [0, 100], "segments": ' + "[" * 100_000,
    "[" * 1_000_000,
    '{"youtube_id": "abcdefghijk", "window": [0, 1' + "0" * 5000 + '], "segments": []}',
    '{"youtube_id": "abcdefghijk", "window": [0, 1e10], "segments": []}',
    '{"youtube_id": "abcdefghijk", "window": [0, 100], "segments": [[0, 1e300, 1]]}',
])
def test_bad_predictions_line_is_one_line_naming_file_and_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str) -> None:
    gt = tmp_path / "val.json"
    gt.write_text(json.dumps([GOOD]))
    pred = tmp_path / "pred.jsonl"
    pred.write_text('{"youtube_id": "abcdefghijk", "window": [0, 100], "segments": []}\n'
                    + line + "\n")
    out = tmp_path / "m.json"
    assert cli_main(["evaluate", "--gt", str(gt), "--pred", str(pred), "--out", str(out),
                     "--params", str(_params(tmp_path / "p.yaml", ["val"])), "--no-prefect"]) == 2
    assert f"{pred}:2:" in _one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_predictions_that_are_not_text_are_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = tmp_path / "val.json"
    gt.write_text(json.dumps([GOOD]))
    pred = tmp_path / "pred.jsonl"
    pred.write_bytes(b"\xff\xfe\x00garbage\n")
    assert cli_main(["evaluate", "--gt", str(gt), "--pred", str(pred),
                     "--params", str(_params(tmp_path / "p.yaml", ["val"])), "--no-prefect"]) == 2
    assert str(pred) in _one_error_line(capsys.readouterr().err)




def test_unwritable_output_folder_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = tmp_path / "val.json"
    gt.write_text(json.dumps([GOOD]))
    pred = tmp_path / "pred.jsonl"
    pred.write_text(json.dumps({"youtube_id": "abcdefghijk", "window": [0, 100],
                                "segments": []}) + "\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        code = cli_main(["evaluate", "--gt", str(gt), "--pred", str(pred),
                         "--out", str(locked / "m.json"),
                         "--params", str(_params(tmp_path / "p.yaml", ["val"])), "--no-prefect"])
    finally:
        locked.chmod(0o700)
    assert code == 2
    assert str(locked) in _one_error_line(capsys.readouterr().err)


def test_output_path_under_a_file_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = tmp_path / "val.json"
    gt.write_text(json.dumps([GOOD]))
    pred = tmp_path / "pred.jsonl"
    pred.write_text("")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    code = cli_main(["evaluate", "--gt", str(gt), "--pred", str(pred),
                     "--out", str(blocker / "m.json"),
                     "--params", str(_params(tmp_path / "p.yaml", ["val"])), "--no-prefect"])
    assert code == 2
    assert str(blocker) in _one_error_line(capsys.readouterr().err)
    assert blocker.read_text() == "a file, not a folder"
