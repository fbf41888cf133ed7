"""Prefect flow of the `transcribe` stage (logic in `stages/transcribe.py`)."""

from flows.orchestrate import stage_flow

FLOW = stage_flow("transcribe")
