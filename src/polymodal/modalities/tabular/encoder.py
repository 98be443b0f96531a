"""Tabular encoder: numeric columns plus categorical embeddings through an MLP (``mlp``).

Reads ``numeric Float[B, N]``, ``numeric_missing Float[B, N]`` (1 where the value was missing
and imputed) and ``categorical Long[B, K]`` (0 = unknown category); N or K may be 0. Returns
``EncoderOutput(tokens [B, 1, D], pooled [B, D], mask [B, 1])``: the row is one token.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from polymodal.encoders.base import EncoderOutput, register_encoder
from polymodal.errors import ConfigError

__all__ = ["MLPTabularEncoder"]


def _embed_dim(cardinality: int, cap: int | None) -> int:
    """The usual rule of thumb: about half the cardinality, at most 16 (or ``cap`` if set)."""
    return cap if cap is not None else min(16, (cardinality + 1) // 2 + 1)


@register_encoder("tabular", "mlp")
class MLPTabularEncoder(nn.Module):
    """``concat(numeric, numeric_missing, embed(categorical)...)`` → MLP → ``[B, hidden_size]``.

    Each categorical column gets an ``nn.Embedding(cardinality + 1, dim)``: ids run from 0
    (unknown) to at most ``cardinality``, whichever way the preprocessor counts the unknown id.
    Each MLP layer is Linear → LayerNorm → GELU → Dropout (LayerNorm, not BatchNorm, so a batch
    of one trains).
    """

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        hidden_size: int = Field(64, gt=0)
        num_layers: int = Field(2, gt=0)
        dropout: float = Field(0.1, ge=0.0, lt=1.0)
        embed_dim: int | None = Field(None, gt=0, description="default: min(16, (card+1)//2 + 1) per column")

    def __init__(self, *, n_numeric: int, cardinalities: list[int], **options: Any) -> None:
        super().__init__()
        opts = self.options = self.Options(**options)
        if n_numeric == 0 and not cardinalities:
            raise ConfigError(
                "tabular encoder 'mlp': no numeric and no categorical columns to encode; "
                "give the tabular input at least one column, or drop it."
            )
        self.embeds = nn.ModuleList(
            nn.Embedding(card + 1, _embed_dim(card, opts.embed_dim)) for card in cardinalities
        )
        in_dim = 2 * n_numeric + sum(e.embedding_dim for e in self.embeds)
        layers: list[nn.Module] = []
        for i in range(opts.num_layers):
            layers += [
                nn.Linear(in_dim if i == 0 else opts.hidden_size, opts.hidden_size),
                nn.LayerNorm(opts.hidden_size),
                nn.GELU(),
                nn.Dropout(opts.dropout),
            ]
        self.mlp = nn.Sequential(*layers)
        self.n_numeric = n_numeric
        self.out_dim = opts.hidden_size

    def features(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The MLP's input ``[B, F]``: the numbers, their missing flags, each category's embedding."""
        parts: list[torch.Tensor] = []
        if self.n_numeric:
            parts += [batch["numeric"], batch["numeric_missing"]]  # [B, N] each
        if len(self.embeds):
            cats = batch["categorical"]  # [B, K]
            parts += [embed(cats[:, k]) for k, embed in enumerate(self.embeds)]  # [B, E_k] each
        return torch.cat(parts, dim=1)  # [B, F]

    def from_features(self, features: torch.Tensor) -> EncoderOutput:
        """The encoder output of ``features [B, F]`` (see ``features``)."""
        pooled = self.mlp(features)  # [B, D]
        tokens = pooled.unsqueeze(1)  # [B, 1, D]
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)  # [B, 1]
        return EncoderOutput(tokens=tokens, pooled=pooled, mask=mask)

    def feature_groups(self) -> list[list[int]]:
        """Per column, in the preprocessor's order (numeric, then categorical), the positions of
        its features in ``features``: a number and its missing flag, or a category's embedding.
        ``polymodal.explain`` sums integrated gradients over them, one importance per column."""
        n = self.n_numeric
        groups = [[i, n + i] for i in range(n)]
        start = 2 * n
        for embed in self.embeds:
            groups.append(list(range(start, start + embed.embedding_dim)))
            start += embed.embedding_dim
        return groups

    def forward(self, batch: Mapping[str, torch.Tensor]) -> EncoderOutput:
        return self.from_features(self.features(batch))
