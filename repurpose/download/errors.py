"""Why a download failed, and whether trying again can help.

Everything here is a pure function of message strings (and of the attributes an exception
chain carries), so the rules are tested on a table of real yt-dlp / HTTP / ffmpeg messages.

- permanent: retrying cannot help (private, deleted, copyright, members-only, age-gated,
  HTTP 401/404/410, unsupported URL or not a video, missing local file). Never retried, and
  not retried on the next run either unless `--retry-failed` is given.
- transient: the same request may succeed later (HTTP 403/408/429/5xx, timeouts, reset
  connections, bot checks, truncated or undecodable downloads). Retried with exponential
  backoff and jitter up to `download.retries`, then retried again on the next run.
"""

from __future__ import annotations

import contextlib
import email.utils
import random
import re
import time
from dataclasses import dataclass
from typing import Literal

from repurpose.errors import PermanentError, TransientError

Kind = Literal["permanent", "transient"]
PERMANENT: Kind = "permanent"
TRANSIENT: Kind = "transient"


@dataclass(frozen=True)
class Classified:
    """A failure's kind and a short, stable category name (a ledger column)."""

    kind: Kind
    category: str

    @property
    def permanent(self) -> bool:
        return self.kind == PERMANENT


class DownloadFailure(Exception):  # noqa: N818 - reads better at call sites than ...Error
    """One failed attempt at one video, classified."""

    def __init__(
        self, message: str, classified: Classified, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.classified = classified
        self.retry_after = retry_after

    @property
    def permanent(self) -> bool:
        return self.classified.permanent

    @property
    def category(self) -> str:
        return self.classified.category


class PermanentDownloadError(DownloadFailure, PermanentError):
    """A failure that retrying cannot fix."""

    def __init__(self, message: str, category: str) -> None:
        super().__init__(message, Classified(PERMANENT, category))


class TransientDownloadError(DownloadFailure, TransientError):
    """A failure worth retrying later."""

    def __init__(self, message: str, category: str, retry_after: float | None = None) -> None:
        super().__init__(message, Classified(TRANSIENT, category), retry_after)


def failure(
    message: str, classified: Classified, retry_after: float | None = None
) -> DownloadFailure:
    """The exception class that matches `classified`."""
    if classified.permanent:
        return PermanentDownloadError(message, classified.category)
    return TransientDownloadError(message, classified.category, retry_after)


# Ordered rules: the first match wins. Bot checks come first because their message also
# says "Sign in" and "--cookies", like the (permanent) age and login walls.
_TEXT_RULES: tuple[tuple[str, Kind, str], ...] = (
    (r"not a bot|confirm you.?re not a robot|captcha|unusual traffic", TRANSIENT, "bot_check"),
    # YouTube's session rate limit reads "Video unavailable. This content isn't available,
    # try again later. The current session has been rate-limited..." (yt-dlp wiki).
    (r"try again later|rate[- ]limited|too many requests", TRANSIENT, "rate_limited"),
    (r"downloaded file is empty", TRANSIENT, "empty_download"),
    (r"private video|this video is private|video is private", PERMANENT, "private"),
    (
        r"members[- ]only|join this channel|available to this channel'?s members",
        PERMANENT,
        "members_only",
    ),
    (r"requires payment|purchase this video|rent this video", PERMANENT, "paid"),
    (
        r"confirm your age|age[- ]restricted|age[- ]gated|inappropriate for some users",
        PERMANENT,
        "age_restricted",
    ),
    (r"copyright", PERMANENT, "copyright"),
    (
        r"account associated with this video has been terminated|has been removed|"
        r"video (?:has been|was) deleted|no longer available|violating youtube'?s",
        PERMANENT,
        "removed",
    ),
    (
        r"not (?:made this video )?available in your country|geo[- ]?restrict|"
        r"blocked it in your country|not available from your location",
        PERMANENT,
        "geo_blocked",
    ),
    (
        r"video unavailable|this video is (?:not |un)available|video is not available",
        PERMANENT,
        "unavailable",
    ),
    (
        r"unsupported url|is not a valid url|incomplete youtube id|not a video\b",
        PERMANENT,
        "unsupported",
    ),
    (
        r"sign in to view|login required|requires? (?:a )?(?:login|authentication)|"
        r"log in to watch|members of the channel",
        PERMANENT,
        "login_required",
    ),
)

_HTTP_STATUS = re.compile(
    r"HTTP Error (\d{3})|HTTP error (\d{3})|Server returned (\d{3})|status(?: code)?[ =:]+(\d{3})\b"
    r"|\b(\d{3}) (?:Forbidden|Too Many Requests|Not Found|Gone|Internal Server Error"
    r"|Bad Gateway|Service Unavailable|Gateway Time-?out|Unauthorized)\b",
    re.IGNORECASE,
)

_TRANSIENT_TEXT: tuple[tuple[str, str], ...] = (
    (r"timed? ?out|timeout", "timeout"),
    (
        r"connection (?:reset|refused|aborted)|reset by peer|broken pipe|remote end closed|"
        r"incompleteread|incomplete read|network is unreachable|name resolution|"
        r"name or service not known|errno 10[45]|errno 11[013]|connection error|"
        r"transporterror|eof occurred|ssl",
        "connection",
    ),
    (r"rate.?limit", "rate_limited"),
    (r"requested format is not available|no video formats found", "no_formats"),
    (r"exited with code|ffmpeg", "ffmpeg"),
)


def http_status(message: str) -> int | None:
    """The HTTP status a yt-dlp / ffmpeg / requests message names, if any."""
    match = _HTTP_STATUS.search(message)
    if not match:
        return None
    return int(next(g for g in match.groups() if g))


def classify_status(status: int) -> Classified:
    """Kind and category of an HTTP status code."""
    if status in (404, 410):
        return Classified(PERMANENT, f"http_{status}")
    if status == 401:
        return Classified(PERMANENT, "login_required")
    if status == 429:
        return Classified(TRANSIENT, "rate_limited")
    if status == 403:
        return Classified(TRANSIENT, "http_403")
    if status >= 500:
        return Classified(TRANSIENT, "server_error")
    return Classified(TRANSIENT, f"http_{status}")  # 400, 408, 425...: worth another try


def classify_message(message: str, status: int | None = None) -> Classified:
    """Kind and category of an error message (and of its HTTP status when known)."""
    text = message.lower()
    for pattern, kind, category in _TEXT_RULES:
        if re.search(pattern, text):
            return Classified(kind, category)
    if status is None:
        status = http_status(message)
    if status is not None:
        return classify_status(status)
    for pattern, category in _TRANSIENT_TEXT:
        if re.search(pattern, text):
            return Classified(TRANSIENT, category)
    return Classified(TRANSIENT, "unknown")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header value (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds)


def _chain(exc: BaseException | None) -> list[BaseException]:
    """An exception and everything it wraps (yt-dlp's exc_info and cause, __cause__...)."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        cur = todo.pop(0)
        if cur is None or any(cur is s for s in seen) or len(seen) > 20:
            continue
        seen.append(cur)
        exc_info = getattr(cur, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1:
            todo.append(exc_info[1])
        for attr in ("cause", "orig_msg"):
            value = getattr(cur, attr, None)
            if isinstance(value, BaseException):
                todo.append(value)
        todo.extend([cur.__cause__, cur.__context__])
    return seen


def status_and_retry_after(exc: BaseException) -> tuple[int | None, float | None]:
    """HTTP status and Retry-After seconds carried anywhere in an exception chain."""
    status: int | None = None
    retry_after: float | None = None
    for cur in _chain(exc):
        code = getattr(cur, "status", None)
        if isinstance(code, int) and 100 <= code <= 599 and status is None:
            status = code
        headers = getattr(cur, "headers", None)
        response = getattr(cur, "response", None)
        if headers is None and response is not None:
            headers = getattr(response, "headers", None)
        if headers is not None and retry_after is None:
            with contextlib.suppress(AttributeError):
                retry_after = parse_retry_after(headers.get("Retry-After"))
    return status, retry_after


def clean_message(message: str) -> str:
    """yt-dlp's message without its `ERROR: ` prefix and colour codes, on one line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", message)
    text = re.sub(r"^(?:ERROR|WARNING):\s*", "", text.strip())
    return " ".join(text.split())[:1000]


def classify_exception(exc: BaseException) -> DownloadFailure:
    """Turn any exception from one attempt into a classified `DownloadFailure`."""
    if isinstance(exc, DownloadFailure):
        return exc
    message = clean_message(str(exc) or type(exc).__name__)
    status, retry_after = status_and_retry_after(exc)
    if isinstance(exc, TimeoutError):
        return TransientDownloadError(message, "timeout")
    return failure(message, classify_message(message, status), retry_after)


def backoff_delay(
    attempt: int, base: float, maximum: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): exponential, jittered.

    base * 2**(attempt-1), capped at `maximum`, times a uniform factor in [0.5, 1.0]
    ("equal jitter"), so retries of many workers spread out but still grow.
    """
    rng = rng or random
    ceiling = min(maximum, base * (2 ** max(0, attempt - 1)))
    return ceiling * (0.5 + 0.5 * rng.random())


def retry_delay(failure: DownloadFailure, attempt: int, base: float, maximum: float) -> float:
    """Seconds before the next attempt: the jittered backoff, or the server's Retry-After
    (capped at `maximum`) when that is longer."""
    delay = backoff_delay(attempt, base, maximum)
    if failure.retry_after is not None:
        delay = max(delay, min(failure.retry_after, maximum))
    return delay
