"""Contract tests over every registered fusion (and the option variants that change the data path)."""
import pytest
import torch
from synthetic import TINY_FUSIONS
from torch import nn

from polymodal.encoders.base import EncoderOutput
from polymodal.fusion import FUSIONS, FusionOutput
from polymodal.heads import ClassificationHead, LateHead
from polymodal.model import MultimodalModel

DIMS = {"audio": 6, "image": 8, "text": 5}
TINY = TINY_FUSIONS  # small widths keep the tests fast; defaults are tested by the registry loop too
VARIANTS = [(name, TINY.get(name, {})) for name in sorted(FUSIONS)] + [
    ("attention", {**TINY["attention"], "tokens": True}),
    ("cross_attention", {**TINY["cross_attention"], "tokens": False}),
    ("late", {**TINY["late"], "combine": "mean"}),
]


def _id(variant):
    name, options = variant
    extra = {k: v for k, v in options.items() if k in ("tokens", "combine")}
    return name + "".join(f"-{k}={v}" for k, v in extra.items())


def outputs(batch: int = 4, seed: int = 0, requires_grad: bool = False) -> dict[str, EncoderOutput]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for t, (name, d) in zip((3, 2, 4), DIMS.items()):  # different lengths per input
        tokens = torch.randn(batch, t, d, generator=g, requires_grad=requires_grad)
        mask = torch.ones(batch, t, dtype=torch.bool)
        mask[0, -1] = False  # one padded position
        out[name] = EncoderOutput(tokens=tokens, pooled=tokens.mean(1), mask=mask)
    return out


@pytest.fixture(params=VARIANTS, ids=_id)
def fusion(request):
    torch.manual_seed(0)
    name, options = request.param
    return FUSIONS[name](input_dims=DIMS, **options).eval()


def all_present(batch: int = 4) -> torch.Tensor:
    return torch.ones(batch, len(DIMS), dtype=torch.bool)


def test_every_fusion_has_options_and_defaults_build():
    for name, cls in FUSIONS.items():
        assert cls.Options.model_config.get("extra") == "forbid", name
        module = cls(input_dims=DIMS, **cls.Options().model_dump())
        assert module.out_dim > 0


def test_shapes_and_finite(fusion):
    out = fusion(outputs(), all_present())
    assert isinstance(out, FusionOutput)
    assert out.fused.shape == (4, fusion.out_dim)
    assert torch.isfinite(out.fused).all()
    if out.weights is not None:
        assert out.weights.shape == (4, 3)
        assert (out.weights >= 0).all()
        torch.testing.assert_close(out.weights.sum(1), torch.ones(4))
    if out.parts is not None:
        assert out.parts.shape == (4, 3, fusion.out_dim) and out.weights is not None


def test_gradients_reach_every_input(fusion):
    fusion.train()
    outs = outputs(requires_grad=True)
    fused = fusion(outs, all_present()).fused  # [B, D]
    # A fixed random readout, not fused.sum(): a fused vector that ends in a LayerNorm (attention)
    # sums to its bias whatever the inputs, so the sum's gradient is zero up to rounding.
    readout = torch.randn(fused.shape, generator=torch.Generator().manual_seed(0))  # [B, D]
    (fused * readout).sum().backward()
    for name, o in outs.items():
        assert o.tokens.grad is not None and o.tokens.grad.abs().sum() > 0, name
    for name, p in fusion.named_parameters():
        assert p.grad is None or torch.isfinite(p.grad).all(), name


def test_order_of_the_mapping_does_not_matter(fusion):
    outs = outputs()
    forward = fusion(outs, all_present())
    backward = fusion(dict(reversed(list(outs.items()))), all_present())
    torch.testing.assert_close(forward.fused, backward.fused)
    if forward.weights is not None:
        torch.testing.assert_close(forward.weights, backward.weights)


def test_eval_is_deterministic(fusion):
    a, b = fusion(outputs(), all_present()), fusion(outputs(), all_present())
    torch.testing.assert_close(a.fused, b.fused, rtol=0, atol=0)


def _moved(outs: dict[str, EncoderOutput], name: str, row: int) -> dict[str, EncoderOutput]:
    """``outs`` with input ``name`` of one row moved by a large random offset (tokens and pooled).

    The offset varies along D: a constant one would vanish in the fusions' input LayerNorms.
    """
    tokens = outs[name].tokens.detach().clone()  # [B, T, D]
    tokens[row] += 100.0 * torch.randn(tokens.shape[1:], generator=torch.Generator().manual_seed(7))
    return {**outs, name: EncoderOutput(tokens=tokens, pooled=tokens.mean(1), mask=outs[name].mask)}


def test_absent_input_is_ignored_for_that_row(fusion):
    present = all_present()
    present[1, 1] = False  # row 1 has no image (sorted order: audio, image, text)
    a = outputs(seed=1)
    fa = fusion(a, present)
    # The absent image's values cannot leak into its row ...
    torch.testing.assert_close(fusion(_moved(a, "image", row=1), present).fused[1], fa.fused[1])
    # ... while a present input's values do reach the fused vector of its row.
    for name in sorted(DIMS):
        moved = fusion(_moved(a, name, row=0), present).fused
        assert not torch.allclose(moved[0], fa.fused[0]), name
    # Rows that have every input are not affected by another row's absence.
    full = fusion(a, all_present())
    torch.testing.assert_close(fa.fused[[0, 2, 3]], full.fused[[0, 2, 3]])
    if fa.weights is not None and fusion.__class__.__name__ in ("WeightedFusion", "GatedFusion", "LateFusion"):
        assert fa.weights[1, 1] == 0  # softmax-weighted fusions give an absent input no weight


def test_rows_with_no_input_stay_finite(fusion):
    present = all_present()
    present[2] = False
    out = fusion(outputs(), present)
    assert torch.isfinite(out.fused).all()
    if out.weights is not None:
        assert torch.isfinite(out.weights).all()


def test_fusions_that_combine_inputs_refuse_a_single_one():
    from polymodal.errors import ConfigError

    for name, cls in FUSIONS.items():
        if getattr(cls, "min_inputs", 1) >= 2:
            with pytest.raises(ConfigError, match=f"fusion '{name}' combines at least 2 inputs, got 1 \\(image\\)"):
                cls(input_dims={"image": 8})
        else:
            out = cls(input_dims={"image": 8}, **TINY[name]).eval()(
                {"image": outputs()["image"]}, torch.ones(4, 1, dtype=torch.bool))
            assert out.fused.shape == (4, cls(input_dims={"image": 8}, **TINY[name]).out_dim)


def test_tensor_fusion_refuses_a_product_over_the_memory_bound():
    from polymodal.errors import ConfigError

    dims = {f"in{i}": 4 for i in range(4)}
    with pytest.raises(ConfigError, match=r"\(64\+1\)\^4 = 17,850,625 elements per example.*GiB.*max_mib=256"):
        FUSIONS["tensor"](input_dims=dims, proj_dim=64, hidden=128)


class _Linear(nn.Module):
    """A stand-in encoder: ``x [B, T, d]`` → Linear → tokens; BatchNorm so presence matters."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.proj, self.norm, self.out_dim = nn.Linear(d_in, d_out), nn.BatchNorm1d(d_out), d_out

    def forward(self, batch):
        tokens = self.proj(batch["x"])  # [B, T, D]
        tokens = self.norm(tokens.transpose(1, 2)).transpose(1, 2)  # [B, T, D]
        return EncoderOutput(tokens=tokens, pooled=tokens.mean(1), mask=torch.ones(tokens.shape[:2], dtype=torch.bool))


def _model(name, options):
    torch.manual_seed(0)
    encoders = {n: _Linear(3, d) for n, d in DIMS.items()}
    fusion = FUSIONS[name](input_dims=DIMS, **options)
    head = ClassificationHead(fusion.out_dim, 3)
    if getattr(fusion, "head_wrapper", None):
        head = LateHead(head, sorted(DIMS))
    return MultimodalModel(encoders, fusion, head)


def _batch(present):
    g = torch.Generator().manual_seed(3)
    return {"inputs": {n: {"x": torch.randn(4, 2, 3, generator=g)} for n in sorted(DIMS)}, "present": present,
            "target": torch.tensor([0, 1, 2, 0])}


@pytest.mark.parametrize("variant", VARIANTS, ids=_id)
def test_gradients_reach_every_encoder_through_the_model(variant):
    model = _model(*variant).train()
    logits, _ = model(_batch(all_present()))
    model.head.loss(logits, torch.tensor([0, 1, 2, 0])).backward()
    for name, encoder in model.encoders.items():
        assert encoder.proj.weight.grad is not None and encoder.proj.weight.grad.abs().sum() > 0, name


@pytest.mark.parametrize("variant", VARIANTS, ids=_id)
def test_model_encodes_only_present_rows(variant):
    """An absent row's input never reaches its encoder: not its values, nor BatchNorm's statistics."""
    model = _model(*variant).train()
    present = all_present()
    present[[0, 3], 1] = False
    batch = _batch(present)
    stats = model.encoders["image"].norm.running_mean.clone()
    model(batch)
    moved = model.encoders["image"].norm.running_mean.clone()
    model.encoders["image"].norm.running_mean.copy_(stats)
    batch["inputs"]["image"]["x"][[0, 3]] = 1e6
    model(batch)
    torch.testing.assert_close(model.encoders["image"].norm.running_mean, moved)
    model.eval()
    a, _ = model(batch)
    batch["inputs"]["image"]["x"][[0, 3]] = -1e6
    b, _ = model(batch)
    torch.testing.assert_close(a, b)
