"""Prefect-backed mappers and task runners, chosen by `orchestration.task_runner`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from prefect import get_run_logger, task
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from repurpose.errors import TransientError
from repurpose.orchestration import Orchestration
from repurpose.runner import Mapper

T = TypeVar("T")
R = TypeVar("R")


def _retry_transient(task_, task_run, state) -> bool:  # noqa: ANN001 - Prefect hook signature
    """Retry only errors the library marks as transient."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:  # noqa: BLE001
        return False
    return False


def task_runner_for(orch: Orchestration):  # noqa: ANN201 - a Prefect TaskRunner
    """The Prefect task runner for `orch.task_runner`."""
    if orch.task_runner == "dask":
        from prefect_dask import DaskTaskRunner  # optional extra: pip install '.[dask]'

        if orch.dask_address:
            return DaskTaskRunner(address=orch.dask_address)
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={
                "n_workers": orch.workers,
                "threads_per_worker": 1,
                "processes": True,
                "host": "127.0.0.1",  # scheduler, workers and dashboard stay on loopback
                "dashboard_address": "127.0.0.1:0",
            },
        )
    workers = 1 if orch.task_runner == "serial" else max(1, orch.workers)
    return ThreadPoolTaskRunner(max_workers=workers)


def retry_delays(retries: int) -> list[int]:
    """Seconds to wait before each retry of a per-video task: 1, 2, 4, ..."""
    return [2**i for i in range(max(retries, 1))]


# With `orchestration.batch_size: auto`, one map never makes more task runs than this. Measured
# (benchmarks/prefect_overhead.py --tasks 8400): a Prefect 3.9 server (SQLite) records ~15 task
# runs/s on this machine while a stage submits ~60/s; each task run is 3 events and the
# server's in-memory event queue holds 10,000, so past a few thousand task runs per stage it
# drops events and those task runs are lost or left Running in the UI. 1,000 task runs
# (3,000 events) fit in that queue even if the server records none of them meanwhile.
MAX_TASK_RUNS = 1000


def batch_size_for(setting: int | str, n_items: int) -> int:
    """Videos per task run: `setting`, or for "auto" the smallest size giving at most
    MAX_TASK_RUNS task runs (1, one task run per video, up to that many videos)."""
    if setting == "auto":
        return max(1, -(-n_items // MAX_TASK_RUNS))
    return int(setting)


def prefect_mapper(orch: Orchestration) -> Mapper:
    """A mapper that runs items as Prefect tasks inside the current flow: one task run per
    item named after it, or one per batch of items (`orchestration.batch_size`)."""

    def _map(
        fn: Callable[[T], R], items: Sequence[T], *, key: Callable[[T], str]
    ) -> Iterator[tuple[T, R | BaseException]]:
        """Per-item or batched task runs, by `orch.batch_size` and the number of items."""
        size = batch_size_for(orch.batch_size, len(items))
        if size > 1:
            yield from _batched_map(orch, size, fn, items, key)
        else:
            yield from _per_item_map(orch, fn, items, key)

    return _map


def _per_item_map(orch: Orchestration, fn: Callable[[T], R], items: Sequence[T],
                  key: Callable[[T], str]) -> Iterator[tuple[T, R | BaseException]]:
    """One task run per item, named after it; Prefect retries transient errors."""
    per_item = task(
        fn,
        name=getattr(fn, "__name__", "per-video"),
        retries=orch.retries,
        retry_delay_seconds=retry_delays(orch.retries),
        retry_condition_fn=_retry_transient,
        persist_result=False,
    )
    futures = {
        per_item.with_options(task_run_name=key(item)).submit(item): item for item in items
    }
    for fut in as_completed(list(futures)):
        item = futures[fut]
        try:
            yield item, fut.result()
        except Exception as exc:  # noqa: BLE001 - the stage records per-item failures
            yield item, exc


def attempt(fn: Callable[[T], R], item: T, name: str, retries: int) -> R | BaseException:
    """`fn(item)`, retried up to `retries` times on a TransientError (the same waits as the
    per-item tasks); the last exception is returned, not raised."""
    delays = retry_delays(retries)
    for tries in range(retries + 1):
        try:
            return fn(item)
        except TransientError as exc:
            if tries == retries:
                return exc
            get_run_logger().warning("%s: transient error, retry %d/%d in %d s: %s", name,
                                     tries + 1, retries, delays[tries], exc)
            time.sleep(delays[tries])
        except Exception as exc:  # noqa: BLE001 - the stage records per-item failures
            return exc
    raise AssertionError("unreachable")  # pragma: no cover


def batches(items: Sequence[T], size: int) -> list[list[T]]:
    """`items` in consecutive batches of `size` (the last one may be shorter)."""
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def _batched_map(orch: Orchestration, size: int, fn: Callable[[T], R], items: Sequence[T],
                 key: Callable[[T], str]) -> Iterator[tuple[T, R | BaseException]]:
    """One task run per `size` items (named after its first and last item): far fewer task
    runs for the server to record, at the price of per-video states in the UI. Each item is
    still tried, retried on a transient error and reported on its own."""

    def run_batch(batch: list[T]) -> list[R | BaseException]:
        """The batch's task: every item tried on its own, failures logged and returned."""
        results = [attempt(fn, item, key(item), orch.retries) for item in batch]
        for item, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                get_run_logger().warning("%s failed: %r", key(item), result)
        return results

    name = getattr(fn, "__name__", "per-video")
    per_batch = task(run_batch, name=f"{name}-batch", retries=0, persist_result=False)
    groups = batches(items, size)
    futures = {}
    for i, batch in enumerate(groups, 1):
        label = f"{key(batch[0])}..{key(batch[-1])}" if len(batch) > 1 else key(batch[0])
        run_name = f"batch {i}/{len(groups)}: {label} ({len(batch)})"
        futures[per_batch.with_options(task_run_name=run_name).submit(batch)] = batch
    for fut in as_completed(list(futures)):
        batch = futures[fut]
        try:
            results = fut.result()
        except Exception as exc:  # noqa: BLE001 - the whole batch failed: each item says so
            results = [exc] * len(batch)
        yield from zip(batch, results, strict=True)
