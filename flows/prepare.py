"""Prefect flow of the `prepare` stage (logic in `stages/prepare.py`)."""

from flows.orchestrate import stage_flow

FLOW = stage_flow("prepare")
