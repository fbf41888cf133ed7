"""Visual and audio extraction: per-video work (run through the stage's mapper) and the run.

Per video (`extract_video`, a module-level function of one picklable `ExtractJob`):
probe the file, derive its rows (`inputs.row_range`), decode once (frames at `t + 0.5`, or audio
seconds `[t, t + 1)`), embed in batches, store `[n_rows, dim]` in the cache. Oddities that are
handled are flags on an ok result; files that cannot give features are failed results with a
reason. Both are cached (they are properties of the file); other exceptions are not.

Flags: `shorter_than_ledger` (the file lasts over 1 s less than the ledger says; rows follow the
file), `truncated` (the stream stops over 1 s before the file's duration; the rows stop there),
`vfr` (variable frame rate: handled, frames go by timestamp), `odd_resolution` (odd width or
height: handled), `decode_errors` (some packets could not be decoded and were skipped),
`no_audio` (no audio stream: audio rows are zero vectors), `silent` (no second louder than
-60 dBFS), `short_video` (under one second). Failure reasons: `undecodable`, `no_video`,
`too_short` (no row: under half a second), `non_finite` (the backend gave NaN or infinite
vectors, or values beyond the stored dtype's range: nothing is stored), `missing_file` (listed
in the ledger, not on disk; not cached), `error` (anything else; not cached, retried).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repurpose import io
from repurpose.features.assembly import finish
from repurpose.features.backends import Backend
from repurpose.features.config import ModalityConfig
from repurpose.features.shards import FeatureMeta
from repurpose.media import MediaError, MediaInfo, probe
from repurpose.params import ParamsError
from repurpose.pervideo.decode import (
    AudioStats,
    DecodedAudio,
    DecodeError,
    FrameStats,
    audio_seconds,
    batched,
    decode_frames,
    prefetch,
)
from repurpose.pervideo.engine import cached_or_compute, missing_file, undecodable
from repurpose.pervideo.inputs import VideoInput, media_flags, row_range
from repurpose.pervideo.results import (
    FAILED,
    OK,
    Entry,
    ResultCache,
    RunReport,
    remove_stale,
    result_key,
)
from repurpose.runner import Mapper

log = logging.getLogger(__name__)

EXTRACT_MODALITIES = ("visual", "audio")


@dataclass(frozen=True)
class ExtractJob:
    """Everything one video's extraction needs (picklable)."""

    video: VideoInput
    backend: Backend
    cache_root: str
    key: str
    dtype: str
    batch_size: int

    @property
    def youtube_id(self) -> str:
        return self.video.youtube_id


def job_name(job: Any) -> str:
    """Mapper key / task name of a per-video job."""
    return job.youtube_id


def video_key(video: VideoInput, cfg: ModalityConfig, weights: str) -> str:
    return result_key(modality=cfg.modality, backend=cfg.backend.key,
                      params=cfg.backend.params, weights=weights, dtype=cfg.dtype,
                      sha256=video.sha256, source_offset=video.source_offset)


def extract_video(job: ExtractJob, audio: DecodedAudio | None = None,
                  info: MediaInfo | None = None) -> Entry:
    """Compute one video's vectors for one modality and cache them; return the outcome.
    `audio` / `info`: the file's audio at the backend's rate and its probe, when a caller
    decoded them once for several models (the same numbers as decoding here)."""
    cache = ResultCache(job.cache_root)
    v = job.video
    try:
        entry, array = _extract(job, audio, info)
    except MediaError as exc:  # permanent: a property of the file, cached
        entry, array = undecodable(v, job.key, exc), None
    return cache.save(entry, array)  # a non-finite result comes back as failed


def _extract(job: ExtractJob, audio: DecodedAudio | None,
             info: MediaInfo | None) -> tuple[Entry, np.ndarray | None]:
    v, backend = job.video, job.backend
    info = info or probe(v.path)
    flags = media_flags(v, info)
    first, stop = row_range(v.source_offset, info.duration)
    n = stop - first

    def failed(reason: str, message: str) -> tuple[Entry, None]:
        return Entry(v.youtube_id, job.key, FAILED, reason=reason, flags=tuple(flags),
                     message=message), None

    if n <= 0:
        return failed("too_short", f"{info.duration:.3f} s: no second has its midpoint inside")
    out = np.zeros((n, backend.dim), np.float32)  # [n_rows, dim]
    got = np.zeros(n, bool)  # [n_rows] row decoded
    if backend.modality == "visual":
        if not info.has_video:
            return failed("no_video", "the file has no video stream")
        _visual_rows(job, info, first, out, got, flags)
    else:
        _audio_rows(job, info, first, out, got, flags, audio)
    kept = _kept_rows(got)
    if kept == 0:
        return failed("undecodable", "no row could be decoded")
    if kept < n:
        flags.append("truncated")
    entry = Entry(v.youtube_id, job.key, OK, flags=tuple(sorted(set(flags))), first_t=first,
                  n_rows=kept, dim=backend.dim)
    with np.errstate(over="ignore"):  # overflow becomes inf: refused by cache.save
        return entry, out[:kept].astype(job.dtype)


def _visual_rows(job: ExtractJob, info: MediaInfo, first: int, out: np.ndarray,
                 got: np.ndarray, flags: list[str]) -> None:
    """Fill `out` [n_rows, dim] with the frame vectors (frame shown at each row's midpoint)."""
    v, backend = job.video, job.backend
    if info.width % 2 or info.height % 2:
        flags.append("odd_resolution")
    times = first + np.arange(len(out)) + 0.5 - v.source_offset  # [n_rows] file times
    stats = FrameStats()
    frames = decode_frames(v.path, times, backend.geometry, stats, lead_hold=np.inf)
    for idx, batch in prefetch(batched(frames, job.batch_size)):  # batch: uint8 [B, H, W, 3]
        out[idx] = backend.embed_frames(batch)
        got[idx] = True
    if stats.variable_frame_rate:
        flags.append("vfr")
    if stats.bad_packets:
        flags.append("decode_errors")


def _audio_rows(job: ExtractJob, info: MediaInfo, first: int, out: np.ndarray,
                got: np.ndarray, flags: list[str], audio: DecodedAudio | None) -> None:
    """Fill `out` [n_rows, dim] with the vectors of each row's second of audio."""
    v, backend = job.video, job.backend
    if not info.has_audio:
        flags.append("no_audio")
        got[:] = True  # zero vectors, flagged
        return
    stats = AudioStats()
    start, n = first - v.source_offset, len(out)
    if audio is not None:
        seconds = audio.seconds(backend.sample_rate, start, n, job.batch_size, stats)
    else:
        seconds = audio_seconds(v.path, backend.sample_rate, start, n, job.batch_size, stats)
    try:
        for idx, batch in prefetch(seconds):  # batch: float32 [B, sample_rate]
            out[idx] = backend.embed_audio(batch)
            got[idx] = True
    except DecodeError:
        if not info.has_video:
            raise
        flags.append("audio_undecodable")  # a broken audio track in a good video: zeros
        got[:] = True
    if stats.samples and stats.silent:
        flags.append("silent")
    if stats.stderr and stats.samples:
        flags.append("decode_errors")


def _kept_rows(got: np.ndarray) -> int:
    """Rows kept: up to the last decoded row; a tail of at most one undecoded row is kept too
    (zeros), a longer one is cut. Undecoded rows before the last decoded one cannot happen
    (frames are held, audio is zero-padded)."""
    if not got.any():
        return 0
    last = int(np.flatnonzero(got)[-1]) + 1
    return len(got) if len(got) - last <= 1 else last


def run_extract(cfg: ModalityConfig, videos: list[VideoInput], out_dir: str | Path,
                cache_dir: str | Path, mapper: Mapper, retry_failed: bool = False) -> RunReport:
    """Extract `cfg.modality` for `videos`: reuse cached results, compute the rest through
    `mapper`, then write the shards. Raises WeightsMissing before any work if weights are absent."""
    if cfg.modality not in EXTRACT_MODALITIES:
        raise ParamsError(f"unknown modality {cfg.modality!r} for extract "
                          f"(choose one of {', '.join(EXTRACT_MODALITIES)})")
    weights = cfg.backend.weights_identity()  # fails fast, with the key, if weights are missing
    meta = cfg.meta(weights)
    cache = ResultCache(Path(cache_dir) / cfg.backend.key)
    with io.folder_lock(out_dir, f"extract {cfg.modality} run"):
        remove_stale(out_dir, cache)  # temporary files of a killed run
        return _run(cfg, meta, weights, videos, out_dir, cache, mapper, retry_failed)


@dataclass(frozen=True)
class CachedArrays:
    """Recipe part shared by the array stages: results are entries in a `ResultCache`."""

    cache: ResultCache
    dim: int

    def lookup(self, video: VideoInput, key: str) -> Entry | None:
        """The cached entry under `key` if complete and of the expected shape."""
        return self.cache.load(video.youtube_id, key, self.dim)

    def entry(self, result: Entry) -> Entry:
        """An array stage's result is its entry."""
        return result


@dataclass(frozen=True)
class ExtractRecipe(CachedArrays):
    """Extract's plan: a missing file fails at once; the key hashes video, backend, weights."""

    cfg: ModalityConfig
    weights: str

    def plan(self, video: VideoInput) -> str | Entry:
        """The result key, or `missing_file` (not cached: the file may come back)."""
        if not Path(video.path).is_file():
            return missing_file(video)
        return video_key(video, self.cfg, self.weights)

    def job(self, video: VideoInput, key: str) -> ExtractJob:
        """One video's extraction job."""
        return ExtractJob(video, self.cfg.backend, str(self.cache.root), key, self.cfg.dtype,
                          self.cfg.batch_size)


def _run(cfg: ModalityConfig, meta: FeatureMeta, weights: str, videos: list[VideoInput],
         out_dir: str | Path, cache: ResultCache, mapper: Mapper,
         retry_failed: bool) -> RunReport:
    """Reuse what the cache holds, compute the rest, write the shards (under the lock)."""
    report = RunReport(cfg.modality, cfg.backend.key, videos=len(videos))
    recipe = ExtractRecipe(cache, cfg.backend.dim, cfg, weights)
    done = cached_or_compute(recipe, extract_video, videos, mapper, report, retry_failed)
    return finish(out_dir, meta, done.entries, cache, cfg.n_shards, report)
