"""The arch registry: one key in params, CLI and API; every arch learns a tiny planted set."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from repurpose.evaluation.metrics import WindowResult, evaluate_windows
from repurpose.inference import predict_plans
from repurpose.model.postprocess import PostprocessConfig
from repurpose.model.registry import ARCHS, ModelSpec
from repurpose.params import ParamsError
from repurpose.quality.bench import Budget, bench_specs, per_second_auc
from repurpose.quality.planted import make_planted, small_spec
from repurpose.training.config import TrainConfig
from repurpose.training.index import index_features, load_plans
from repurpose.training.train import load_model, train_model

REPO = Path(__file__).resolve().parents[1]


def test_the_arch_key_is_the_same_in_params_cli_and_api() -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())["model"]
    assert params["arch"] in ARCHS
    assert set(params) - {"arch"} == set(ARCHS)  # a section per arch, nothing else
    from repurpose.training.ddp import add_train_arguments

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    choices = next(a.choices for a in parser._actions if a.dest == "arch")
    assert tuple(choices) == tuple(ARCHS)
    for key in ARCHS:  # the API takes the same key and reads that arch's own section
        spec = ModelSpec.from_section(params, key)
        assert spec.arch == key and ModelSpec.from_record(spec.to_record()) == spec
    with pytest.raises(ParamsError, match="model.arch: 'nope'"):
        ModelSpec.from_section(params, "nope")
    with pytest.raises(ParamsError, match="model.linear: unknown key"):
        ModelSpec.from_section({**params, "linear": {**params["linear"], "width": 3}}, "linear")


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small models: one thread is faster


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    spec = small_spec(counts={"train": 4, "val": 1, "test": 1}, max_window=300, min_window=150,
                      dims={"visual": 16, "audio": 16, "text": 16})
    return make_planted(tmp_path_factory.mktemp("planted"), "easy", spec)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_each_arch_overfits_a_tiny_planted_set(arch: str, planted, tmp_path: Path) -> None:  # noqa: ANN001
    spec = bench_specs(Budget(d_model=32))[arch]
    cfg = TrainConfig(seed=0, epochs=50 if arch == "mmct" else 30, warmup_epochs=1, batch_size=1,
                      lr=1e-2 if arch == "linear" else 3e-3, grad_clip=1.0,
                      patience=0, select_metric="map", device="cpu")
    post = PostprocessConfig(decoder="runs", smooth=5, cap=False)
    train_model(spec, cfg, post, (0.5, 0.6, 0.7, 0.8, 0.9), planted.windows, planted.features,
                planted.ledger, tmp_path, val_split="train", resume=False)
    net, info = load_model(tmp_path)
    assert info["model"]["arch"] == arch
    plans, _ = load_plans(planted.windows, "train", index_features(planted.features), None)
    segments, outputs = predict_plans(net, plans, str(planted.features), torch.device("cpu"),
                                      post)
    windows = [WindowResult(p.window.window_id, p.window.duration, segments[p.window.window_id],
                            np.asarray(p.window.clips)) for p in plans]
    metrics = evaluate_windows(windows)
    labels = np.concatenate([p.window.labels[: p.rows] for p in plans])
    scores = np.concatenate([outputs[i].scores for i in range(len(plans))])
    assert per_second_auc(labels, scores) > 0.95
    assert metrics["map"]["avg"] >= 0.9, metrics["map"]
