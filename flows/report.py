"""Prefect flow of the `report` stage (logic in `stages/report.py`)."""

from flows.orchestrate import stage_flow

FLOW = stage_flow("report")
