"""Prefect flow of the `headline` stage (logic in `stages/headline.py`)."""

from flows.orchestrate import stage_flow

FLOW = stage_flow("headline")
