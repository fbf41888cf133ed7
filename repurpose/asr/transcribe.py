"""The transcribe stage's work: one transcript per downloaded video, reused while unchanged.

Per video (`transcribe_video`, through the mapper): probe, decode the audio at 16 kHz mono, skip
ASR for a file without audio (`no_audio`) or with a silent track (`silent`), else transcribe.
Output `<out>/<youtube_id>.json` (absolute source seconds):

    {"youtube_id", "key", "status": "ok" | "no_audio" | "silent" | "no_speech", "flags",
     "backend", "weights", "params", "language", "source_offset", "duration",
     "rows": [first, stop], "time_base": "absolute source seconds", "text",
     "segments": [{"start", "end", "text", "words": [{"start", "end", "word", "prob"}]}]}

`rows` are the video's feature rows (same rule as visual/audio), so text vectors line up.
A transcript is reused when `<out>/<id>.json` or the cache holds one with the same key
(video sha256 + offset, backend, params, weights). Failed videos get no file; they are listed in
`<out>/videos.parquet` and `<out>/failures.json`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from repurpose import io
from repurpose.asr.backends import SAMPLE_RATE, AsrBackend
from repurpose.media import MediaError, MediaInfo, probe
from repurpose.pervideo.decode import AudioStats, DecodedAudio, DecodeError, read_audio
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
    write_if_changed_json,
    write_status,
)
from repurpose.pervideo.transcript import TIME_BASE, Transcript
from repurpose.runner import Mapper
from repurpose.splits.schema import is_safe_id

log = logging.getLogger(__name__)
RESERVED = {"failures.json"}


@dataclass(frozen=True)
class TranscribeJob:
    video: VideoInput
    backend: AsrBackend
    cache_root: str | None
    key: str

    @property
    def youtube_id(self) -> str:
        return self.video.youtube_id


@dataclass(frozen=True)
class TranscribeResult:
    entry: Entry
    transcript: dict[str, Any] | None  # Transcript.to_json() in file times; None if failed
    status: str  # ok | no_audio | silent | no_speech


def job_name(job: TranscribeJob) -> str:
    """Mapper key / task name of a transcription job."""
    return job.youtube_id


def _cache_path(root: str | Path, youtube_id: str, key: str) -> Path:
    return Path(root) / youtube_id / f"{key}.json"


def transcribe_video(job: TranscribeJob, audio: DecodedAudio | None = None,
                     info: MediaInfo | None = None) -> TranscribeResult:
    """Transcribe one video (file times) and cache the result. `audio` / `info`: the file's
    16 kHz audio and its probe, when a caller decoded them once for several models."""
    v = job.video
    try:
        result = _transcribe(job, audio, info)
    except MediaError as exc:
        result = TranscribeResult(undecodable(v, job.key, exc), None, "failed")
    if job.cache_root:
        io.write_json(_cache_path(job.cache_root, v.youtube_id, job.key), {
            "entry": result.entry.to_json(), "transcript": result.transcript,
            "status": result.status})
    return result


def _transcribe(job: TranscribeJob, shared: DecodedAudio | None,
                info: MediaInfo | None) -> TranscribeResult:
    v = job.video
    info = info or probe(v.path)
    flags = media_flags(v, info)
    first, stop = row_range(v.source_offset, info.duration)
    if stop <= first:
        return TranscribeResult(Entry(v.youtube_id, job.key, FAILED, reason="too_short",
                                      flags=tuple(flags), message=f"{info.duration:.3f} s"),
                                None, "failed")
    transcript = Transcript(language="")
    status = OK
    if not info.has_audio:
        status = "no_audio"
    else:
        stats = AudioStats()
        try:
            audio = (shared.read(stats) if shared is not None
                     else read_audio(v.path, SAMPLE_RATE, stats))
        except DecodeError:
            if not info.has_video:
                raise
            audio, status = None, "no_audio"
            flags.append("audio_undecodable")
        if audio is not None:
            if stats.silent or not len(audio):
                status = "silent"
            else:
                transcript = job.backend.transcribe(audio)
                if not transcript.segments:
                    status = "no_speech"
    if status != OK:
        flags.append(status)
    entry = Entry(v.youtube_id, job.key, OK, flags=tuple(sorted(set(flags))), first_t=first,
                  n_rows=stop - first)
    return TranscribeResult(entry, transcript.to_json(), status)


def _load_cached(root: str | Path | None, v: VideoInput, key: str) -> TranscribeResult | None:
    if not root:
        return None
    try:
        data = json.loads(_cache_path(root, v.youtube_id, key).read_text(encoding="utf-8"))
        entry = Entry.from_json(data["entry"])
        if entry.key != key:
            return None
        return TranscribeResult(entry, data["transcript"], data["status"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _load_output(out: Path, v: VideoInput, key: str) -> TranscribeResult | None:
    """An existing output file with the same key, as a result in file times."""
    try:
        data = json.loads((out / f"{v.youtube_id}.json").read_text(encoding="utf-8"))
        if data.get("key") != key:
            return None
        entry = Entry(v.youtube_id, key, OK, flags=tuple(data.get("flags", ())),
                      first_t=int(data["rows"][0]), n_rows=int(data["rows"][1] - data["rows"][0]),
                      computed=False)
        local = Transcript.from_json(data).shifted(-float(data["source_offset"]))
        return TranscribeResult(entry, local.to_json(), str(data["status"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def output_document(v: VideoInput, result: TranscribeResult, backend: AsrBackend,
                    weights: str) -> dict[str, Any]:
    """The stored transcript of one video (absolute source seconds)."""
    absolute = Transcript.from_json(result.transcript or {}).shifted(v.source_offset)
    e = result.entry
    return {
        "youtube_id": v.youtube_id, "key": e.key, "status": result.status,
        "flags": list(e.flags), "backend": backend.key, "weights": weights,
        "params": backend.params, "source_offset": v.source_offset, "duration": v.duration,
        "rows": [e.first_t, e.first_t + e.n_rows], "time_base": TIME_BASE,
        "text": absolute.text, **absolute.to_json(),
    }


def run_transcribe(backend: AsrBackend, videos: list[VideoInput], out_dir: str | Path,
                   cache_dir: str | Path | None, mapper: Mapper,
                   retry_failed: bool = False) -> RunReport:
    """Transcribe what is not reused; write `<out>/<id>.json`, status and failures."""
    weights = backend.weights_identity()
    out = Path(out_dir)
    cache_root = str(Path(cache_dir) / backend.key) if cache_dir else None
    with io.folder_lock(out, "transcribe run"):
        remove_stale(out, ResultCache(cache_root or out / ".no-cache"))  # a killed run's temps
        return _run(backend, weights, videos, out, cache_root, mapper, retry_failed)


@dataclass(frozen=True)
class TranscribeRecipe:
    """Transcribe's plan: a missing file fails at once; the key hashes video, backend, weights;
    a result is reused from the output folder, else from the cache."""

    backend: AsrBackend
    weights: str
    out: Path
    cache_root: str | None

    def plan(self, video: VideoInput) -> str | TranscribeResult:
        """The result key, or `missing_file` (not cached: the file may come back)."""
        if not Path(video.path).is_file():
            return TranscribeResult(missing_file(video), None, "failed")
        b = self.backend
        return result_key(modality="transcript", backend=b.key, params=b.params,
                          weights=self.weights, sha256=video.sha256,
                          source_offset=video.source_offset)

    def lookup(self, video: VideoInput, key: str) -> TranscribeResult | None:
        """The stored transcript or the cached result under `key` (file times)."""
        hit = _load_output(self.out, video, key) or _load_cached(self.cache_root, video, key)
        if hit is None:
            return None
        return TranscribeResult(replace(hit.entry, computed=False), hit.transcript, hit.status)

    def job(self, video: VideoInput, key: str) -> TranscribeJob:
        """One video's transcription job."""
        return TranscribeJob(video, self.backend, self.cache_root, key)

    def entry(self, result: TranscribeResult) -> Entry:
        """The outcome a transcription result holds."""
        return result.entry


def _run(backend: AsrBackend, weights: str, videos: list[VideoInput], out: Path,
         cache_root: str | None, mapper: Mapper, retry_failed: bool) -> RunReport:
    """Reuse, transcribe the rest, write the transcripts and status (under the lock)."""
    report = RunReport("transcripts", backend.key, videos=len(videos))
    recipe = TranscribeRecipe(backend, weights, out, cache_root)
    done = cached_or_compute(recipe, transcribe_video, videos, mapper, report, retry_failed)
    results, entries = done.results, done.entries
    by_id = {v.youtube_id: v for v in videos}
    written = 0
    out.mkdir(parents=True, exist_ok=True)
    for yid, res in sorted(results.items()):
        if res.entry.status == OK:
            doc = output_document(by_id[yid], res, backend, weights)
            written += write_if_changed_json(out / f"{yid}.json", doc)
    keep = {f"{yid}.json" for yid, r in results.items() if r.entry.status == OK}
    removed = 0
    for path in out.glob("*.json"):  # only transcripts (<youtube_id>.json) are ours to remove
        if path.name not in keep and path.name not in RESERVED and is_safe_id(path.stem):
            path.unlink()
            removed += 1
    report.files = (f"transcripts: {written} written, {len(keep) - written} unchanged, "
                    f"{removed} removed")
    return write_status(out, "transcripts", backend.key, entries, {}, report)
