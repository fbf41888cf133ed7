"""Prefect flow of the `sample` stage (logic in `stages/sample.py`)."""

from flows.orchestrate import stage_flow

FLOW = stage_flow("sample")
