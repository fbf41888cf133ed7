"""The one retry loop of every download: the stage's per-video fetch and `repurpose clip`'s URL.

Each attempt runs in a child process group under what is left of `download.deadline`
(`sandbox.py`), after the rate limiter lets it start. Permanent failures stop at once, and so
do the categories a caller names as not worth repeating. Transient ones back off exponentially
with jitter (`errors.retry_delay`); a server's Retry-After is honoured up to
`download.backoff_max`, and one asking for longer leaves the video for the next run. A rate
limit or bot check also pushes back every other worker's next start (`RateLimiter.defer`).
Attempts and waits together get `download.deadline` seconds; a wait that would end past it is
not begun. The work folder is emptied before each attempt and removed at the end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from repurpose.download.errors import DownloadFailure, classify_exception, retry_delay
from repurpose.download.ratelimit import RateLimiter
from repurpose.download.sandbox import run_with_deadline
from repurpose.download.ytdlp import clear_dir

log = logging.getLogger(__name__)

R = TypeVar("R")
# Categories that mean "the site wants us to slow down": every worker pauses, not just this one.
SLOW_DOWN = frozenset({"rate_limited", "bot_check"})
YOUTUBE_HOSTS = ("youtube.com", "youtu.be", "youtube-nocookie.com")


class RetryPolicy(Protocol):
    """The `download` params a retry loop reads (DownloadConfig has them)."""

    retries: int
    backoff_base: float
    backoff_max: float
    deadline: float


class GaveUp(Exception):  # noqa: N818 - it is an outcome, not a programming error
    """No attempt succeeded: the last failure (its message says why no more were made)."""

    def __init__(self, failure: DownloadFailure, attempts: int) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.attempts = attempts


def limiter_key_for_url(url: str) -> str:
    """Which requests share a rate limit: all YouTube ones on this machine, or one host's."""
    host = (urlsplit(url).hostname or "").lower()
    if any(host == h or host.endswith("." + h) for h in YOUTUBE_HOSTS):
        return "youtube"
    return f"url:{host}"


def with_retries(policy: RetryPolicy, what: str, work: Path, attempt: Callable[..., Any],
                 args: tuple, finish: Callable[[Any, int], R],
                 limiter: RateLimiter | None = None,
                 no_retry: frozenset[str] = frozenset()) -> R:
    """`finish(attempt(*args), attempts)` for the first attempt that succeeds (each in the
    sandbox, `finish` here); GaveUp with the classified last failure when none does."""
    max_attempts = 1 + max(0, policy.retries)
    attempt_no = 0
    budget = policy.deadline  # seconds left for attempts and backoff waits (not rate-limit queues)
    try:
        while True:
            attempt_no += 1
            clear_dir(work)
            work.mkdir(parents=True, exist_ok=True)
            try:
                if limiter is not None:
                    limiter.wait()
                began = time.monotonic()
                try:
                    result = run_with_deadline(attempt, args, budget, what)
                finally:
                    budget -= time.monotonic() - began
                return finish(result, attempt_no)
            except Exception as exc:  # noqa: BLE001 - every failure is classified
                failure = classify_exception(exc)
            log.info("%s: attempt %d failed (%s/%s): %s", what, attempt_no,
                     failure.classified.kind, failure.category, failure.message)
            if (failure.permanent or failure.category in no_retry
                    or attempt_no >= max_attempts):
                raise GaveUp(failure, attempt_no)
            delay = _next_delay(policy, failure, attempt_no, budget)
            if limiter is not None and failure.category in SLOW_DOWN:
                limiter.defer(delay)
            time.sleep(delay)
            budget -= delay
    finally:
        clear_dir(work)


def _next_delay(policy: RetryPolicy, failure: DownloadFailure, attempt_no: int,
                budget: float) -> float:
    """Seconds to wait before the next attempt, or GaveUp when it must not be made."""
    if failure.retry_after is not None and failure.retry_after > policy.backoff_max:
        failure.message += (
            f" (server asked to retry after {failure.retry_after:g} s, beyond "
            f"download.backoff_max={policy.backoff_max:g}: left for the next run)")
        raise GaveUp(failure, attempt_no)
    delay = retry_delay(failure, attempt_no, policy.backoff_base, policy.backoff_max)
    if delay >= budget:
        failure.message += (
            f" (the next try would start past download.deadline={policy.deadline:g} s: "
            "left for the next run)")
        raise GaveUp(failure, attempt_no)
    return delay
