"""The one per-video engine: reuse what is cached, compute the rest through the mapper.

Every per-video stage (extract, transcribe, embed_text) is a `Recipe`. For each video it
`plan`s the result key (or returns a failure known without any work, e.g. a missing file,
which is neither reused nor computed), `lookup`s that key in its cache, and builds a picklable
`job` for what must be computed. `cached_or_compute` runs the loop once for all of them: hits
are reused (unless `retry_failed` and the hit is a failure), the jobs go through the mapper
(serial, threads, Prefect tasks, a Dask cluster) to a module-level `compute(job)`, and the
outcomes are folded into the run's `RunReport`. Exceptions other than media errors become
`error` entries (never cached, so the next run retries them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from repurpose.pervideo.inputs import VideoInput
from repurpose.pervideo.results import FAILED, Entry, RunReport, collect
from repurpose.runner import Mapper

J = TypeVar("J")
R = TypeVar("R")


class Recipe(Protocol[J, R]):
    """How one stage finds, reuses and schedules one video's result."""

    def plan(self, video: VideoInput) -> str | R:
        """The result key, or a result known without work (a failure such as missing_file)."""
        ...

    def lookup(self, video: VideoInput, key: str) -> R | None:
        """The cached result under `key`, or None."""
        ...

    def job(self, video: VideoInput, key: str) -> J:
        """The picklable job computing `video`'s result under `key`."""
        ...

    def entry(self, result: R) -> Entry:
        """The outcome a result holds."""
        ...


@dataclass
class Outcomes(Generic[R]):
    """Per video: its outcome (errors included) and, unless it errored, its result."""

    entries: dict[str, Entry] = field(default_factory=dict)
    results: dict[str, R] = field(default_factory=dict)


def job_youtube_id(job: Any) -> str:
    """Mapper key / task name of a per-video job (every job has a `youtube_id`)."""
    return job.youtube_id


def missing_file(video: VideoInput) -> Entry:
    """The ledger lists the video but its file is gone (a failure that is never cached)."""
    return Entry(video.youtube_id, "", FAILED, reason="missing_file",
                 message=f"{video.path}: no such file", computed=False)


def undecodable(video: VideoInput, key: str, exc: BaseException) -> Entry:
    """A media error: a property of the file, so cached like a result."""
    return Entry(video.youtube_id, key, FAILED, reason="undecodable", message=str(exc)[:500])


def cached_or_compute(recipe: Recipe[J, R], compute: Callable[[J], R],
                      videos: Sequence[VideoInput], mapper: Mapper, report: RunReport,
                      retry_failed: bool = False) -> Outcomes[R]:
    """Reuse each video's cached result, compute the rest through `mapper`; count both."""
    out: Outcomes[R] = Outcomes()
    jobs: list[J] = []
    for v in videos:
        key = recipe.plan(v)
        if not isinstance(key, str):  # known without work: neither reused nor computed
            out.results[v.youtube_id] = key
            out.entries[v.youtube_id] = recipe.entry(key)
            continue
        hit = recipe.lookup(v, key)
        if hit is not None and not (retry_failed and recipe.entry(hit).status == FAILED):
            out.results[v.youtube_id] = hit
            out.entries[v.youtube_id] = recipe.entry(hit)
            report.reused += 1
        else:
            jobs.append(recipe.job(v, key))
    computed = list(mapper(compute, jobs, key=job_youtube_id))
    for job, result in computed:
        if not isinstance(result, BaseException):
            out.results[job_youtube_id(job)] = result
    collect(((job, result if isinstance(result, BaseException) else recipe.entry(result))
             for job, result in computed), report, out.entries, job_youtube_id)
    return out
