"""Issue 12, the sample stage: what a killed run left half-written is removed at the next
start, and nothing else in its folders is touched."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from repurpose.runner import serial_map
from stages import sample as stage
from tests.conftest import REPO_ROOT

SMALL = {"seed": 4, "n_videos": 3, "min_duration": 30, "max_duration": 36,
         "window_seconds": 20, "min_clip": 4, "max_clip": 8, "width": 96, "height": 54,
         "fps": 5}


def test_rerun_after_a_kill_removes_its_temporary_files_only(tmp_path: Path) -> None:
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["sample"].update(SMALL)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    videos, splits = tmp_path / "videos", tmp_path / "splits"
    videos.mkdir()
    splits.mkdir()
    stale = [videos / ".sample00001.mp4.ab12cd34.tmp", videos / ".sample00002.k3j4h5g6.wav",
             videos / ".sample00003.script.json.zz99yy88.tmp", splits / ".val.json.q1w2e3r4.tmp"]
    keep = [videos / "notes.txt", videos / ".mine.abcdefgh.tmp", splits / "other.json"]
    for p in stale + keep:
        p.write_bytes(b"half")
    args = argparse.Namespace(params=str(path), out_splits=str(splits), out_videos=str(videos))
    assert stage.main(args, mapper=serial_map) == 0
    assert [p.name for p in stale if p.exists()] == []
    assert all(p.read_bytes() == b"half" for p in keep)
    assert len(list(videos.glob("sample*.mp4"))) == 3
