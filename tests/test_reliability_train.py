"""Issue 12, must-have 3 for `repurpose train`: killed at random points (SIGTERM, SIGINT,
SIGKILL) on a small synthetic dataset, the rerun resumes from `models/last/`, finishes, leaves
no temporary files, and ends with exactly the model of a run that was never interrupted."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.synthetic_training import make_synthetic, write_params

pytestmark = pytest.mark.slow

EPOCHS = 8


def _cmd(data, params: Path, out: Path) -> list[str]:  # noqa: ANN001
    return [sys.executable, "-m", "repurpose.cli", "train", "--windows", str(data.windows),
            "--features", str(data.features), "--ledger", str(data.ledger), "--out", str(out),
            "--params", str(params), "--no-prefect"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1"}  # the same thread count in every run: bit-identical steps


def _curves(out: Path) -> list[list[str]]:
    rows = (out / "curves.csv").read_text().splitlines()
    return [r.split(",")[:-1] for r in rows]  # all but the wall-clock seconds


def test_train_killed_at_random_points_resumes_and_finishes(tmp_path: Path) -> None:
    data = make_synthetic(tmp_path / "data", counts={"train": 6, "val": 2},
                          durations=(90, 140))
    params = write_params(tmp_path / "params.yaml",
                          train={"epochs": EPOCHS, "batch_size": 2, "warmup_epochs": 1})
    straight = tmp_path / "straight"
    done = subprocess.run(_cmd(data, params, straight), cwd=REPO_ROOT, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    out = tmp_path / "models"
    rng = random.Random(5)
    landed = 0
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
        proc = subprocess.Popen(_cmd(data, params, out), cwd=REPO_ROOT, env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        limit = time.monotonic() + 120
        while time.monotonic() < limit and proc.poll() is None:  # until an epoch is saved
            if (out / "last").exists() or (out / "curves.csv").exists():
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.0))
        if proc.poll() is None:
            proc.send_signal(sig)
            landed += 1
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err or sig == signal.SIGINT, err[-3000:]
    assert landed >= 2, "training finished before the signals: the test proved nothing"

    done = subprocess.run(_cmd(data, params, out), cwd=REPO_ROOT, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed after epoch" in done.stdout, done.stdout
    assert _curves(out) == _curves(straight)  # every epoch once, with the same numbers
    assert (out / "model.safetensors").read_bytes() == (
        straight / "model.safetensors").read_bytes()
    leftovers = [p.name for p in out.rglob("*") if p.name.endswith(".tmp")]
    leftovers += [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
