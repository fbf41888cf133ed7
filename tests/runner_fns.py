"""Per-item functions for runner tests; module-level so Dask workers can unpickle them."""

from __future__ import annotations

import os
from pathlib import Path

from repurpose.errors import PermanentError, TransientError


def square_with_pid(x: int) -> tuple[int, int]:
    """x*x and the worker process id."""
    return x * x, os.getpid()


def die_once(item: tuple[int, str]) -> tuple[int, int]:
    """Kill this worker process the first time item 1 is run (marker file), else square."""
    x, marker_dir = item
    marker = Path(marker_dir) / f"died-{x}"
    if x == 1 and not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)  # the Dask worker dies mid-task
    return x * x, os.getpid()


def flaky(item: tuple[int, str]) -> int:
    """Transient failure on the first attempt of every item, permanent for item 3."""
    x, marker_dir = item
    if x == 3:
        raise PermanentError("video deleted")
    marker = Path(marker_dir) / f"tried-{x}"
    if not marker.exists():
        marker.write_text("1")
        raise TransientError("HTTP 503")
    return x * 10
