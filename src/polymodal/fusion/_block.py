"""A pre-norm transformer block that can also return its attention weights."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["_Block"]


class _Block(nn.Module):
    """``x + attn(LN(x), LN(context))`` then ``x + FF(LN(x))``; self-attention when no context.

    ``nn.TransformerEncoderLayer`` never returns attention weights, which the attention
    fusions report as modality weights; hence this small block.
    """

    def __init__(self, width: int, num_heads: int, ff_dim: int, dropout: float):
        super().__init__()
        self.norm_q = nn.LayerNorm(width)
        self.norm_kv = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, num_heads, dropout=dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, ff_dim), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(ff_dim, width), nn.Dropout(dropout))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor, context: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x: ``[B, Q, D]`` queries.
            valid: ``[B, S]`` True where a key may be attended (S = Q without ``context``).
            context: ``[B, S, D]`` keys/values; None = self-attention.

        Returns:
            ``[B, Q, D]`` and the head-averaged attention weights ``[B, Q, S]``.
        """
        q = self.norm_q(x)
        kv = q if context is None else self.norm_kv(context)
        # A query whose keys are all invalid would get NaN from softmax(-inf); callers make
        # sure every row has at least one valid key.
        out, weights = self.attn(q, kv, kv, key_padding_mask=~valid, need_weights=True,
                                 average_attn_weights=True)  # [B, Q, D], [B, Q, S]
        x = x + self.dropout(out)
        x = x + self.ff(self.norm_ff(x))
        return x, weights
