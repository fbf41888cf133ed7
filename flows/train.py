"""Prefect flow of the `train` stage (logic in `stages/train.py`)."""

from flows.orchestrate import stage_flow

FLOW = stage_flow("train")
