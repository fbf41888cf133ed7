"""One fetch attempt in a child process, under a wall-clock deadline.

Socket and ffmpeg read timeouts bound each read, not a download: a server that drips 2 KB/s
never trips them. So each attempt (yt-dlp or the local ffmpeg cut, then the probe and decode
checks) runs in a child process that leads its own process group; when the deadline passes,
the whole group (the child and every ffmpeg it started) is killed and the attempt fails as a
transient `deadline` failure. Children come from a fork server (one per process, started on
first use with the download modules preloaded), so an attempt costs a fork, not an interpreter.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from repurpose.download.errors import (
    Classified,
    TransientDownloadError,
    classify_exception,
    failure,
)

_PRELOAD = ["repurpose.download.job", "yt_dlp"]
_context: Any = None


def _ctx() -> Any:
    global _context
    if _context is None:
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        _context = mp.get_context(method)
        if method == "forkserver":
            _context.set_forkserver_preload(_PRELOAD)
    return _context


def run_with_deadline(fn: Callable[..., Any], args: tuple, seconds: float, what: str) -> Any:
    """`fn(*args)` in a child process group; its result, or its failure re-raised (classified);
    after `seconds` the group is killed and a transient `deadline` failure is raised."""
    ctx = _ctx()
    receive, send = ctx.Pipe(duplex=False)
    lifeline, keep = ctx.Pipe(duplex=False)  # the child sees EOF when `keep` closes
    proc = ctx.Process(target=_child, args=(send, lifeline, fn, args), name=f"attempt {what}")
    _start(proc)
    send.close()
    lifeline.close()
    try:
        if not receive.poll(max(0.0, seconds)):
            raise TransientDownloadError(
                f"{what}: not finished within the {seconds:.0f} s left of its deadline "
                "(download.deadline); killed, the next run tries again", "deadline")
        status, payload = receive.recv()
    except EOFError as exc:  # the child died without an answer (killed, out of memory)
        proc.join(5)
        raise TransientDownloadError(
            f"{what}: the attempt process died (exit code {proc.exitcode})", "crashed") from exc
    finally:
        kill_group(proc.pid)
        if proc.is_alive():  # not yet in its own group: kill it alone
            proc.kill()
        proc.join(5)
        receive.close()
        keep.close()
    if status == "ok":
        return payload
    message, kind, category, retry_after = payload
    raise failure(message, Classified(kind, category), retry_after)


def _start(proc: Any) -> None:
    """Start `proc`, also from a daemonic process (a Dask worker), which multiprocessing
    refuses by default: the attempt process dies with its stage anyway (the lifeline)."""
    config = mp.current_process()._config
    daemonic = config.get("daemon")
    if daemonic:
        config["daemon"] = False
    try:
        proc.start()
    finally:
        if daemonic:
            config["daemon"] = daemonic


def kill_group(pgid: int | None) -> None:
    """SIGKILL every process of group `pgid` (an attempt child and what it started)."""
    if pgid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def _child(send: Any, lifeline: Any, fn: Callable[..., Any], args: tuple) -> None:
    os.setpgrp()  # a group of its own: killpg reaches the ffmpeg processes it starts
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # the stage's handler decides, not us
    _die_with_stage(lifeline)
    try:
        result = ("ok", fn(*args))
    except BaseException as exc:  # noqa: BLE001 - every failure goes back, classified
        f = classify_exception(exc)
        result = ("error", (f.message, f.classified.kind, f.category, f.retry_after))
    send.send(result)
    send.close()



def _stop_group(*_: object) -> None:
    """Kill this attempt's whole group (itself and its ffmpeg)."""
    os.killpg(0, signal.SIGKILL)


def _die_with_stage(lifeline: Any) -> None:
    """SIGTERM takes the group down, and so does the end of the stage: a thread waits on the
    lifeline pipe, whose other end only the stage holds, so even a kill -9 of the stage leaves
    no download running (the fork server itself lives on while its children do)."""
    signal.signal(signal.SIGTERM, _stop_group)

    def watch() -> None:
        with contextlib.suppress(OSError, EOFError):
            lifeline.poll(None)  # returns at EOF: the stage closed it or died
        _stop_group()

    threading.Thread(target=watch, name="lifeline", daemon=True).start()
