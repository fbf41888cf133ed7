"""Prefect flow of the `download` stage (logic in `stages/download.py`)."""

from flows.orchestrate import stage_flow

FLOW = stage_flow("download")
