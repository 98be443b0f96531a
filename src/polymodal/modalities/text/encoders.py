"""Text encoders: recurrent (``lstm``, ``gru``), a small ``transformer``, and any Hugging Face
model (``hf``).

Every encoder reads ``input_ids Long[B, T]`` and ``attention_mask Bool[B, T]`` (True = real
token, padding on the right) and returns ``EncoderOutput(tokens [B, T, D], pooled [B, D],
mask [B, T])``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from polymodal.encoders.base import EncoderOutput, register_encoder
from polymodal.encoders.pooling import masked_max, masked_mean
from polymodal.encoders.rnn import PackedRNN
from polymodal.errors import ConfigError

__all__ = ["RNNTextEncoder", "LSTMTextEncoder", "GRUTextEncoder", "TransformerTextEncoder", "HFTextEncoder"]


# --------------------------------------------------------------------------- recurrent


class RNNTextEncoder(nn.Module):
    """Embedding + bidirectional LSTM/GRU over packed sequences; tokens projected to ``out_dim``.

    Padding-invariant: padded positions never enter the RNN, and pooling ignores them.
    """

    cell: Literal["lstm", "gru"] = "lstm"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        embed_dim: int = Field(128, gt=0)
        hidden_size: int = Field(128, gt=0)
        num_layers: int = Field(1, gt=0)
        bidirectional: bool = True
        dropout: float = Field(0.1, ge=0.0, lt=1.0)
        pooling: Literal["mean", "max", "last"] = "mean"
        out_dim: int | None = Field(None, gt=0, description="default: hidden_size * directions")

    def __init__(self, *, vocab_size: int, pad_id: int = 0, max_length: int | None = None,
                 pretrained: str | None = None, **options: Any) -> None:
        super().__init__()
        opts = self.options = self.Options(**options)
        self.embed = nn.Embedding(vocab_size, opts.embed_dim, padding_idx=pad_id)
        self.rnn = PackedRNN(self.cell, opts.embed_dim, opts.hidden_size, opts.num_layers,
                              opts.bidirectional, opts.dropout)
        self.out_dim = opts.out_dim or self.rnn.out_dim
        self.proj = nn.Linear(self.rnn.out_dim, self.out_dim)
        self.dropout = nn.Dropout(opts.dropout)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> EncoderOutput:
        ids, mask = batch["input_ids"], batch["attention_mask"].bool()
        x = self.dropout(self.embed(ids))  # [B, T, E]
        outputs, last = self.rnn(x, mask.sum(dim=1))  # [B, T, H*dirs], [B, H*dirs]
        tokens = self.proj(self.dropout(outputs))  # [B, T, D]
        if self.options.pooling == "mean":
            pooled = masked_mean(tokens, mask)
        elif self.options.pooling == "max":
            pooled = masked_max(tokens, mask)
        else:
            pooled = self.proj(last) * mask.any(dim=1, keepdim=True)  # [B, D]; empty rows → 0
        return EncoderOutput(tokens=tokens, pooled=pooled, mask=mask)


@register_encoder("text", "lstm")
class LSTMTextEncoder(RNNTextEncoder):
    """Bidirectional LSTM text encoder (see ``RNNTextEncoder``)."""

    cell = "lstm"


@register_encoder("text", "gru")
class GRUTextEncoder(RNNTextEncoder):
    """Bidirectional GRU text encoder (see ``RNNTextEncoder``)."""

    cell = "gru"


# --------------------------------------------------------------------------- transformer


@register_encoder("text", "transformer")
class TransformerTextEncoder(nn.Module):
    """A small pre-norm transformer encoder trained from scratch, learned positions up to
    ``max_length``. Padded keys are masked out of attention, so it is padding-invariant."""

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        d_model: int = Field(128, gt=0)
        num_layers: int = Field(2, gt=0)
        num_heads: int = Field(4, gt=0)
        ff_dim: int = Field(256, gt=0)
        dropout: float = Field(0.1, ge=0.0, lt=1.0)
        pooling: Literal["mean", "max"] = "mean"

    def __init__(self, *, vocab_size: int, pad_id: int = 0, max_length: int = 512,
                 pretrained: str | None = None, **options: Any) -> None:
        super().__init__()
        opts = self.options = self.Options(**options)
        if opts.d_model % opts.num_heads:
            raise ConfigError(
                f"text encoder 'transformer': d_model ({opts.d_model}) must be divisible by "
                f"num_heads ({opts.num_heads}); change one of them."
            )
        self.max_length = max_length
        self.embed = nn.Embedding(vocab_size, opts.d_model, padding_idx=pad_id)
        self.position = nn.Embedding(max_length, opts.d_model)
        layer = nn.TransformerEncoderLayer(
            opts.d_model, opts.num_heads, opts.ff_dim, opts.dropout,
            activation="gelu", batch_first=True, norm_first=True,
        )
        # No nested tensors: they would change numerics between padded and unpadded batches.
        self.encoder = nn.TransformerEncoder(layer, opts.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(opts.d_model)
        self.dropout = nn.Dropout(opts.dropout)
        self.out_dim = opts.d_model

    def forward(self, batch: Mapping[str, torch.Tensor]) -> EncoderOutput:
        ids, mask = batch["input_ids"], batch["attention_mask"].bool()
        length = ids.shape[1]
        if length > self.max_length:
            raise ValueError(
                f"text encoder 'transformer': got {length} tokens, but it has positions for "
                f"max_length={self.max_length}; truncate to max_length in the preprocessor."
            )
        positions = torch.arange(length, device=ids.device)
        x = self.dropout(self.embed(ids) + self.position(positions))  # [B, T, D]
        # A row with no real token would attend to nothing (softmax of all -inf = NaN):
        # let it attend everywhere instead; its positions are masked out of the output anyway.
        key_padding = ~mask & mask.any(dim=1, keepdim=True)  # [B, T], True = ignore
        tokens = self.norm(self.encoder(x, src_key_padding_mask=key_padding))  # [B, T, D]
        pool = masked_mean if self.options.pooling == "mean" else masked_max
        return EncoderOutput(tokens=tokens, pooled=pool(tokens, mask), mask=mask)


# --------------------------------------------------------------------------- hugging face


def _small_bert() -> dict[str, Any]:
    return {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 256}


@register_encoder("text", "hf")
class HFTextEncoder(nn.Module):
    """Any Hugging Face text encoder (``transformers.AutoModel``).

    Loaded from ``path`` (or, unless ``config``/``model_type`` are set, the tokenizer's
    ``pretrained`` folder) when given, else built with random weights from ``model_type`` +
    ``config``. The task-specific pooler is left
    out (it would be a parameter that gets no gradient).

    Raises:
        ConfigError: ``path`` is a folder or file that holds no loadable model, a hub id that
            cannot be loaded, or the model is too small for the vocabulary / max_length.
    """

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid", protected_namespaces=())

        path: str | None = Field(None, description="local model folder or hub id; default: the tokenizer's")
        model_type: str = "bert"
        config: dict[str, Any] = Field(default_factory=_small_bert, description="used when no path")
        pooling: Literal["cls", "mean"] = "mean"
        freeze: bool = False

    def __init__(self, *, vocab_size: int, pad_id: int = 0, max_length: int = 512,
                 pretrained: str | None = None, **options: Any) -> None:
        super().__init__()
        opts = self.options = self.Options(**options)
        from_config = {"config", "model_type"} & opts.model_fields_set
        if opts.path and from_config:
            raise ConfigError(
                f"text encoder 'hf': {' and '.join(sorted(from_config))} only apply when building a "
                f"model from scratch, but path={opts.path!r} loads one; drop one or the other."
            )
        # An explicit config wins over the tokenizer's folder: a fresh model on its vocabulary.
        path = opts.path or (None if from_config else pretrained)
        self.model = _load_hf(path) if path else _build_hf(opts.model_type, opts.config, vocab_size, pad_id)
        cfg = self.model.config
        if vocab_size > cfg.vocab_size:
            raise ConfigError(
                f"text encoder 'hf': the tokenizer has {vocab_size} ids but the model embeds only "
                f"{cfg.vocab_size}; use the model's own tokenizer (text tokenizer = the model folder)."
            )
        max_positions = getattr(cfg, "max_position_embeddings", None)
        if max_positions is not None and max_length > max_positions:
            raise ConfigError(
                f"text encoder 'hf': max_length={max_length} exceeds the model's "
                f"max_position_embeddings={max_positions}; lower max_length."
            )
        if opts.freeze:
            self.model.requires_grad_(False)
        self.out_dim = int(cfg.hidden_size)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> EncoderOutput:
        ids, mask = batch["input_ids"], batch["attention_mask"].bool()
        tokens = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # [B, T, D]
        if self.options.pooling == "cls":
            pooled = tokens[:, 0] * mask.any(dim=1, keepdim=True)  # [B, D]; empty rows → 0
        else:
            pooled = masked_mean(tokens, mask)
        return EncoderOutput(tokens=tokens, pooled=pooled, mask=mask)


def _without_pooler(build: Any, *args: Any, **kwargs: Any) -> nn.Module:
    """Call a transformers constructor asking for no pooling layer; not every model has one."""
    try:
        return build(*args, add_pooling_layer=False, **kwargs)
    except TypeError:  # this model class takes no add_pooling_layer
        return build(*args, **kwargs)


def _load_hf(path: str) -> nn.Module:
    from transformers import AutoModel

    folder = Path(path).expanduser()
    if folder.exists():
        if not (folder.is_dir() and (folder / "config.json").is_file()):
            raise ConfigError(
                f"text encoder 'hf': {str(folder)!r} is not a Hugging Face model folder "
                f"(expected a directory with config.json and weights, as written by save_pretrained); "
                f"point path at such a folder, or leave path unset to build from config."
            )
        try:
            return _without_pooler(AutoModel.from_pretrained, str(folder), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"text encoder 'hf': could not load a model from folder {str(folder)!r}: {exc}"
            ) from exc
    try:  # not on disk: a hub id, which needs internet or the local HF cache
        return _without_pooler(AutoModel.from_pretrained, path)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"text encoder 'hf': {path!r} is neither an existing folder nor a loadable Hugging Face "
            f"hub model id ({exc}); give a local model folder, or check the id and network."
        ) from exc


def _build_hf(model_type: str, config: dict[str, Any], vocab_size: int, pad_id: int) -> nn.Module:
    from transformers import AutoConfig, AutoModel

    try:
        cfg = AutoConfig.for_model(model_type, **{"vocab_size": vocab_size, "pad_token_id": pad_id, **config})
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"text encoder 'hf': cannot build config for model_type={model_type!r}: {exc}") from exc
    return _without_pooler(AutoModel.from_config, cfg)
