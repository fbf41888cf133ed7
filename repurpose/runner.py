"""Per-video mappers: run one function over many videos, yielding results as they finish.

A stage never knows how its per-video work is scheduled: it receives a `Mapper` and calls
`mapper(fn, items, key=...)`. Plain Python mappers live here; the Prefect ones (threads or a
Dask cluster behind Prefect tasks) live in `flows/runners.py`. The registry key is the same
string in `params.yaml` (`orchestration.task_runner`), on the CLI and in the API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Mapper(Protocol):
    """Call `fn` on each item; yield `(item, result-or-exception)` in completion order."""

    def __call__(
        self, fn: Callable[[T], R], items: Sequence[T], *, key: Callable[[T], str]
    ) -> Iterator[tuple[T, R | BaseException]]: ...


def serial_map(
    fn: Callable[[T], R], items: Sequence[T], *, key: Callable[[T], str]
) -> Iterator[tuple[T, R | BaseException]]:
    """One item after another in this process."""
    del key
    for item in items:
        try:
            yield item, fn(item)
        except Exception as exc:  # noqa: BLE001 - the stage records per-item failures
            yield item, exc


def thread_mapper(workers: int) -> Mapper:
    """A mapper over a pool of `workers` threads (good for I/O-bound work such as downloads)."""

    def _map(
        fn: Callable[[T], R], items: Sequence[T], *, key: Callable[[T], str]
    ) -> Iterator[tuple[T, R | BaseException]]:
        del key
        if workers <= 1:
            yield from serial_map(fn, items, key=str)
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(fn, item): item for item in items}
            for fut in as_completed(futures):
                exc = fut.exception()
                yield futures[fut], (exc if exc is not None else fut.result())

    return _map


def local_mapper(kind: str, workers: int) -> Mapper:
    """Mapper by registry key, without Prefect: 'serial' or 'threads'."""
    if kind == "serial":
        return serial_map
    if kind == "threads":
        return thread_mapper(workers)
    raise ValueError(f"unknown task runner {kind!r} without Prefect (choose serial or threads)")
