"""Prefect flow of the `evaluate` stage (logic in `stages/evaluate.py`)."""

from flows.orchestrate import stage_flow

FLOW = stage_flow("evaluate")
