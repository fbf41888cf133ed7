"""All offline modalities of one video in one pass: visual, audio, transcript and text.

The stages (`extract`, `transcribe`, `embed_text`) each open the file, probe it and decode what
they need. For one video at a time (single-video runs, the throughput benchmark) this pass
instead probes once, decodes each audio sample rate once (the ASR and a 16 kHz audio backend
share one decode), uses per-backend batch sizes, and runs two lanes: the visual lane (frames ->
visual model) and the audio lane (audio model, then ASR, then the text model on the
transcript), one after the other with the libraries' threads, or at the same time with few
threads each (`concurrent`; measured on 2 cores: no fewer CPU seconds, see params.yaml).

Only scheduling changes. Each modality is computed by the stage's own per-video function
(`extract_video`, `transcribe_video`, `embed_document`) under the stage's own cache key and
saved into the same cache layout as the stages (`<cache>/features/<modality>/<backend>/`,
`<cache>/transcripts/<backend>/`), so the numbers equal the stage-by-stage path (the one-pass
test checks it) and a later stage run reuses what this pass computed. Settings: params
`onepass` (not a stage's DVC params: how work is scheduled, never what is computed).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repurpose.asr.backends import SAMPLE_RATE, AsrBackend, asr_backend_from_section
from repurpose.asr.transcribe import (
    TranscribeJob,
    TranscribeResult,
    output_document,
    transcribe_video,
)
from repurpose.features.config import ModalityConfig
from repurpose.features.extract import ExtractJob, extract_video, video_key
from repurpose.features.text import EmbedJob, embed_document, text_key
from repurpose.media import MediaError, MediaInfo, probe
from repurpose.params import ParamsError, config_from_section, require
from repurpose.pervideo.decode import DecodedAudio
from repurpose.pervideo.inputs import VideoInput
from repurpose.pervideo.results import OK, Entry, check_positive_int, result_key


@dataclass(frozen=True)
class OnePassSettings:
    """Params `onepass`: how the pass schedules its work (never what it computes)."""

    concurrent: bool  # visual lane and audio lane in two threads at once
    torch_threads: int  # torch intra-op threads while the pass runs (0 = torch's default)
    asr_threads: int  # CTranslate2 threads of the ASR model (0 = its default, 4)
    batch_size: Mapping[str, int] = field(default_factory=dict)  # backend key -> batch size

    def batch_for(self, cfg: ModalityConfig) -> int:
        """The pass's batch size for a modality: its backend's entry, else the section's."""
        return int(self.batch_size.get(cfg.backend.key, cfg.batch_size))

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> OnePassSettings:
        """Strictly read params `onepass` (every key required, none unknown)."""
        if not isinstance(section, Mapping):
            raise ParamsError(f"params onepass: expected a mapping, got {section!r}")
        sizes = require(dict(section), "batch_size", dict, "onepass")
        batch = {str(k): check_positive_int(v, f"onepass.batch_size.{k}")
                 for k, v in sizes.items()}
        flat = {k: v for k, v in section.items() if k != "batch_size"}
        settings = config_from_section(cls, flat, "onepass", batch_size=batch)
        for name in ("torch_threads", "asr_threads"):
            if getattr(settings, name) < 0:
                raise ParamsError(f"params onepass.{name}: expected an integer >= 0, "
                                  f"got {getattr(settings, name)!r}")
        return settings


@dataclass(frozen=True)
class FeatureConfigs:
    """The stages' configuration of each modality for one pass (None = not wanted)."""

    visual: ModalityConfig | None = None
    audio: ModalityConfig | None = None
    asr: AsrBackend | None = None  # needed for text
    text: ModalityConfig | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any],
                    modalities: tuple[str, ...] = ("visual", "audio", "text")) -> FeatureConfigs:
        """Strictly read the sections the stages read (`extract.<m>`, `transcribe`,
        `embed_text`); text implies its transcript."""
        found: dict[str, Any] = {}
        for m in ("visual", "audio"):
            if m in modalities:
                found[m] = ModalityConfig.from_section(m, _section(params, "extract", m),
                                                       f"extract.{m}")
        if "text" in modalities:
            found["asr"] = asr_backend_from_section(_section(params, "transcribe"))
            found["text"] = ModalityConfig.from_section("text", _section(params, "embed_text"),
                                                        "embed_text")
        return cls(**found)


def _section(params: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    node: Any = params
    for i, key in enumerate(path):
        if not isinstance(node, Mapping) or not isinstance(node.get(key), Mapping):
            raise ParamsError(f"params {'.'.join(path[:i + 1])}: missing section")
        node = node[key]
    return node


@dataclass(frozen=True)
class OnePassJobs:
    """One video's work: a job per modality (None = not wanted), keyed like the stages."""

    video: VideoInput
    visual: ExtractJob | None = None
    audio: ExtractJob | None = None
    transcribe: TranscribeJob | None = None
    asr_weights: str = ""
    text: tuple[ModalityConfig, str, str] | None = None  # config, weights, cache root


@dataclass
class OnePassResult:
    """Each modality's outcome, the transcript, and the wall seconds each step took."""

    entries: dict[str, Entry] = field(default_factory=dict)  # visual | audio | text
    transcript: TranscribeResult | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall seconds


def plan(video: VideoInput, configs: FeatureConfigs, cache_dir: str | Path,
         settings: OnePassSettings) -> OnePassJobs:
    """The jobs of `video`, under the stages' cache keys, for each modality `configs` holds."""
    cache = Path(cache_dir)
    jobs: dict[str, Any] = {}
    for modality, cfg in (("visual", configs.visual), ("audio", configs.audio)):
        if cfg is not None:
            weights = cfg.backend.weights_identity()
            root = cache / "features" / modality / cfg.backend.key
            jobs[modality] = ExtractJob(video, cfg.backend, str(root),
                                        video_key(video, cfg, weights), cfg.dtype,
                                        settings.batch_for(cfg))
    if configs.text is not None:
        if configs.asr is None:
            raise ValueError("text features need an ASR backend (FeatureConfigs.asr)")
        asr = configs.asr
        if asr.key == "faster-whisper":
            asr = asr.replaced(cpu_threads=settings.asr_threads)
        weights = asr.weights_identity()
        tkey = result_key(modality="transcript", backend=asr.key, params=asr.params,
                          weights=weights, sha256=video.sha256,
                          source_offset=video.source_offset)
        jobs["transcribe"] = TranscribeJob(video, asr, str(cache / "transcripts" / asr.key), tkey)
        jobs["asr_weights"] = weights
        cfg = configs.text
        root = cache / "features" / "text" / cfg.backend.key
        cfg = cfg.with_batch_size(settings.batch_for(cfg))
        jobs["text"] = (cfg, cfg.backend.weights_identity(), str(root))
    return OnePassJobs(video, **jobs)


def run(jobs: OnePassJobs, settings: OnePassSettings) -> OnePassResult:
    """Compute every modality of one video (see the module docstring)."""
    result = OnePassResult()
    with _torch_threads(settings.torch_threads):
        try:
            info: MediaInfo | None = probe(jobs.video.path)
        except MediaError:
            info = None  # each step meets the error itself and records it as the stage does
        lanes = [lambda: _visual_lane(jobs, info, result), lambda: _audio_lane(jobs, info, result)]
        if settings.concurrent:
            _in_threads(lanes)
        else:
            for lane in lanes:
                lane()
    return result


def _visual_lane(jobs: OnePassJobs, info: MediaInfo | None, result: OnePassResult) -> None:
    if jobs.visual is not None:
        with _timed(result, "visual"):
            result.entries["visual"] = extract_video(jobs.visual, info=info)


def _audio_lane(jobs: OnePassJobs, info: MediaInfo | None, result: OnePassResult) -> None:
    """Audio model, ASR and text, sharing the 16 kHz decode where the rates agree."""
    v = jobs.video
    has_audio = info is not None and info.has_audio
    shared = None
    if has_audio and jobs.transcribe is not None:
        with _timed(result, "audio decode"):
            shared = DecodedAudio.decode(v.path, SAMPLE_RATE)
    if jobs.audio is not None:
        rate = jobs.audio.backend.sample_rate
        with _timed(result, "audio"):
            mine = shared if shared is not None and rate == SAMPLE_RATE else None
            result.entries["audio"] = extract_video(jobs.audio, audio=mine, info=info)
    if jobs.transcribe is None:
        return
    with _timed(result, "asr"):
        res = transcribe_video(jobs.transcribe, audio=shared, info=info)
    result.transcript = res
    if jobs.text is None or res.entry.status != OK:
        return
    cfg, weights, root = jobs.text
    asr = jobs.transcribe.backend
    doc = output_document(v, res, asr, jobs.asr_weights)
    job = EmbedJob(v.youtube_id, "", cfg.backend, root,
                   text_key(cfg, weights, res.entry.key, doc["rows"]), cfg.dtype, cfg.batch_size)
    with _timed(result, "text"):
        result.entries["text"] = embed_document(job, doc)


def _in_threads(lanes: list[Callable[[], None]]) -> None:
    """Run the lanes at once; re-raise the first error."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(lanes), thread_name_prefix="onepass") as pool:
        futures = [pool.submit(lane) for lane in lanes]
        for f in futures:
            f.result()


@contextlib.contextmanager
def _timed(result: OnePassResult, step: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        result.seconds[step] = result.seconds.get(step, 0.0) + time.perf_counter() - t0


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to `n` for the block (process-wide; 0 = left as it is)."""
    try:
        import torch
    except ImportError:
        yield
        return
    if n == 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
