"""End to end: real `dvc repro` of the pipeline on a small sample, in a temporary repo copy."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import venv_env

pytestmark = pytest.mark.slow

SMALL_SAMPLE = {"n_videos": 3, "min_duration": 40, "max_duration": 60, "window_seconds": 30,
                "min_clip": 6, "max_clip": 12}


def dvc(args: list[str], repo: Path, timeout: float = 900) -> str:
    exe = str(Path(sys.executable).with_name("dvc"))
    env = venv_env()
    env.pop("PREFECT_API_URL", None)  # orchestration.prefect auto: run stages directly
    proc = subprocess.run([exe, *args], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def set_params(repo: Path, section: str, **values: object) -> None:
    """Edit params.yaml in the copy (comments are not needed there)."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def pipeline_repo(tmp_path_factory):
    from .conftest import copy_repo

    repo = copy_repo(tmp_path_factory.mktemp("e2e") / "repo")
    set_params(repo, "sample", **SMALL_SAMPLE)
    first = dvc(["repro"], repo)
    return repo, first


def test_repro_builds_every_stage(pipeline_repo):
    repo, first = pipeline_repo
    stages = set(dvc(["stage", "list", "--name-only"], repo).split())
    assert {"sample", "prepare", "download", "extract@visual", "train", "report"} <= stages
    assert ran_stages(first) == stages
    for split in ("train", "val", "test"):
        assert (repo / "data" / "datasets" / "sample" / f"{split}.json").is_file()
    assert (repo / "data" / "prepared" / "windows.parquet").is_file()
    assert (repo / "dvc.lock").is_file()
    from repurpose.download.ledger import ok_videos
    from repurpose.splits.tables import read_videos_table

    wanted = {v.youtube_id for v in read_videos_table(repo / "data/prepared/videos.parquet")}
    assert len(wanted) == SMALL_SAMPLE["n_videos"]
    ok = ok_videos(repo / "data/videos/ledger.parquet")
    assert set(ok) == wanted
    assert all((repo / "data/videos" / f"{yid}.mp4").is_file() for yid in wanted)
    for modality in ("visual", "audio", "text"):
        assert list((repo / "data/features" / modality).glob("part-*.parquet"))
    assert (repo / "models/model.safetensors").is_file()
    metrics = json.loads((repo / "metrics/test.json").read_text())
    assert set(metrics) >= {"precision", "recall", "f1", "map"}
    assert (repo / "reports/report.html").is_file()
    shown = dvc(["metrics", "show"], repo)
    assert "metrics/headline.json" in shown  # the averages; per-threshold detail in test.json


def test_second_repro_is_a_noop_and_dag_lists_stages(pipeline_repo):
    repo, _ = pipeline_repo
    again = dvc(["repro"], repo)
    assert ran_stages(again) == set()
    assert "Data and pipelines are up to date" in again
    dag = dvc(["dag"], repo)
    for stage in ("sample", "prepare"):
        assert stage in dag


def test_changing_a_param_reruns_only_what_depends_on_it(pipeline_repo):
    repo, _ = pipeline_repo
    set_params(repo, "prepare", splits=["train", "test"])
    out = dvc(["repro"], repo)
    assert "prepare" in ran_stages(out)
    assert "sample" not in ran_stages(out)
    import pyarrow.parquet as pq

    splits = set(pq.read_table(repo / "data/prepared/windows.parquet").column("split").to_pylist())
    assert splits == {"train", "test"}


def counts(output: str, prefix: str) -> tuple[int, int]:
    """(computed, reused) from a stage's summary line starting with `prefix`."""
    line = next(ln for ln in output.splitlines() if ln.startswith(prefix))
    found = re.search(r"(\d+) computed, (\d+) reused", line)
    assert found, line
    return int(found.group(1)), int(found.group(2))


def test_adding_a_video_recomputes_only_that_video(pipeline_repo):
    repo, _ = pipeline_repo
    n = SMALL_SAMPLE["n_videos"]
    set_params(repo, "prepare", splits=["train", "val", "test"])  # undo the test above
    set_params(repo, "sample", n_videos=n + 1)
    out = dvc(["repro"], repo)
    assert re.search(rf"download: {n + 1} videos: ok {n + 1} \(fetched 1, reused {n}\)", out)
    for prefix in ("transcribe", "extract visual", "extract audio", "embed_text"):
        assert counts(out, prefix) == (1, n), prefix
    # a visual param recomputes visual features only
    set_params(repo, "extract", visual={**yaml.safe_load(
        (repo / "params.yaml").read_text())["extract"]["visual"], "batch_size": 7})
    out = dvc(["repro"], repo)
    assert {"extract@visual"} <= ran_stages(out)
    assert not ran_stages(out) & {"sample", "prepare", "download", "transcribe",
                                  "extract@audio", "embed_text"}


def test_real_splits_imported_with_dvc_feed_prepare(repo_copy):
    from .conftest import SHARED_SPLITS

    if not (SHARED_SPLITS / "val.json").is_file():
        pytest.skip(f"real split files not present at {SHARED_SPLITS}")
    import os

    target = repo_copy / "data" / "datasets"
    target.mkdir(parents=True, exist_ok=True)
    source = os.path.relpath(SHARED_SPLITS, target)  # as `make repurpose10k` passes it
    dvc(["import-url", source, "data/datasets/repurpose10k"], repo_copy)
    assert (repo_copy / "data/datasets/repurpose10k.dvc").is_file()
    set_params(repo_copy, "prepare", dataset="repurpose10k", splits=["val", "test"])
    out = dvc(["repro", "prepare"], repo_copy)
    assert ran_stages(out) == {"prepare"}
    import pyarrow.parquet as pq

    windows = pq.read_table(repo_copy / "data/prepared/windows.parquet")
    assert windows.num_rows == 2234  # 2,243 entries less 9 exact duplicates
