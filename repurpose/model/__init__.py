"""The clip-localisation model zoo, its losses, decoders and the evaluation protocol.

- `registry`: the arch registry (`mmct`, `linear`, `tal`) and `ModelSpec` (the `model` section);
- `base`: `ArchOutput`, what every arch's forward returns;
- `config` + `network`: `mmct`, the reference multimodal transformer with its defects fixed;
- `linear`: the per-second baseline; `tal`: the ActionFormer-style pyramid detector (torch);
- `losses`: sigmoid focal loss, 1-D DIoU, quality BCE, the optional KL "align guider" (torch);
- `decoders`: one window's output -> candidates (`regression`, `runs`, `hybrid`), numpy only;
- `postprocess`: the protocol (threshold, length filter, Soft-NMS, per-minute cap), numpy only,
  so the evaluator and report never need torch.
"""
