"""Progress of per-item work: a tqdm bar on a terminal, plain periodic lines otherwise, and a
Prefect progress artifact when running inside a Prefect flow.

    with Progress(total=len(videos), desc="extract visual") as bar:
        for ...:
            bar.update()

or wrap a stage's mapper once (`with_progress(mapper, "download")`): every `mapper(fn, items)`
call then reports `done/total`, the rate and the ETA as results arrive. The mode comes from
`$REPURPOSE_PROGRESS` (`auto`, the default: a bar when the stream is a TTY, else lines; `bar`;
`lines`; `off`). Lines are printed at most every `interval` seconds
(`$REPURPOSE_PROGRESS_INTERVAL`, default 30) and at the end, so CI logs stay short; the
Prefect artifact (key `progress-<desc>`) is updated at most every 2 s and at the end.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
MODES = ("auto", "bar", "lines", "off")
MODE_ENV = "REPURPOSE_PROGRESS"
INTERVAL_ENV = "REPURPOSE_PROGRESS_INTERVAL"
PREFECT_EVERY = 2.0  # seconds between artifact updates


def _clock(seconds: float | None) -> str:
    """`H:MM:SS` (or `?` when unknown)."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _mode(mode: str | None) -> str:
    value = (mode or os.environ.get(MODE_ENV) or "auto").strip().lower()
    return value if value in MODES else "auto"


def _interval(interval: float | None) -> float:
    if interval is not None:
        return interval
    try:
        return float(os.environ.get(INTERVAL_ENV, "30"))
    except ValueError:
        return 30.0


class PrefectProgress:
    """A Prefect progress artifact, when this code runs inside a flow or task run."""

    def __init__(self, desc: str):
        self.artifact_id = None
        self._last = 0.0
        try:
            from prefect.context import FlowRunContext, TaskRunContext

            if FlowRunContext.get() is None and TaskRunContext.get() is None:
                return
            from prefect.artifacts import create_progress_artifact

            key = "progress-" + (re.sub(r"[^a-z0-9-]+", "-", desc.lower()).strip("-") or "run")
            self.artifact_id = create_progress_artifact(0.0, key=key[:100],
                                                        description=f"{desc}: progress")
        except Exception as exc:  # noqa: BLE001 - progress must never break the work
            log.debug("no Prefect progress artifact: %s", exc)

    def update(self, percent: float, description: str, final: bool = False) -> None:
        """Set the artifact's progress (throttled unless `final`)."""
        now = time.monotonic()
        if self.artifact_id is None or (not final and now - self._last < PREFECT_EVERY):
            return
        self._last = now
        try:
            from prefect.artifacts import update_progress_artifact

            update_progress_artifact(self.artifact_id, percent, description=description)
        except Exception as exc:  # noqa: BLE001
            log.debug("progress artifact update failed: %s", exc)


class Progress:
    """Count, rate and ETA of `total` items, shown the way the output stream can take."""

    def __init__(self, total: int, desc: str, unit: str = "video",
                 stream: IO[str] | None = None, mode: str | None = None,
                 interval: float | None = None, prefect: bool = True):
        self.total, self.desc, self.unit = int(total), desc, unit
        self.stream = stream if stream is not None else sys.stderr
        self.n = 0
        self.started = time.monotonic()
        self._last_line = self.started
        self.interval = _interval(interval)
        mode = _mode(mode)
        if mode == "auto":
            isatty = getattr(self.stream, "isatty", None)
            mode = "bar" if callable(isatty) and isatty() else "lines"
        self.mode = mode
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc=desc, unit=unit, file=self.stream,
                            dynamic_ncols=True, mininterval=0.5)
        self.prefect = PrefectProgress(desc) if prefect else None

    def rate(self) -> float:
        """Items per second so far."""
        elapsed = time.monotonic() - self.started
        return self.n / elapsed if elapsed > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds left at the current rate (None before the first item)."""
        rate = self.rate()
        return (self.total - self.n) / rate if rate > 0 else None

    def line(self) -> str:
        """`desc: 3/10 videos (30%), 0.50 videos/s, elapsed 0:00:06, ETA 0:00:14`."""
        pct = 100.0 * self.n / self.total if self.total else 100.0
        return (f"{self.desc}: {self.n}/{self.total} {self.unit}s ({pct:.0f}%), "
                f"{self.rate():.2f} {self.unit}s/s, elapsed "
                f"{_clock(time.monotonic() - self.started)}, ETA {_clock(self.eta())}")

    def update(self, n: int = 1) -> None:
        """`n` more items done."""
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.mode == "lines":
            now = time.monotonic()
            if now - self._last_line >= self.interval and self.n < self.total:
                self._last_line = now
                print(self.line(), file=self.stream, flush=True)
        if self.prefect is not None:
            self.prefect.update(self._percent(), self.line())

    def _percent(self) -> float:
        return 100.0 * self.n / self.total if self.total else 100.0

    def close(self) -> None:
        """Final state: the bar closed, a last line, the artifact at its final value."""
        if self.bar is not None:
            self.bar.close()
        elif self.mode == "lines" and self.total:
            print(self.line(), file=self.stream, flush=True)
        if self.prefect is not None:
            self.prefect.update(self._percent(), self.line(), final=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def with_progress(mapper: Callable[..., Iterator[tuple[Any, Any]]], desc: str,
                  **kwargs: Any) -> Callable[..., Iterator[tuple[Any, Any]]]:
    """`mapper` reporting progress per result (same call shape: `fn, items, key=`)."""

    def _map(fn: Callable[[T], R], items: Sequence[T], *, key: Callable[[T], str]
             ) -> Iterator[tuple[T, R | BaseException]]:
        items = list(items)
        if not items:
            yield from mapper(fn, items, key=key)
            return
        with Progress(len(items), desc, **kwargs) as bar:
            for item, result in mapper(fn, items, key=key):
                bar.update()
                yield item, result

    return _map


def stage_desc(name: str, args: Any) -> str:
    """What a stage's progress is called: the stage, and its modality when it has one."""
    modality = getattr(args, "modality", None)
    return f"{name} {modality}" if isinstance(modality, str) and modality else name
