"""Experiments and teams: DVC's generated .gitignore files ship with the repo, `dvc exp show`
is readable in 160 columns, `dvc metrics diff` / `dvc plots diff` work against HEAD, and an
experiment reruns only what depends on the changed param."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO_ROOT, copy_repo, venv_env
from .test_pipeline_e2e import SMALL_SAMPLE, dvc, set_params

HEADLINE = ("precision", "recall", "f1", "map")


def dvc_outs() -> list[tuple[str, bool]]:
    """(path, cached) of every stage output in dvc.yaml (foreach stages expanded)."""
    from dvc.repo import Repo

    repo = Repo(str(REPO_ROOT))
    return [(str(Path(out.fs_path).relative_to(REPO_ROOT)), bool(out.use_cache))
            for out in repo.index.outs]


def ignored(paths: list[str]) -> set[str]:
    proc = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=False)
    return set(proc.stdout.split())


def test_every_cached_output_is_ignored_by_a_shipped_gitignore() -> None:
    outs = dvc_outs()
    cached = [p for p, c in outs if c]
    assert "data/features/visual" in cached and "reports/report.html" in cached
    assert ignored(cached) == set(cached)
    for path in cached:  # DVC's own layout: '/<name>' in the parent's .gitignore
        gitignore = REPO_ROOT / Path(path).parent / ".gitignore"
        assert f"/{Path(path).name}" in gitignore.read_text().splitlines(), path
        tracked = subprocess.run(["git", "ls-files", "--error-unmatch", str(gitignore)],
                                 cwd=REPO_ROOT, capture_output=True, check=False)
        assert tracked.returncode == 0, f"{gitignore} is not committed"
    # outputs DVC leaves to git: metrics, plots and the resume state
    uncached = {p for p, c in outs if not c}
    assert {"metrics/headline.json", "metrics/test.json", "models/curves.csv"} <= uncached
    assert ignored(["models/last"]) == {"models/last"}  # resume state: never committed
    assert not ignored(["metrics/headline.json", "models/curves.csv"])


def test_only_the_headline_file_is_a_dvc_metric() -> None:
    doc = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    declared = [next(iter(m)) if isinstance(m, dict) else m
                for stage in doc["stages"].values() for m in stage.get("metrics", [])]
    assert declared == ["metrics/headline.json"]


def test_headline_stage_writes_the_four_averages(tmp_path: Path) -> None:
    from repurpose.cli import main

    full = {m: {"0.5": 0.9, "0.7": 0.5, "avg": 0.6} for m in HEADLINE}
    full["counts"] = {"windows": 3}
    src = tmp_path / "test.json"
    src.write_text(json.dumps(full))
    out = tmp_path / "headline.json"
    assert main(["headline", "--metrics", str(src), "--out", str(out), "--no-prefect"]) == 0
    assert json.loads(out.read_text()) == {m: 0.6 for m in HEADLINE}
    src.write_text(json.dumps({"precision": {"avg": 1}}))
    assert main(["headline", "--metrics", str(src), "--out", str(out), "--no-prefect"]) == 2


@pytest.mark.slow
def test_experiment_reruns_from_train_and_exp_show_fits_160_columns(tmp_path: Path) -> None:
    repo = copy_repo(tmp_path / "repo")
    set_params(repo, "sample", **SMALL_SAMPLE)
    set_params(repo, "train", epochs=6, warmup_epochs=1)  # two trainings: keep them short
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "commit", "-qam", "small sample"], cwd=repo, check=True)
    first = dvc(["repro"], repo, timeout=1500)
    # the .gitignore files DVC wants are already committed: at most dvc.lock is left to add
    # (it is committed with the sample once the sample is byte-reproducible)
    advice = re.findall(r"git add (.+)", first)
    assert all(set(a.split()) <= {"dvc.lock"} for a in advice), first
    # per-video stages report progress as plain lines when DVC captures their output
    n = SMALL_SAMPLE["n_videos"]
    for stage in ("download", "transcribe", "extract visual", "extract audio", "embed_text"):
        assert re.search(rf"^{stage}: {n}/{n} videos \(100%\), [\d.]+ videos/s, elapsed "
                         rf"\d:\d\d:\d\d, ETA", first, re.M), stage
    status = subprocess.run(["git", "status", "--porcelain", "-uall"], cwd=repo,
                            capture_output=True, text=True, check=True).stdout.split("\n")
    changed = sorted(line[3:] for line in status if line)
    assert changed == ["dvc.lock", "metrics/baselines.json", "metrics/headline.json",
                       "metrics/test.json", "metrics/test_buckets.json", "models/curves.csv"]
    subprocess.run(["git", "add", *changed], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "pipeline state"], cwd=repo, check=True)

    exp = dvc(["exp", "run", "-S", "train.lr=0.003", "--name", "lr3"], repo, timeout=1500)
    for stage in ("sample", "prepare", "download", "transcribe", "embed_text"):
        assert f"Stage '{stage}' didn't change, skipping" in exp, exp
    for stage in ("train", "predict", "evaluate"):  # from train on, everything reruns ...
        assert f"Running stage '{stage}'" in exp, exp
    # ... except what DVC finds unchanged (a tiny sample's metrics may not move with lr)
    assert ("Running stage 'headline'" in exp
            or "Stage 'headline' didn't change, skipping" in exp), exp

    env = {**venv_env(), "COLUMNS": "160", "LINES": "50"}
    exe = str(Path(sys.executable).with_name("dvc"))

    def header(*extra: str) -> str:
        shown = subprocess.run([exe, "exp", "show", "--no-pager", *extra], cwd=repo, env=env,
                               capture_output=True, text=True, check=True).stdout
        lines = shown.splitlines()
        assert all(len(line) <= 160 for line in lines), shown
        assert "lr3" in shown
        return next(line for line in lines if "Experiment" in line)

    before = json.loads(subprocess.run(["git", "show", "HEAD:metrics/headline.json"], cwd=repo,
                                       capture_output=True, text=True, check=True).stdout)
    after = json.loads((repo / "metrics" / "headline.json").read_text())
    moved = [m for m in HEADLINE if before[m] != after[m]]
    # --only-changed: metric columns first, then params, then the (wide) hashes of changed
    # dependencies, which may be cut to '…' at the right end
    only = header("--only-changed")
    assert " train.lr " in only, only
    for name in moved:  # every headline metric the experiment changed, uncut
        assert f" {name} " in only, only
    cut = only.find("…")
    assert cut == -1 or all(only.find(f" {m} ") < cut for m in (*moved, "train.lr")), only

    diff = dvc(["metrics", "diff", "HEAD", "--all"], repo)  # --all: unchanged ones too
    assert "failed to load" not in diff and "metrics/headline.json" in diff
    plots = dvc(["plots", "diff", "HEAD", "--json"], repo)
    assert "failed to load" not in plots and "models/curves.csv" in plots
