"""Build and run the Prefect flow of a stage."""

from __future__ import annotations

import argparse
import importlib

from prefect import Flow, flow

from repurpose.cli import STAGES, Orchestration


def stage_flow(name: str) -> Flow:
    """A Prefect flow that runs stage `name` with per-video work mapped to Prefect tasks."""

    def run(args: argparse.Namespace, orch: Orchestration) -> int:
        from flows.runners import prefect_mapper
        from repurpose.progress import stage_desc, with_progress

        module = importlib.import_module(STAGES[name][0])
        mapper = with_progress(prefect_mapper(orch), stage_desc(name, args))
        return int(module.main(args, mapper=mapper))

    run.__name__ = f"{name}_flow"
    return flow(name=name, log_prints=True, validate_parameters=False)(run)


def run_stage_flow(name: str, args: argparse.Namespace, orch: Orchestration) -> int:
    """Run the flow of stage `name` with the task runner `orch` asks for."""
    from flows.runners import task_runner_for

    module = importlib.import_module(f"flows.{name}")
    stage = module.FLOW.with_options(task_runner=task_runner_for(orch))
    return int(stage(args, orch))
