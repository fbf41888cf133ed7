"""Prefect flows: every stage's flow (`orchestrate.FLOWS`, built from `repurpose.stage_registry`),
the per-video task mappers (`runners`) and the scheduled `pipeline` / `experiment` flows
(`pipeline`, deployed by `prefect.yaml`). They orchestrate `stages/`; no stage logic lives here."""
