"""Prefect flow of the `extract` stage (logic in `stages/extract.py`)."""

from flows.orchestrate import stage_flow

FLOW = stage_flow("extract")
