"""Prefect flow of the `embed_text` stage (logic in `stages/embed_text.py`)."""

from flows.orchestrate import stage_flow

FLOW = stage_flow("embed_text")
