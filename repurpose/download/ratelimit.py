"""A rate limit shared by every worker on this machine: minimum seconds between request starts.

Workers (threads, or processes of a local Dask cluster) reserve start times through a small
state file under the system temp folder, locked with `flock`: each caller takes the next free
slot and sleeps until it, so starts are at least `interval` apart however many workers run.
`defer(seconds)` pushes the next free slot out, so that when one worker is told to slow down
(HTTP 429, a bot check) the others wait too instead of hammering the site.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows; threads in one process still share
    fcntl = None  # type: ignore[assignment]

_THREAD_LOCK = threading.Lock()


class RateLimiter:
    """Minimum `interval` seconds between starts, for all users of the same `key`."""

    def __init__(self, interval: float, key: str) -> None:
        self.interval = max(0.0, float(interval))
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        uid = os.getuid() if hasattr(os, "getuid") else 0
        self.path = Path(tempfile.gettempdir()) / f"repurpose-ratelimit-{uid}-{digest}"

    @contextlib.contextmanager
    def _state(self) -> Iterator[list[float]]:
        """Yield [next_free_start] under an exclusive lock; write it back afterwards."""
        with _THREAD_LOCK, open(self.path, "a+", encoding="utf-8") as fh:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                fh.seek(0)
                try:
                    state = [float(fh.read().strip() or 0.0)]
                except ValueError:
                    state = [0.0]
                yield state
                fh.seek(0)
                fh.truncate()
                fh.write(f"{state[0]:.6f}")
                fh.flush()
            finally:
                if fcntl is not None:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def reserve(self) -> float:
        """Take the next start slot; return seconds to wait for it."""
        with self._state() as state:
            now = time.time()
            start = max(now, state[0])
            state[0] = start + self.interval
        return start - now

    def wait(self) -> float:
        """Block until this caller may start a request; return the seconds waited."""
        delay = self.reserve()
        if delay > 0:
            time.sleep(delay)
        return delay

    def defer(self, seconds: float) -> None:
        """Make every user of this key wait at least `seconds` from now before its next start."""
        with self._state() as state:
            state[0] = max(state[0], time.time() + max(0.0, seconds))
