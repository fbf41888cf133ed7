"""End to end on synthetic shards: train -> predict -> evaluate -> report through the CLI, the
model beating both baselines; and torchrun DDP with 2 CPU processes (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from repurpose.cli import main as cli
from repurpose.training.checkpoint import load_weights
from tests.synthetic_training import make_synthetic, write_params

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("e2e")
    data = make_synthetic(root / "data")
    params = write_params(root / "params.yaml")
    common = ["--params", str(params), "--no-prefect"]
    paths = ["--windows", str(data.windows), "--features", str(data.features),
             "--ledger", str(data.ledger)]
    assert cli(["train", *common, *paths, "--out", str(root / "models")]) == 0
    pred = root / "predictions" / "test.jsonl"
    assert cli(["predict", *common, *paths, "--model", str(root / "models"),
                "--split", "test", "--out", str(pred)]) == 0
    assert cli(["evaluate", *common, "--gt", str(data.splits["test"]), "--pred", str(pred),
                "--out", str(root / "metrics" / "test.json"),
                "--baselines-out", str(root / "metrics" / "baselines.json"),
                "--buckets-out", str(root / "metrics" / "test_buckets.json")]) == 0
    assert cli(["report", *common, *paths, "--metrics", str(root / "metrics" / "test.json"),
                "--baselines", str(root / "metrics" / "baselines.json"),
                "--buckets", str(root / "metrics" / "test_buckets.json"),
                "--curves", str(root / "models" / "curves.csv"), "--model",
                str(root / "models"), "--predictions", str(pred),
                "--out", str(root / "reports")]) == 0
    return root


@pytest.mark.slow
def test_model_beats_both_baselines(pipeline: Path) -> None:
    metrics = json.loads((pipeline / "metrics" / "test.json").read_text())
    base = json.loads((pipeline / "metrics" / "baselines.json").read_text())
    for metric in ("map", "precision"):
        for name in ("random", "even"):
            assert metrics[metric]["avg"] > base[name][metric]["avg"], (metric, name)
    assert metrics["precision"]["avg"] > 0.5


@pytest.mark.slow
def test_outputs_and_provenance(pipeline: Path) -> None:
    info = json.loads((pipeline / "models" / "model.json").read_text())
    assert info["features"]["visual"]["backend"] == "synthetic-visual"
    assert info["dims"] == {"visual": 16, "audio": 24, "text": 8}
    assert len(info["params_hash"]) == 64 and len(info["data_hash"]) == 64
    assert info["data"]["funnel"]["train"]["windows_used"] == 10
    assert info["best"]["epoch"] >= 1 and "val_map" in info["best"]
    header = (pipeline / "models" / "curves.csv").read_text().splitlines()[0]
    assert header.startswith("epoch,lr,train_loss")
    lines = (pipeline / "predictions" / "test.jsonl").read_text().splitlines()
    assert len(lines) == 6
    for line in lines:
        row = json.loads(line)
        assert set(row) == {"youtube_id", "window", "segments"}
        duration = row["window"][1] - row["window"][0]
        assert len(row["segments"]) >= 1 and all(0 <= s <= e <= duration
                                                 for s, e, _ in row["segments"])
    report = (pipeline / "reports" / "report.md").read_text()
    for section in ("Metrics by tIoU threshold", "By window length", "Training",
                    "Ground truth vs prediction",
                    "Data funnel", "beats both baselines"):
        assert section in report
    assert len(list((pipeline / "reports" / "figures").glob("*.png"))) == 4


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["mmct", "linear", "tal"])
def test_torchrun_ddp_two_processes_matches_one(tmp_path: Path, arch: str) -> None:
    data = make_synthetic(tmp_path / "data", counts={"train": 8, "val": 2}, durations=(80, 120),
                          extras=False)
    params = write_params(tmp_path / "params.yaml",
                          train={"epochs": 2, "batch_size": 4, "warmup_epochs": 1})
    args = ["--params", str(params), "--windows", str(data.windows), "--features",
            str(data.features), "--ledger", str(data.ledger), "--arch", arch]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "repurpose.training.ddp", *args, "--out", str(tmp_path / "ddp")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "train (ddp, 2 processes)" in run.stdout
    single = subprocess.run(
        [sys.executable, "-m", "repurpose.training.ddp", *args, "--out", str(tmp_path / "one")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    info = json.loads((tmp_path / "ddp" / "model.json").read_text())
    assert info["world_size"] == 2 and info["epochs_trained"] == 2
    assert info["model"]["arch"] == arch
    # global batch 4 = 2 x 2 per process: the same gradients as one process, up to float noise
    a = load_weights(tmp_path / "ddp" / "last" / "model.safetensors")
    b = load_weights(tmp_path / "one" / "last" / "model.safetensors")
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-3, worst
