"""Bit-reproducibility: two fresh runs in separate processes give byte-identical sample files
(videos, speech scripts, split JSON) and byte-identical feature shards (real espeak-ng, ffmpeg,
EfficientNet-Lite0 and log-mel)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, venv_env

pytestmark = pytest.mark.slow

SMALL = {
    "seed": 3,
    "n_videos": 3,
    "min_duration": 30,
    "max_duration": 40,
    "window_seconds": 20,
    "min_clip": 4,
    "max_clip": 9,
    "width": 192,
    "height": 108,
    "fps": 10,
}


def _params(path: Path) -> Path:
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["sample"].update(SMALL)  # other keys as params.yaml has them
    params["orchestration"]["prefect"] = False
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return path


def _repurpose(*args: str | Path, cwd: Path) -> None:
    cmd = [sys.executable, "-m", "repurpose.cli", *map(str, args)]
    done = subprocess.run(cmd, cwd=cwd, env=venv_env(PYTHONPATH=str(REPO_ROOT)),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".")}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sample pipeline run twice from scratch, each stage in its own process: run A with two
    worker threads (lines spoken in whatever order the threads get there), run B serially."""
    base = tmp_path_factory.mktemp("repro")
    params = _params(base / "params.yaml")
    roots = []
    for name, runner in (("a", "threads"), ("b", "serial")):
        root = base / name
        common = ["--params", params, "--task-runner", runner, "--workers", "2"]
        _repurpose("sample", "--out-splits", root / "splits", "--out-videos", root / "sv",
                   *common, cwd=base)
        _repurpose("prepare", "--splits-dir", root / "splits", "--out", root / "prepared",
                   *common, cwd=base)
        _repurpose("download", "--videos", root / "prepared" / "videos.parquet",
                   "--out", root / "videos", "--local-dir", root / "sv", *common, cwd=base)
        for modality in ("visual", "audio"):
            _repurpose("extract", "--modality", modality, "--videos", root / "videos",
                       "--ledger", root / "videos" / "ledger.parquet",
                       "--out", root / "features" / modality,
                       "--cache", root / "cache" / modality, *common, cwd=base)
        roots.append(root)
    return roots[0], roots[1]


def test_sample_videos_scripts_splits_and_tables_are_byte_identical(
        two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    for sub in ("sv", "splits", "prepared"):
        fa, fb = _files(a / sub), _files(b / sub)
        assert sorted(fa) == sorted(fb)
        assert len([n for n in fa if n.endswith(".mp4")]) == (3 if sub == "sv" else 0)
        assert fa, sub
        different = [name for name in fa if fa[name] != fb[name]]
        assert different == [], f"{sub}: files differ between two fresh runs: {different}"


def test_downloads_and_feature_shards_are_byte_identical(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    va, vb = _files(a / "videos"), _files(b / "videos")
    assert [n for n in va if n.endswith(".mp4")] == [n for n in vb if n.endswith(".mp4")]
    assert all(va[n] == vb[n] for n in va if n.endswith(".mp4"))
    for modality in ("visual", "audio"):
        fa, fb = _files(a / "features" / modality), _files(b / "features" / modality)
        shards = [n for n in fa if n.startswith("part-")]
        assert shards and sorted(fa) == sorted(fb)
        different = [name for name in shards if fa[name] != fb[name]]
        assert different == [], f"{modality}: shards differ between two fresh runs: {different}"
