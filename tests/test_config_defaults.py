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


def test_sample_and_download_defaults_match_params_yaml() -> None:
    from repurpose.download.job import DownloadConfig
    from repurpose.sample.spec import SampleConfig

    assert config_from_section(SampleConfig, PARAMS["sample"], "sample") == SampleConfig()
    assert DownloadConfig.from_section(PARAMS["download"], check_source=False) == \
        DownloadConfig()
    with pytest.raises(ParamsError, match=r"params download: unknown key\(s\) local_dir"):
        DownloadConfig.from_section({**PARAMS["download"], "local_dir": "x"})  # a CLI flag


# every backend sub-section of params.yaml: (where, modality key for the registry)
BACKEND_SECTIONS = [(("extract", "visual"), "visual"), (("extract", "audio"), "audio"),
                    (("embed_text",), "text"), (("transcribe",), "asr")]


@pytest.mark.parametrize(("path", "modality"), BACKEND_SECTIONS,
                         ids=[".".join(p) for p, _ in BACKEND_SECTIONS])
def test_backend_defaults_match_params_yaml(path: tuple[str, ...], modality: str) -> None:
    """A key params.yaml sets to a backend's default value must be that value, so the
    backend used without that key (the API, `repurpose clip` without params) is the same."""
    from repurpose.asr.backends import asr_backend_class
    from repurpose.features.backends import backend_class

    for key, own in _section(path).items():
        if not isinstance(own, dict):
            continue
        cls = asr_backend_class(key) if modality == "asr" else backend_class(modality, key)
        differ = {k: (v, cls.defaults.get(k)) for k, v in own.items() if cls.defaults.get(k) != v}
        assert not differ, f"{'.'.join(path)}.{key}: params vs class default {differ}"


def test_clip_without_params_uses_the_params_yaml_batch_sizes() -> None:
    from repurpose.clip.features import NO_PARAMS_ASR_BATCH, SECTIONS

    assert PARAMS["transcribe"]["batch_size"] == NO_PARAMS_ASR_BATCH
    for modality, (path, _where, batch) in SECTIONS.items():
        assert batch == _section(path)["batch_size"], modality


@pytest.mark.parametrize(("path", "modality"), BACKEND_SECTIONS,
                         ids=[".".join(p) for p, _ in BACKEND_SECTIONS])
def test_feature_and_asr_sections_are_strict(path: tuple[str, ...], modality: str) -> None:
    from repurpose.asr.backends import asr_backend_from_section
    from repurpose.features.config import ModalityConfig

    where = ".".join(path)

    def read(section: dict) -> object:
        if modality == "asr":
            return asr_backend_from_section(section, where)
        return ModalityConfig.from_section(modality, section, where)

    section = dict(_section(path))
    read(section)  # params.yaml itself reads
    with pytest.raises(ParamsError, match=rf"params {where}: unknown key\(s\) batchsize"):
        read({**section, "batchsize": 8})
    with pytest.raises(ParamsError, match=rf"params {where}\.device: missing"):
        read({k: v for k, v in section.items() if k != "device"})
    with pytest.raises(ParamsError, match=rf"params {where}\.batch_size: expected"):
        read({**section, "batch_size": "8"})
    key = section["backend"]
    with pytest.raises(ParamsError, match=rf"params {where}\.{key}: unknown setting\(s\) wieghts"):
        read({**section, key: {**section[key], "wieghts": "x"}})


def test_stage_edge_sections_are_strict_and_default_like_params_yaml() -> None:
    from stages.prepare import PrepareConfig
    from stages.report import ReportConfig

    assert config_from_section(ReportConfig, PARAMS["report"], "report") == ReportConfig()
    with pytest.raises(ParamsError, match=r"params report: unknown key\(s\) timeline"):
        config_from_section(ReportConfig, {"timeline": 4}, "report")
    cfg = PrepareConfig.from_section(PARAMS["prepare"])
    assert cfg.splits == tuple(PARAMS["prepare"]["splits"])
    with pytest.raises(ParamsError, match=r"params prepare\.splits: expected a non-empty list"):
        PrepareConfig.from_section({**PARAMS["prepare"], "splits": []})
    with pytest.raises(ParamsError, match=r"params prepare\.dataset: missing"):
        PrepareConfig.from_section({"splits": ["test"]})
