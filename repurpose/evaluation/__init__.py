"""Evaluation without the model: metrics, the predictions-file evaluator, baselines.

Standalone use (no params file, no torch): `python -m repurpose.evaluation --gt SPLIT.json
--pred PRED.jsonl [--out FILE]`; in the pipeline, `repurpose evaluate` (stage `evaluate`).
"""
