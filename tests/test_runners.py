"""Per-video mappers: plain, Prefect threads with retries, and a real Dask cluster."""

from __future__ import annotations

import os
import time

import pytest

from repurpose.errors import PermanentError
from repurpose.orchestration import Orchestration
from repurpose.runner import local_mapper, serial_map

from .runner_fns import die_once, flaky, square_with_pid


def test_local_mappers_return_every_result_and_exception():
    def fn(x: int) -> int:
        if x == 2:
            raise ValueError("bad video")
        return x + 1

    for mapper in (serial_map, local_mapper("threads", 2)):
        out = dict(mapper(fn, [1, 2, 3], key=str))
        assert out[1] == 2 and out[3] == 4
        assert isinstance(out[2], ValueError)
    with pytest.raises(ValueError, match="unknown task runner"):
        local_mapper("dask", 2)


def _in_flow(orch: Orchestration, fn, items):
    from prefect import flow

    from flows.runners import prefect_mapper, task_runner_for

    @flow(name="runner-test")
    def run():
        return list(prefect_mapper(orch)(fn, items, key=lambda i: f"item-{i[0]}"))

    return run.with_options(task_runner=task_runner_for(orch))()


@pytest.fixture
def api(prefect_server, monkeypatch):
    """The session's real server, also when Prefect was imported (settings loaded) earlier."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_API_URL", prefect_server["url"])
    with temporary_settings(updates={PREFECT_API_URL: prefect_server["url"]}):
        yield prefect_server["url"]


@pytest.mark.slow
def test_prefect_retries_transient_errors_but_not_permanent_ones(api, tmp_path):
    orch = Orchestration(prefect=True, task_runner="threads", workers=2, retries=2)
    items = [(x, str(tmp_path)) for x in range(4)]
    out = {item[0]: result for item, result in _in_flow(orch, flaky, items)}
    assert out[0] == 0 and out[1] == 10 and out[2] == 20  # each failed once, then retried
    assert isinstance(out[3], PermanentError)  # recorded, not retried, flow still completes


@pytest.mark.slow
def test_dask_cluster_of_two_processes_survives_a_killed_worker(api, tmp_path):
    orch = Orchestration(prefect=True, task_runner="dask", workers=2, retries=0)
    items = [(x, str(tmp_path)) for x in range(6)]
    out = {item[0]: result for item, result in _in_flow(orch, die_once, items)}
    assert {x: r[0] for x, r in out.items()} == {x: x * x for x in range(6)}
    pids = {r[1] for r in out.values()}
    assert os.getpid() not in pids  # the work ran in worker processes
    died = int((tmp_path / "died-1").read_text())
    assert out[1][1] != died  # item 1 was rerun by another (restarted) worker


@pytest.mark.slow
def test_dask_and_threads_give_the_same_results(api):
    items = [(x,) for x in range(5)]

    def values(runner: str, batch_size: int | str = "auto"):
        orch = Orchestration(prefect=True, task_runner=runner, workers=2, retries=0,
                             batch_size=batch_size)
        return {i[0]: r[0] for i, r in _in_flow(orch, _square_item, items)}

    expected = {x: x * x for x in range(5)}
    assert values("dask") == values("threads") == expected
    assert values("dask", batch_size=2) == values("threads", batch_size=2) == expected


def _square_item(item: tuple[int]) -> tuple[int, int]:
    return square_with_pid(item[0])


@pytest.mark.slow
def test_batched_prefect_tasks_keep_per_video_retries_and_failures(api, tmp_path):
    import httpx
    from prefect import flow
    from prefect.runtime import flow_run

    from flows.runners import batches, prefect_mapper, task_runner_for

    assert batches([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    orch = Orchestration(prefect=True, task_runner="threads", workers=2, retries=2, batch_size=2)
    items = [(x, str(tmp_path)) for x in range(5)]

    @flow(name="batch-test")
    def run():
        out = list(prefect_mapper(orch)(flaky, items, key=lambda i: f"item-{i[0]}"))
        return str(flow_run.id), out

    run_id, out = run.with_options(task_runner=task_runner_for(orch))()
    results = {item[0]: result for item, result in out}
    assert sorted(results) == [0, 1, 2, 3, 4]
    assert results[0] == 0 and results[1] == 10 and results[2] == 20 and results[4] == 40
    assert isinstance(results[3], PermanentError)  # recorded for that video only, not retried
    assert all((tmp_path / f"tried-{x}").exists() for x in (0, 1, 2, 4))
    body = {"flow_runs": {"id": {"any_": [run_id]}}}
    deadline = time.monotonic() + 60
    while True:  # the server records task runs from events, a moment after the flow ends
        runs = httpx.post(f"{api}/task_runs/filter", json=body, timeout=30).json()
        if len(runs) >= 3 and all(r["state_type"] == "COMPLETED" for r in runs):
            break
        assert time.monotonic() < deadline, runs
        time.sleep(1)
    assert sorted(r["name"] for r in runs) == [
        "batch 1/3: item-0..item-1 (2)", "batch 2/3: item-2..item-3 (2)", "batch 3/3: item-4 (1)"]
