"""Text encoders: recurrent (``lstm``, ``gru``), a small ``transformer``; any Hugging Face
model (``hf``) is in ``hf.py``.

Every encoder reads ``input_ids Long[B, T]`` and ``attention_mask Bool[B, T]`` (True = real
token, padding on the right) and returns ``EncoderOutput(tokens [B, T, D], pooled [B, D],
mask [B, T])``.
"""
from __future__ import annotations

from typing import Any, Literal, Mapping

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from polymodal.encoders.base import EncoderOutput, register_encoder
from polymodal.encoders.pooling import masked_max, masked_mean
from polymodal.encoders.rnn import PackedRNN
from polymodal.errors import ConfigError
from polymodal.modalities.text.hf import HFTextEncoder  # noqa: F401  (registers "hf" with the others)

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
