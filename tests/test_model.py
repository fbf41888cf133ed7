"""The network: paper size, position encoding over time (not batch), masks, SDPA vs naive."""

from __future__ import annotations

import pytest
import torch

from repurpose.model.config import PAPER_DIMS, REFERENCE_HEAD, REPURPOSE10K, ModelConfig
from repurpose.model.network import RepurposeNet, count_parameters, sinusoidal_encoding
from repurpose.params import ParamsError

DIMS = {"visual": 12, "audio": 20, "text": 6}
TINY = ModelConfig(d_model=16, n_heads=2, ffn_dim=32, proj_hidden=24, self_layers=1,
                   caption_layers=1, cross_layers=1, head_hidden=8)


def _inputs(batch: int, t: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, t, d, generator=g) for d in DIMS.values())


def test_paper_sizes_give_the_papers_parameter_count() -> None:
    net = RepurposeNet(REPURPOSE10K, PAPER_DIMS)
    assert count_parameters(net) / 1e6 == pytest.approx(82.6, abs=0.05)


def test_position_encoding_is_over_time_steps() -> None:
    pe = sinusoidal_encoding(50, 16)
    assert pe.shape == (50, 16)
    assert torch.allclose(pe[0, 0::2], torch.zeros(8)) and torch.allclose(pe[0, 1::2],
                                                                          torch.ones(8))
    assert not torch.allclose(pe[1], pe[2])
    torch.manual_seed(0)
    net = RepurposeNet(TINY, DIMS).eval()
    # every second identical: only the position encoding can tell seconds apart
    v, a, t = (x[:, :1].expand(1, 30, -1).contiguous() for x in _inputs(1, 1))
    mask = torch.ones(1, 30, dtype=torch.bool)
    logits = net(v, a, t, mask).logits
    assert logits[0].std() > 1e-4  # temporal signal (the reference's batch-indexed PE: none)
    # the same window at batch positions 0 and 1 gets the same output (no batch dependence)
    v2, a2, t2 = _inputs(1, 30, seed=1)
    out = net(torch.cat([v2, v2]), torch.cat([a2, a2]), torch.cat([t2, t2]),
              torch.ones(2, 30, dtype=torch.bool)).logits
    assert torch.allclose(out[0], out[1], atol=1e-6)


@pytest.mark.parametrize("attention", ["sdpa", "naive"])
def test_padding_does_not_change_valid_outputs(attention: str) -> None:
    cfg = ModelConfig(**{**TINY.to_dict(), "attention": attention})
    torch.manual_seed(0)
    net = RepurposeNet(cfg, DIMS).eval()
    v, a, t = _inputs(1, 20)
    alone = net(v, a, t, torch.ones(1, 20, dtype=torch.bool))
    pad = 13
    padded = [torch.cat([x, 100 * torch.randn(1, pad, x.shape[-1])], dim=1) for x in (v, a, t)]
    mask = torch.zeros(1, 20 + pad, dtype=torch.bool)
    mask[:, :20] = True
    out = net(*padded, mask)
    assert torch.allclose(out.logits[:, :20], alone.logits, atol=1e-5)
    assert torch.allclose(out.offsets[:, :20], alone.offsets, atol=1e-5)
    assert torch.allclose(out.cand_scores[:, :20], alone.cand_scores, atol=1e-5)
    assert (out.offsets >= 0).all()  # softplus on the regression head


def test_sdpa_and_naive_attention_agree() -> None:
    torch.manual_seed(0)
    sdpa = RepurposeNet(TINY, DIMS).eval()
    naive = RepurposeNet(ModelConfig(**{**TINY.to_dict(), "attention": "naive"}), DIMS).eval()
    naive.load_state_dict(sdpa.state_dict())
    v, a, t = _inputs(3, 17)
    mask = torch.ones(3, 17, dtype=torch.bool)
    mask[1, 9:] = False
    out_s, out_n = sdpa(v, a, t, mask), naive(v, a, t, mask)
    assert torch.allclose(out_s.logits[mask], out_n.logits[mask], atol=1e-5)
    assert torch.allclose(out_s.offsets[mask], out_n.offsets[mask], atol=1e-5)


def test_streams_and_head_activation() -> None:
    cfg = ModelConfig(**{**TINY.to_dict(), "head_activation": True, "caption_layers": 0})
    net = RepurposeNet(cfg, DIMS)
    out = net(*_inputs(2, 5), torch.ones(2, 5, dtype=torch.bool), return_streams=True)
    streams = out.extras["streams"]
    assert out.logits.shape == (2, 5) and out.offsets.shape == (2, 5, 2)
    assert out.cand_segments.shape == (2, 5, 2) and out.cand_scores.shape == (2, 5)
    assert set(streams) == {"visual", "audio", "text"} and streams["text"].shape == (2, 5, 16)
    assert sum(isinstance(m, torch.nn.ReLU) for m in net.cls_head) == 2


def test_config_validation() -> None:
    section = TINY.to_dict()
    assert ModelConfig.from_section(section) == TINY
    with pytest.raises(ParamsError, match="multiple of"):
        ModelConfig.from_section({**section, "d_model": 15})
    with pytest.raises(ParamsError, match="model.mmct.attention"):
        ModelConfig.from_section({**section, "attention": "flash"})
    with pytest.raises(ParamsError, match="model.mmct.n_heads: missing"):
        ModelConfig.from_section({k: v for k, v in section.items() if k != "n_heads"})
    with pytest.raises(ParamsError, match="expected"):
        ModelConfig.from_section({**section, "self_layers": 1.5})


def test_regression_head_has_a_gradient_everywhere_at_init() -> None:
    """The root cause of bad boundaries: raw seconds through a ReLU leave about half the
    offsets at exactly 0 with no gradient; softplus * reg_scale gives every one a gradient."""
    torch.manual_seed(0)
    inputs = _inputs(2, 40)
    mask = torch.ones(2, 40, dtype=torch.bool)
    reference = RepurposeNet(ModelConfig(**{**TINY.to_dict(), **REFERENCE_HEAD}), DIMS)
    fixed = RepurposeNet(TINY, DIMS)
    dead_ref = (reference(*inputs, mask).offsets == 0).float().mean()
    dead_fixed = (fixed(*inputs, mask).offsets == 0).float().mean()
    assert dead_ref > 0.2 and dead_fixed == 0
    assert fixed(*inputs, mask).offsets.mean() > 5  # seconds: the scale of real clips
