"""Dataset over shards, funnel counts, batches, and resume after an interruption."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from repurpose.features.shards import FeatureMeta
from repurpose.splits.schema import SplitEntry
from repurpose.splits.windows import read_windows, windows_table, write_windows
from repurpose.training.checkpoint import load_weights
from repurpose.training.dataset import WindowDataset, collate, epoch_batches
from repurpose.training.index import (
    ModalityIndex,
    Span,
    index_features,
    load_plans,
    plan_windows,
    usable_videos,
)
from repurpose.training.loop import CURVES, TrainingInterrupted, lr_factor
from tests.synthetic_training import make_synthetic, train_from_params, write_params


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    root = tmp_path_factory.mktemp("small")
    return make_synthetic(root / "data", counts={"train": 6, "val": 2}, durations=(90, 140))


def test_funnel_skips_failed_and_missing_and_counts(small, caplog) -> None:  # noqa: ANN001
    modalities = index_features(small.features)
    ok = usable_videos(small.ledger)
    with caplog.at_level(logging.INFO):
        plans, funnel = load_plans(small.windows, "train", modalities, ok)
    assert funnel.windows == 8 and funnel.windows_not_downloaded == 1
    assert funnel.windows_missing == {"visual": 0, "audio": 1, "text": 0}
    assert funnel.windows_used == len(plans) == 6
    assert funnel.label_rows_dropped_expected == 6  # int(duration)+1 labels vs int(duration) rows
    assert small.failed_video not in {p.window.youtube_id for p in plans}
    assert small.missing_audio_video not in {p.window.youtube_id for p in plans}
    assert "1 not downloaded, 1 missing a modality (audio 1)" in caplog.text
    for p in plans:
        assert p.rows == len(p.window.labels) - 1


def test_no_ledger_means_no_check(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    with caplog.at_level(logging.WARNING):
        assert usable_videos(tmp_path / "none.parquet") is None
    assert "not checking download status" in caplog.text


def test_truncation_to_the_shortest_modality_is_counted(tmp_path: Path) -> None:
    entries = [SplitEntry("train", 0, "aaaaaaaaaaa", 10.0, 70.0, ((5.0, 20.0),)),
               SplitEntry("train", 1, "bbbbbbbbbbb", 0.0, 30.0, ((1.0, 12.0),))]
    write_windows(tmp_path / "w.parquet", windows_table(entries))
    windows = read_windows(tmp_path / "w.parquet", "train")
    meta = FeatureMeta("visual", "x", "w", 4)
    full = {"aaaaaaaaaaa": Span(0, 99), "bbbbbbbbbbb": Span(0, 29)}
    short = {"aaaaaaaaaaa": Span(0, 49), "bbbbbbbbbbb": Span(5, 29)}  # ends at 49; starts at 5
    mods = {"visual": ModalityIndex(tmp_path, meta, full),
            "audio": ModalityIndex(tmp_path, meta, short),
            "text": ModalityIndex(tmp_path, meta, full)}
    plans, funnel = plan_windows(windows, "train", mods, None)
    assert [(p.window.youtube_id, p.rows) for p in plans] == [("aaaaaaaaaaa", 40)]
    assert funnel.windows_truncated == 1 and funnel.rows_truncated["audio"] == 20
    assert funnel.windows_empty == 1  # bbb: audio starts after the window's first second
    assert any("truncated: 1 windows" in line for line in funnel.lines())
    gap = Span(0, 60, np.array([*range(0, 30), *range(31, 61)]))
    assert gap.rows(10, 70) == 20 and gap.rows(31, 40) == 9 and gap.rows(30, 40) == 0


def test_dataset_items_and_collate(small) -> None:  # noqa: ANN001
    plans, _ = load_plans(small.windows, "val", index_features(small.features), None)
    ds = WindowDataset(plans, small.features, cache_videos=1)
    item = ds[0]
    n = plans[0].rows
    assert item["visual"].shape == (n, 16) and item["audio"].shape == (n, 24)
    assert item["text"].dtype == torch.float32 and item["labels"].shape == (n,)
    assert torch.equal(item["labels"], torch.from_numpy(plans[0].window.labels[:n].astype(int)))
    batch = collate([ds[0], ds[1]])
    longest = max(plans[0].rows, plans[1].rows)
    assert batch["mask"].shape == (2, longest)
    assert batch["mask"].sum(1).tolist() == [plans[0].rows, plans[1].rows]
    assert batch["visual"][~batch["mask"]].abs().sum() == 0


def test_epoch_batches_seeded_and_shared_over_ranks() -> None:
    a = epoch_batches(10, 4, seed=1, epoch=0)
    assert a == epoch_batches(10, 4, seed=1, epoch=0)
    assert a != epoch_batches(10, 4, seed=1, epoch=1)
    assert sorted(i for b in a for i in b) == list(range(10))
    r0 = epoch_batches(10, 4, 1, 0, world=2, rank=0)
    r1 = epoch_batches(10, 4, 1, 0, world=2, rank=1)
    assert len(r0) == len(r1) == 3
    for full, x, y in zip(a, r0, r1, strict=True):
        assert sorted(x + y) == sorted(full)
    # a last batch smaller than the world is topped up so every rank steps together
    r = [epoch_batches(5, 4, 0, 0, world=3, rank=k) for k in range(3)]
    assert [len(b[-1]) for b in r] == [1, 1, 1]


def test_lr_warmup_then_cosine() -> None:
    assert lr_factor(0, 4, 20) == 0.25 and lr_factor(3, 4, 20) == 1.0
    assert lr_factor(4, 4, 20) == 1.0 and lr_factor(12, 4, 20) == pytest.approx(0.5)
    assert lr_factor(20, 4, 20) == pytest.approx(0.0)


def test_resume_after_interruption_reproduces_the_next_steps(small, tmp_path: Path) -> None:  # noqa: ANN001
    params = write_params(tmp_path / "params.yaml",
                          train={"epochs": 3, "batch_size": 2, "warmup_epochs": 1})
    args = (params, small.windows, small.features, small.ledger)
    straight = train_from_params(*args, tmp_path / "a")
    assert len(straight.step_losses) == 9  # 6 windows / batch 2 = 3 steps x 3 epochs
    with pytest.raises(TrainingInterrupted):
        train_from_params(*args, tmp_path / "b", stop_after_steps=7)  # crash inside epoch 3
    resumed = train_from_params(*args, tmp_path / "b")
    assert resumed.resumed_from_epoch == 2
    assert resumed.step_losses == straight.step_losses[6:]  # the same next steps, exactly
    wa = load_weights(tmp_path / "a" / "last" / "model.safetensors")
    wb = load_weights(tmp_path / "b" / "last" / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    best_a = load_weights(tmp_path / "a" / "model.safetensors")
    best_b = load_weights(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(best_a[k], best_b[k]) for k in best_a)

    def curves(folder: str) -> list[list[str]]:
        rows = (tmp_path / folder / CURVES).read_text().splitlines()
        return [r.split(",") for r in rows]  # no wall-clock column: whole rows match

    assert curves("a") == curves("b")
    # done already: a rerun trains nothing and restores deleted outputs from last/
    (tmp_path / "b" / "model.safetensors").unlink()
    again = train_from_params(*args, tmp_path / "b")
    assert again.step_losses == [] and (tmp_path / "b" / "model.safetensors").is_file()
    # other params: the checkpoint is not reused
    other = write_params(tmp_path / "other.yaml",
                         train={"epochs": 1, "batch_size": 2, "warmup_epochs": 1})
    fresh = train_from_params(other, *args[1:], tmp_path / "b")
    assert fresh.resumed_from_epoch is None and len(fresh.step_losses) == 3


def test_stage_flows_and_cli_registration() -> None:
    import importlib

    from flows.orchestrate import FLOWS
    from repurpose.cli import STAGES, build_parser

    for name in ("train", "predict", "evaluate", "report"):
        assert STAGES[name][0] == f"stages.{name}"
        assert importlib.import_module(STAGES[name][0]).main
        assert FLOWS[name].name == name
    help_text = build_parser().format_help()
    assert all(name in help_text for name in ("train", "predict", "evaluate", "report"))


def test_early_stopping_on_patience(small, tmp_path: Path) -> None:  # noqa: ANN001
    # a learning rate too small to change any val metric: epoch 1 stays the best
    params = write_params(tmp_path / "params.yaml",
                          train={"epochs": 20, "batch_size": 2, "warmup_epochs": 0,
                                 "lr": 1e-12, "patience": 2, "select_metric": "precision"})
    result = train_from_params(params, small.windows, small.features, small.ledger,
                               tmp_path / "m")
    assert len(result.history) == 3 and result.best["epoch"] == 1
    assert [row["best"] for row in result.history] == [1, 0, 0]
    again = train_from_params(params, small.windows, small.features, small.ledger,
                              tmp_path / "m")  # resumed: stopped already, trains nothing
    assert again.step_losses == [] and len(again.history) == 3


def test_training_shows_a_progress_bar_on_a_terminal_only(small, tmp_path: Path) -> None:  # noqa: ANN001
    import os
    import pty
    import subprocess
    import sys

    params = write_params(tmp_path / "params.yaml",
                          train={"epochs": 2, "batch_size": 2, "warmup_epochs": 0})
    cmd = [sys.executable, "-m", "repurpose.training.ddp", "--params", str(params),
           "--windows", str(small.windows), "--features", str(small.features),
           "--ledger", str(small.ledger)]
    leader, follower = pty.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 120 cols
    proc = subprocess.run([*cmd, "--out", str(tmp_path / "tty")], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=follower, timeout=300)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    tty = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    # the bar: "epoch 2/2:  33%|...| 1/3 [00:00<00:00, 9.1batch/s]". Which counts are drawn
    # depends on timing (tqdm redraws at most every 0.1 s; a fast epoch may skip to the end),
    # so check the bar's count-of-total and its rate unit, not one particular count
    assert "epoch 2/2" in tty and re.search(r"\d/3 \[", tty) and "batch/s" in tty, tty[-2000:]
    plain = subprocess.run([*cmd, "--out", str(tmp_path / "pipe")], capture_output=True,
                           text=True, timeout=300)
    assert plain.returncode == 0 and "batch/s" not in plain.stderr  # no bar in a log file
