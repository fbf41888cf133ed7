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


def prefect_mapper(orch: Orchestration) -> Mapper:
    """A mapper that runs items as Prefect tasks inside the current flow: one task run per
    item named after it, or with `orch.batch_size` > 1 one task run per batch of items."""
    if orch.batch_size > 1:
        return batched_prefect_mapper(orch)

    def _map(
        fn: Callable[[T], R], items: Sequence[T], *, key: Callable[[T], str]
    ) -> Iterator[tuple[T, R | BaseException]]:
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

    return _map


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


def batched_prefect_mapper(orch: Orchestration) -> Mapper:
    """A mapper that runs `orch.batch_size` items per Prefect task run (named after its first
    and last item): far fewer task runs for the server to record, at the price of per-video
    detail in the UI. Each item is still tried, retried and reported on its own."""

    def _map(
        fn: Callable[[T], R], items: Sequence[T], *, key: Callable[[T], str]
    ) -> Iterator[tuple[T, R | BaseException]]:
        def run_batch(batch: list[T]) -> list[R | BaseException]:
            results = [attempt(fn, item, key(item), orch.retries) for item in batch]
            for item, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    get_run_logger().warning("%s failed: %r", key(item), result)
            return results

        name = getattr(fn, "__name__", "per-video")
        per_batch = task(run_batch, name=f"{name}-batch", retries=0, persist_result=False)
        groups = batches(items, orch.batch_size)
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

    return _map
