"""Download failure classification, Retry-After, backoff, rate limit: pure functions, no network."""

from __future__ import annotations

import random
import time

import pytest

from repurpose.download.errors import (
    PERMANENT,
    TRANSIENT,
    Classified,
    PermanentDownloadError,
    TransientDownloadError,
    backoff_delay,
    classify_exception,
    classify_message,
    clean_message,
    http_status,
    parse_retry_after,
    status_and_retry_after,
)
from repurpose.download.ratelimit import RateLimiter
from repurpose.download.ytdlp import source_url
from repurpose.errors import PermanentError, TransientError

P, T = PERMANENT, TRANSIENT

# (message as yt-dlp / requests / ffmpeg print it, kind, category)
CASES = [
    # permanent: the video is gone or walled off
    ("ERROR: [youtube] abcdefghijk: Private video. Sign in if you've been granted access to "
     "this video. Use --cookies-from-browser or --cookies for the authentication.", P, "private"),
    ("ERROR: [youtube] abcdefghijk: Video unavailable. This video has been removed by the "
     "uploader", P, "removed"),
    ("ERROR: [youtube] abcdefghijk: Video unavailable. This video is no longer available because "
     "the YouTube account associated with this video has been terminated.", P, "removed"),
    ("ERROR: [youtube] abcdefghijk: Video unavailable. This video has been removed for violating "
     "YouTube's Terms of Service", P, "removed"),
    ("ERROR: [youtube] abcdefghijk: Video unavailable. This video contains content from SME, "
     "who has blocked it on copyright grounds", P, "copyright"),
    ("ERROR: [youtube] abcdefghijk: Join this channel to get access to members-only content "
     "like this video, and other exclusive perks.", P, "members_only"),
    ("ERROR: [youtube] abcdefghijk: This video is available to this channel's members on level: "
     "Tier 1", P, "members_only"),
    ("ERROR: [youtube] abcdefghijk: Sign in to confirm your age. This video may be inappropriate "
     "for some users. Use --cookies-from-browser or --cookies for the authentication.", P,
     "age_restricted"),
    ("ERROR: [youtube] abcdefghijk: Video unavailable", P, "unavailable"),
    ("ERROR: [youtube] abcdefghijk: This video is unavailable", P, "unavailable"),
    ("ERROR: [youtube] abcdefghijk: The uploader has not made this video available in your "
     "country", P, "geo_blocked"),
    ("ERROR: [youtube] abcdefghijk: This video requires payment to watch.", P, "paid"),
    ("ERROR: Unsupported URL: http://127.0.0.1:8000/abcdefghijk.mp4", P, "unsupported"),
    ("ERROR: [generic] abcdefghijk: Unable to download webpage: HTTP Error 404: Not Found "
     "(caused by <HTTPError 404: Not Found>)", P, "http_404"),
    ("ERROR: unable to download video data: HTTP Error 410: Gone", P, "http_410"),
    ("ERROR: unable to download video data: HTTP Error 401: Unauthorized", P, "login_required"),
    # transient: ask again later
    ("ERROR: [youtube] abcdefghijk: Sign in to confirm you're not a bot. Use "
     "--cookies-from-browser or --cookies for the authentication.", T, "bot_check"),
    ("ERROR: [youtube] abcdefghijk: Video unavailable. This content isn't available, try again "
     "later. The current session has been rate-limited by YouTube for up to an hour.", T,
     "rate_limited"),
    ("ERROR: [generic] abcdefghijk: Unable to download webpage: HTTP Error 429: Too Many "
     "Requests (caused by <HTTPError 429: Too Many Requests>)", T, "rate_limited"),
    ("ERROR: unable to download video data: HTTP Error 403: Forbidden", T, "http_403"),
    ("ERROR: [generic] abcdefghijk: Unable to download webpage: HTTP Error 500: Internal Server "
     "Error", T, "server_error"),
    ("ERROR: [youtube] abcdefghijk: Unable to download API page: HTTP Error 503: Service "
     "Unavailable", T, "server_error"),
    ("[https @ 0x5581] HTTP error 502 Bad Gateway", T, "server_error"),
    ("ERROR: [generic] abcdefghijk: Unable to download webpage: HTTPConnectionPool("
     "host='127.0.0.1', port=4000): Read timed out. (read timeout=1.0)", T, "timeout"),
    ("ERROR: The read operation timed out", T, "timeout"),
    ("ERROR: [Errno 104] Connection reset by peer", T, "connection"),
    ("ERROR: ('Connection aborted.', RemoteDisconnected('Remote end closed connection without "
     "response'))", T, "connection"),
    ("ERROR: [Errno -3] Temporary failure in name resolution", T, "connection"),
    ("ERROR: The downloaded file is empty", T, "empty_download"),
    ("ERROR: ffmpeg exited with code 1", T, "ffmpeg"),
    ("ERROR: [youtube] abcdefghijk: Requested format is not available. Use --list-formats for a "
     "list of available formats", T, "no_formats"),
    ("something nobody has seen before", T, "unknown"),
]


@pytest.mark.parametrize(("message", "kind", "category"), CASES)
def test_classification_table(message: str, kind: str, category: str) -> None:
    assert classify_message(message) == Classified(kind, category)


def test_status_wins_over_text_only_when_no_text_rule_matches() -> None:
    assert classify_message("Unable to download webpage", status=404) == Classified(P, "http_404")
    assert classify_message("Unable to download webpage", status=429).category == "rate_limited"
    # a bot check is transient even if it came with a 403
    bot = classify_message("Sign in to confirm you're not a bot", status=403)
    assert bot == Classified(T, "bot_check")


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("HTTP Error 404: Not Found", 404),
        ("Server returned 403 Forbidden (access denied)", 403),
        ("HTTP error 429 Too Many Requests", 429),
        ("got status code 503 from upstream", 503),
        ("503 Service Unavailable", 503),
        ("no status here, video id 404abcdefgh", None),
    ],
)
def test_http_status(message: str, status: int | None) -> None:
    assert http_status(message) == status


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 1_700_000_000.0
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 30))
    assert parse_retry_after(date, now=now) == pytest.approx(30.0)
    past = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now - 30))
    assert parse_retry_after(past, now=now) == 0.0


class _Response:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


class _HTTPError(Exception):
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        super().__init__(f"HTTP Error {status}")
        self.status = status
        self.response = _Response(headers)


class _Wrapped(Exception):
    """Like yt-dlp's DownloadError: the original error in `exc_info`, an ExtractorError cause."""

    def __init__(self, msg: str, inner: BaseException) -> None:
        super().__init__(msg)
        self.exc_info = (type(inner), inner, None)


def test_status_and_retry_after_found_in_exception_chain() -> None:
    inner = _HTTPError(429, {"Retry-After": "7"})
    exc = _Wrapped("ERROR: [generic] x: Unable to download webpage: HTTP Error 429", inner)
    assert status_and_retry_after(exc) == (429, 7.0)
    failure = classify_exception(exc)
    assert isinstance(failure, TransientDownloadError) and isinstance(failure, TransientError)
    assert failure.category == "rate_limited" and failure.retry_after == 7.0
    assert not failure.message.startswith("ERROR")


def test_classify_exception_kinds() -> None:
    gone = classify_exception(_Wrapped("ERROR: gone", _HTTPError(410, {})))
    assert isinstance(gone, PermanentDownloadError) and isinstance(gone, PermanentError)
    assert gone.category == "http_410" and gone.permanent
    assert classify_exception(TimeoutError()).category == "timeout"
    same = TransientDownloadError("x", "truncated")
    assert classify_exception(same) is same


def test_clean_message() -> None:
    assert clean_message("\x1b[0;31mERROR:\x1b[0m  [generic]  a:\n b ") == "[generic] a: b"


def test_backoff_grows_is_jittered_and_capped() -> None:
    rng = random.Random(0)
    delays = [backoff_delay(n, 1.0, 10.0, rng) for n in range(1, 7)]
    for n, d in enumerate(delays, start=1):
        ceiling = min(10.0, 2 ** (n - 1))
        assert ceiling / 2 <= d <= ceiling
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered, not constant
    assert backoff_delay(50, 1.0, 10.0, rng) <= 10.0


def test_rate_limiter_spaces_starts_and_defers(tmp_path) -> None:  # noqa: ANN001
    key = f"test-{tmp_path}"
    limiter = RateLimiter(0.3, key)
    try:
        assert limiter.reserve() == pytest.approx(0.0, abs=0.05)
        assert limiter.reserve() == pytest.approx(0.3, abs=0.05)
        assert limiter.reserve() == pytest.approx(0.6, abs=0.05)
        other = RateLimiter(0.0, key)  # another worker with the same key shares the state
        other.defer(2.0)
        assert other.reserve() == pytest.approx(2.0, abs=0.1)
    finally:
        limiter.path.unlink(missing_ok=True)


def test_source_url_checks_the_id() -> None:
    assert source_url("youtube", "abcdefghijk") == "https://www.youtube.com/watch?v=abcdefghijk"
    assert source_url("url", "abc_EFG-123", "http://h/{youtube_id}.mp4") == "http://h/abc_EFG-123.mp4"
    for bad in ("../../etc/pa", "abc", "abcdefghij/", "abcdefghijk\n"):
        with pytest.raises(ValueError):
            source_url("url", bad, "http://h/{youtube_id}.mp4")


def test_retry_delay_honours_retry_after_up_to_the_cap():
    from repurpose.download.errors import TransientDownloadError, retry_delay

    plain = TransientDownloadError("HTTP 503", "http_5xx")
    assert 0.5 <= retry_delay(plain, 1, 1.0, 10.0) <= 1.0
    asked = TransientDownloadError("HTTP 429", "rate_limited", retry_after=7.0)
    assert retry_delay(asked, 1, 1.0, 10.0) == 7.0
    too_long = TransientDownloadError("HTTP 429", "rate_limited", retry_after=500.0)
    assert retry_delay(too_long, 1, 1.0, 10.0) == 10.0
