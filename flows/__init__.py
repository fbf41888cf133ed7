"""Prefect flows: one per pipeline stage. They orchestrate `stages/`; no stage logic lives here."""
