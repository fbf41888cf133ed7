"""Training: windows joined with feature shards, the loop, checkpoints, DDP, inference.

`index` (which windows are usable, no torch) · `dataset` (torch dataset, collate, batches) ·
`config` (`train` params) · `loop` (fit, validate, checkpoint) · `checkpoint` · `run`
(train from params, load a trained model) · `predict` (windows -> predictions JSONL) ·
`ddp` (`torchrun --nproc_per_node N -m repurpose.training.ddp ...`). Inference itself (shared
with validation and `repurpose clip`) is `repurpose.inference`.
"""
