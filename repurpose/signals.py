"""Stopping a stage on SIGINT / SIGTERM: every child process first, then the stage itself.

Python's default SIGTERM ends only the stage's own process: the ffmpeg processes it started
(yt-dlp's section downloads, cuts, audio decoding) live on and keep downloading. Inside
`stop_children_on_signal`, SIGINT and SIGTERM instead stop every descendant process (found
through /proc, so also those yt-dlp or a fork server started, in whatever process group):
SIGTERM, then SIGKILL after a short grace. The stage then exits at once with status
128 + signal number. Finished work is already on disk (every output is written to a temporary
name and renamed); the temporary files in flight are removed when the stage next starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

GRACE_S = 2.0  # seconds children get to exit after SIGTERM before SIGKILL
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _parents() -> dict[int, int]:
    """pid -> parent pid of every live (not zombie) process, from /proc ({} without it)."""
    parents = {}
    try:
        entries = list(os.scandir("/proc"))
    except OSError:
        return parents
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces
        if fields and fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid: int | None = None) -> list[int]:
    """Every live process below `pid` (default: this process), parents before children."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, queue = [], [root]
    while queue:
        for child in sorted(children.get(queue.pop(0), [])):
            found.append(child)
            queue.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def stop_descendants(grace: float = GRACE_S) -> int:
    """SIGTERM every descendant process, SIGKILL those still alive after `grace`; the count.
    The list is taken once, first: a child that dies does not hide its own children."""
    pids = descendants()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    return len(pids)


@contextlib.contextmanager
def stop_children_on_signal(what: str) -> Iterator[None]:
    """While the block runs, SIGINT/SIGTERM stop every child process, print one line naming
    `what`, and exit with 128 + the signal number (only in the main thread; elsewhere no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        n = stop_descendants()
        name = signal.Signals(signum).name
        sys.stderr.write(f"{what}: stopped by {name} ({n} child processes stopped); finished "
                         "work is kept, run it again to resume\n")
        sys.stderr.flush()
        os._exit(128 + signum)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
