"""Defaults live in one place: every config class's defaults are what `params.yaml` says."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from repurpose.evaluation.config import EvaluateConfig
from repurpose.model.config import ModelConfig
from repurpose.model.linear import LinearConfig
from repurpose.model.postprocess import PostprocessConfig
from repurpose.model.tal import TalConfig
from repurpose.params import ParamsError, config_from_section
from repurpose.training.config import TrainConfig

PARAMS = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
SECTIONS = [(TrainConfig, ("train",)), (EvaluateConfig, ("evaluate",)),
            (ModelConfig, ("model", "mmct")), (TalConfig, ("model", "tal")),
            (LinearConfig, ("model", "linear")), (PostprocessConfig, ("postprocess",))]
# The class defaults of `postprocess` are the reference protocol (what the benchmark and the
# reference comparisons build on); params.yaml picks the runs decoder. Nothing else may differ.
INTENDED = {"postprocess": {"decoder": "regression", "smooth": 1}}


def _section(path: tuple[str, ...]) -> dict:
    node = PARAMS
    for key in path:
        node = node[key]
    return node


@pytest.mark.parametrize(("cls", "path"), SECTIONS, ids=[".".join(p) for _, p in SECTIONS])
def test_class_defaults_match_params_yaml(cls: type, path: tuple[str, ...]) -> None:
    from_params = config_from_section(cls, _section(path), ".".join(path))
    defaults = cls()
    differ = {f.name: getattr(defaults, f.name) for f in dataclasses.fields(cls)
              if getattr(defaults, f.name) != getattr(from_params, f.name)}
    assert differ == INTENDED.get(".".join(path), {}), (
        f"{cls.__name__} defaults differ from params.yaml {'.'.join(path)}: "
        + ", ".join(f"{k}: class {v!r} vs params {getattr(from_params, k)!r}"
                    for k, v in differ.items()))


@pytest.mark.parametrize(("cls", "path"), SECTIONS, ids=[".".join(p) for _, p in SECTIONS])
def test_every_section_is_strict(cls: type, path: tuple[str, ...]) -> None:
    section = dict(_section(path))
    where = ".".join(path)
    with pytest.raises(ParamsError, match=rf"params {where}: unknown key\(s\) typo_key"):
        config_from_section(cls, {**section, "typo_key": 1}, where)
    first = next(iter(section))
    with pytest.raises(ParamsError, match=rf"params {where}\.{first}: missing"):
        config_from_section(cls, {k: v for k, v in section.items() if k != first}, where)
