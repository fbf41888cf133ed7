"""The Prefect flow of every stage, built from the stage registry (no per-stage flow files).

`FLOWS[name]` runs `stages/<name>.py`'s `main(args, mapper)` with per-video work mapped to
Prefect tasks (`flows/runners.py`). Imports the library's registry and orchestration config,
never `repurpose.cli`.
"""

from __future__ import annotations

import argparse

from prefect import Flow, flow

from repurpose.orchestration import Orchestration
from repurpose.stage_registry import STAGES, get_stage


def stage_flow(name: str) -> Flow:
    """A Prefect flow that runs stage `name` with per-video work mapped to Prefect tasks."""
    stage = get_stage(name)

    def run(args: argparse.Namespace, orch: Orchestration) -> int:
        """The flow body: the stage's main with a Prefect mapper."""
        from flows.runners import prefect_mapper
        from repurpose.progress import stage_desc, with_progress

        mapper = with_progress(prefect_mapper(orch), stage_desc(name, args))
        return int(stage.load().main(args, mapper=mapper))

    run.__name__ = f"{name}_flow"
    run.__doc__ = stage.help
    return flow(name=name, log_prints=True, validate_parameters=False)(run)


# stage name -> its flow, in pipeline order
FLOWS: dict[str, Flow] = {s.name: stage_flow(s.name) for s in STAGES}


def run_stage_flow(name: str, args: argparse.Namespace, orch: Orchestration) -> int:
    """Run the flow of stage `name` with the task runner `orch` asks for."""
    from flows.runners import task_runner_for

    return int(FLOWS[name].with_options(task_runner=task_runner_for(orch))(args, orch))
