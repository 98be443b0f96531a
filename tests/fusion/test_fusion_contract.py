"""Contract tests over every registered fusion."""
import pytest
import torch

from polymodal.encoders.base import EncoderOutput
from polymodal.fusion import FUSIONS

DIMS = {"audio": 6, "image": 8, "text": 5}


def outputs(batch: int = 4, seed: int = 0, requires_grad: bool = False) -> dict[str, EncoderOutput]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, d in DIMS.items():
        tokens = torch.randn(batch, 3, d, generator=g, requires_grad=requires_grad)
        out[name] = EncoderOutput(tokens=tokens, pooled=tokens.mean(1), mask=torch.ones(batch, 3, dtype=torch.bool))
    return out


@pytest.fixture(params=sorted(FUSIONS))
def fusion(request):
    torch.manual_seed(0)
    return FUSIONS[request.param](input_dims=DIMS).eval()


def test_shapes_and_finite(fusion):
    out = fusion(outputs(), torch.ones(4, 3, dtype=torch.bool))
    assert out.fused.shape == (4, fusion.out_dim)
    assert torch.isfinite(out.fused).all()
    if out.weights is not None:
        assert out.weights.shape == (4, 3)


def test_gradients_reach_every_input(fusion):
    fusion.train()
    outs = outputs(requires_grad=True)
    fusion(outs, torch.ones(4, 3, dtype=torch.bool)).fused.sum().backward()
    for name, o in outs.items():
        assert o.tokens.grad is not None and o.tokens.grad.abs().sum() > 0, name


def test_order_of_the_mapping_does_not_matter(fusion):
    outs = outputs()
    present = torch.ones(4, 3, dtype=torch.bool)
    forward = fusion(outs, present).fused
    backward = fusion(dict(reversed(list(outs.items()))), present).fused
    torch.testing.assert_close(forward, backward)


def test_absent_input_is_ignored_for_that_row(fusion):
    present = torch.ones(4, 3, dtype=torch.bool)
    present[1, 1] = False  # row 1 has no image (sorted order: audio, image, text)
    a, b = outputs(seed=1), outputs(seed=1)
    b["image"].pooled[1] += 100.0
    b["image"].tokens.data[1] += 100.0
    fa, fb = fusion(a, present).fused, fusion(b, present).fused
    torch.testing.assert_close(fa[1], fb[1])  # the absent image's values cannot leak in
    assert not torch.allclose(fa[0], fb[0]) or torch.equal(a["image"].pooled[0], b["image"].pooled[0])
