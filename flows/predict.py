"""Prefect flow of the `predict` stage (logic in `stages/predict.py`)."""

from flows.orchestrate import stage_flow

FLOW = stage_flow("predict")
