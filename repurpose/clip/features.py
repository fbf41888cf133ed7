"""Per-second features of one new video, computed exactly as the model was trained.

The model's `model.json` records, per modality, the backend key, its weights identity, dim,
dtype and the backend params that change the numbers. The sections given to the extract and
embed_text code here are rebuilt from that record, not from params.yaml: params.yaml only says
where the weights live (keys the record does not hold, such as `weights`), and the device and
batch size. After building each backend its dim, params and weights identity are checked against
the record, so a different backend, setting or checkpoint is a clear error naming the params
key instead of features of the wrong kind or dimension. Missing weights raise the backends' own
`WeightsMissing` (naming the key and where to get the file).

Work and caches (under `<out>/.work/`): `cache/<kind>/<backend>/<video id>/<key>.*` hold the
per-video results of the transcribe, extract and embed_text code (keys: the file's sha256 +
backend, params, weights), and `videos/<video id>/` the shards and transcript built from them.
A rerun with other export options recomputes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from repurpose.errors import UserError
from repurpose.model.config import MODALITIES
from repurpose.params import ParamsError
from repurpose.pervideo.results import STATUS_FILE, RunReport
from repurpose.runner import serial_map

if TYPE_CHECKING:
    from repurpose.asr.backends import AsrBackend
    from repurpose.features.config import ModalityConfig

log = logging.getLogger(__name__)

# modality -> (path of its params section, where-name in messages, batch size with no params
# file: the repo's params.yaml values, which tests/test_config_defaults.py checks)
SECTIONS: dict[str, tuple[tuple[str, ...], str, int]] = {
    "visual": (("extract", "visual"), "extract.visual", 32),
    "audio": (("extract", "audio"), "extract.audio", 64),
    "text": (("embed_text",), "embed_text", 64),
}
NO_PARAMS_ASR_BATCH = 8  # transcribe.batch_size with no params file (params.yaml's, checked)
EXTRA_PARAMS = ("asr",)  # recorded beside the backend params, not settings of the backend
CACHE = "cache"
VIDEOS = "videos"


def params_section(params: dict[str, Any], modality: str) -> dict[str, Any]:
    """The modality's section of params.yaml ({} if absent)."""
    node: Any = params
    for key in SECTIONS[modality][0]:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def model_section(modality: str, recorded: dict[str, Any], params: dict[str, Any]
                  ) -> dict[str, Any]:
    """A params section for `modality` that builds the backend the model was trained with.

    Backend key and settings from the model's record; settings the record lacks (the weights
    location) from params.yaml's sub-section of that backend, else the backend's default."""
    from repurpose.features.backends import backend_class

    key = recorded.get("backend")
    try:
        cls = backend_class(modality, str(key))
    except ParamsError as exc:
        raise UserError(f"the model was trained on {modality} features of backend {key!r}, "
                        f"which cannot be computed for a new video ({exc})") from exc
    local = params_section(params, modality)
    own = local.get(cls.key) if isinstance(local.get(cls.key), dict) else {}
    rec_params = recorded.get("params") or {}
    settings = {k: v for k, v in rec_params.items() if k in cls.defaults}
    for k, v in cls.unkeyed_defaults.items():  # absent from the record: it was the default
        settings.setdefault(k, v)
    for k in cls.defaults:
        if k not in settings and k in own:
            settings[k] = own[k]
    return {
        "backend": cls.key,
        cls.key: settings,
        "device": local.get("device", "auto"),
        "batch_size": local.get("batch_size", SECTIONS[modality][2]),
        "dtype": recorded.get("dtype", "float16"),
        "n_shards": 1,
    }


def check_backend(modality: str, section: dict[str, Any], recorded: dict[str, Any]
                  ) -> ModalityConfig:
    """The modality's config from `section`, its backend checked against the model's record
    (dim, params, weights identity)."""
    from repurpose.features.config import ModalityConfig

    where = SECTIONS[modality][1]  # the params section named in errors
    cfg = ModalityConfig.from_section(modality, section, where)
    backend = cfg.backend
    weights = backend.weights_identity()  # WeightsMissing names the key if they are absent
    problems = []
    if int(backend.dim) != int(recorded.get("dim", -1)):
        problems.append(f"dim {backend.dim} != {recorded.get('dim')}")
    rec_params = {k: v for k, v in (recorded.get("params") or {}).items()
                  if k not in EXTRA_PARAMS}
    now = json.loads(json.dumps(backend.params))
    if now != rec_params:
        diff = sorted(k for k in set(now) | set(rec_params) if now.get(k) != rec_params.get(k))
        problems.append("params differ (" + ", ".join(
            f"{k}: {rec_params.get(k)!r} -> {now.get(k)!r}" for k in diff) + ")")
    if weights != recorded.get("weights"):
        problems.append(f"weights {recorded.get('weights')} (trained) -> {weights} "
                        f"(params {where}.{backend.key}: set the weights the model was "
                        f"trained with)")
    if problems:
        raise UserError(f"{modality} backend {backend.key} as configured differs from the one "
                        f"the model was trained with: " + "; ".join(problems))
    return cfg


def asr_backend(params: dict[str, Any]) -> AsrBackend:
    """The ASR backend of params `transcribe` (read strictly); with no such section, Whisper
    tiny.en from its package with the backend's defaults."""
    from repurpose.asr.backends import asr_backend_from_section, get_asr_backend

    if "transcribe" in params:
        return asr_backend_from_section(params["transcribe"])
    return get_asr_backend("faster-whisper", {}, batch_size=NO_PARAMS_ASR_BATCH)


@dataclass(frozen=True)
class FeatureSetup:
    """How `repurpose clip` computes features: each modality's config as the model was
    trained (checked against its record), and the ASR backend."""

    configs: dict[str, ModalityConfig]  # visual | audio | text
    asr: AsrBackend
    asr_id: str  # backend@weights identity, recorded in the manifest


def feature_setup(model_info: dict[str, Any], params: dict[str, Any]) -> FeatureSetup:
    """The configs of `model.json`'s feature record plus params' weights locations, device and
    batch sizes; fails before any work on a mismatch or missing weights."""
    recorded = model_info.get("features") or {}
    missing = [m for m in MODALITIES if m not in recorded]
    if missing:
        raise UserError(f"model.json records no feature backend for {', '.join(missing)}")
    configs = {m: check_backend(m, model_section(m, recorded[m], params), recorded[m])
               for m in MODALITIES}
    asr = asr_backend(params)
    asr_id = f"{asr.key}@{asr.weights_identity()}"
    trained_asr = (recorded["text"].get("params") or {}).get("asr")
    if trained_asr and asr_id not in trained_asr:
        log.warning("transcribing with %s; the model's text features came from %s",
                    asr_id, ", ".join(trained_asr))
    return FeatureSetup(configs, asr, asr_id)


@dataclass
class ClipWork:
    """Where one video's work lies, and what each step did."""

    folder: Path  # <work>/videos/<video id>
    features: Path  # folder of the visual/audio/text shard folders
    transcript: dict[str, Any]  # the stored transcript document (absolute = file seconds)
    reports: list[tuple[str, RunReport]] = field(default_factory=list)
    asr: str = ""  # backend@weights of the transcription

    def lines(self) -> list[str]:
        """The steps' summaries (computed / reused counts)."""
        out = []
        for step, report in self.reports:
            for line in report.lines():
                out.append(f"{step} {line}" if not line.startswith(" ") else line)
        return out


def _check_report(report: RunReport, out_dir: Path, step: str, name: str) -> None:
    """A UserError naming the input if the step failed for the video."""
    if report.errors:
        raise UserError(f"{name}: {step} failed: " + "; ".join(report.errors[:3]))
    if sum(report.failed.values()):
        reason, message = ", ".join(sorted(report.failed)), ""
        try:
            rows = pq.read_table(out_dir / STATUS_FILE).to_pylist()
            message = "; ".join(r["message"] for r in rows if r["status"] != "ok" and
                                r["message"])
        except OSError:
            pass
        raise UserError(f"{name}: {step} failed ({reason}){': ' + message if message else ''}")


def compute_features(source, setup: FeatureSetup, work: Path,  # noqa: ANN001
                     progress: Callable[[str], None] = lambda step: None) -> ClipWork:
    """Transcript and the three modalities' shards of `source` (a `source.Source`), as the
    model was trained; every result reused from the cache when the file and backend match."""
    from repurpose.asr.transcribe import run_transcribe
    from repurpose.features.extract import run_extract
    from repurpose.features.text import run_embed_text

    configs, asr = setup.configs, setup.asr
    video = source.video_input()
    name = source.input
    cache = work / CACHE
    folder = work / VIDEOS / source.video_id
    features = folder / "features"
    result = ClipWork(folder, features, {}, asr=setup.asr_id)

    progress("transcribe")
    out = folder / "transcripts"
    report = run_transcribe(asr, [video], out, cache / "transcripts", serial_map)
    _check_report(report, out, "transcription", name)
    result.reports.append(("transcribe", report))
    doc_path = out / f"{video.youtube_id}.json"
    result.transcript = json.loads(doc_path.read_text(encoding="utf-8"))

    for m in ("visual", "audio"):
        progress(m)
        report = run_extract(configs[m], [video], features / m, cache / m, serial_map)
        _check_report(report, features / m, f"{m} extraction", name)
        result.reports.append(("extract", report))

    progress("text")
    report = run_embed_text(configs["text"], [video], out, features / "text", cache / "text",
                            serial_map)
    _check_report(report, features / "text", "text embedding", name)
    result.reports.append(("embed_text", report))
    return result
