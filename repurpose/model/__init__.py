"""The clip-localisation network, its losses and post-processing.

- `config`: `ModelConfig` (the `model` params section) and the paper's sizes (`REPURPOSE10K`);
- `network`: the multimodal transformer (torch);
- `losses`: sigmoid focal loss, 1-D DIoU, the optional KL "align guider" (torch);
- `postprocess`: scores + offsets -> segments (threshold, top-k, length filter, Soft-NMS, cap),
  numpy only, so the evaluator and report never need torch.
"""
