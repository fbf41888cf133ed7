"""Prefect-backed mappers and task runners, chosen by `orchestration.task_runner`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from prefect import task
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from repurpose.cli import Orchestration
from repurpose.errors import TransientError
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


def prefect_mapper(orch: Orchestration) -> Mapper:
    """A mapper that runs each item as a Prefect task named after it, inside the current flow."""

    def _map(
        fn: Callable[[T], R], items: Sequence[T], *, key: Callable[[T], str]
    ) -> Iterator[tuple[T, R | BaseException]]:
        per_item = task(
            fn,
            name=getattr(fn, "__name__", "per-video"),
            retries=orch.retries,
            retry_delay_seconds=[2 ** i for i in range(max(orch.retries, 1))],
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
