"""A TDNN-style audio encoder: 1-D dilated convolutions over log-mel frames, statistics pooling.

Reads ``features Float[B, T, F]`` and ``mask Bool[B, T]`` like the other audio encoders and
returns ``EncoderOutput(tokens [B, T, D], pooled [B, D], mask [B, T])`` (no downsampling).
Convolving over time only, with the mel bins as channels, costs a fraction of a 2-D CNN on
the same log-mel image (x-vector style, Snyder et al. 2018).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from polymodal.encoders.base import EncoderOutput, register_encoder
from polymodal.encoders.pooling import masked_mean

__all__ = ["TDNNAudioEncoder"]


class _MaskedConv1d(nn.Module):
    """conv1d (same length) → BatchNorm → ReLU → dropout over ``[B, C, T]``; padded frames zeroed
    after, so padding never reaches a real frame through the next layer."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2,
                              bias=False)
        self.norm = nn.BatchNorm1d(c_out)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.act(self.norm(self.conv(x))))  # [B, C, T]
        return x * mask.unsqueeze(1).to(x.dtype)  # [B, C, T]


@register_encoder("audio", "tdnn")
class TDNNAudioEncoder(nn.Module):
    """``len(channels)`` masked conv1d layers (``kernels[i]``, ``dilations[i]``); tokens are the
    last layer's frames projected to ``out_dim`` (masked like the input); pooled is the mean and
    standard deviation of the tokens over real frames → Linear → ``out_dim``.
    """

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

        channels: list[int] = Field(default_factory=lambda: [128, 128, 128, 256], min_length=1)
        kernels: list[int] = Field(default_factory=lambda: [5, 3, 3, 1])
        dilations: list[int] = Field(default_factory=lambda: [1, 2, 3, 1])
        dropout: float = Field(0.1, ge=0.0, lt=1.0)
        out_dim: int = Field(128, gt=0)

        @model_validator(mode="after")
        def _same_lengths(self) -> "TDNNAudioEncoder.Options":
            n = len(self.channels)
            if len(self.kernels) != n or len(self.dilations) != n:
                raise ValueError(f"channels, kernels and dilations need one entry per layer, got "
                                 f"{n}, {len(self.kernels)} and {len(self.dilations)}")
            if any(c <= 0 for c in self.channels) or any(k <= 0 or k % 2 == 0 for k in self.kernels) \
                    or any(d <= 0 for d in self.dilations):
                raise ValueError("channels and dilations must be positive and kernels positive and odd, got "
                                 f"{self.channels}, {self.kernels}, {self.dilations}")
            return self

    def __init__(self, *, n_mels: int, max_frames: int | None = None, **options: Any) -> None:
        super().__init__()
        opts = self.options = self.Options(**options)
        c_in, layers = n_mels, []
        for c_out, kernel, dilation in zip(opts.channels, opts.kernels, opts.dilations):
            layers.append(_MaskedConv1d(c_in, c_out, kernel, dilation, opts.dropout))
            c_in = c_out
        self.layers = nn.ModuleList(layers)
        self.token_proj = nn.Linear(c_in, opts.out_dim)
        self.pool_proj = nn.Linear(2 * opts.out_dim, opts.out_dim)
        self.out_dim = opts.out_dim

    def forward(self, batch: Mapping[str, torch.Tensor]) -> EncoderOutput:
        feats, mask = batch["features"], batch["mask"].bool()
        x = (feats * mask.unsqueeze(-1).to(feats.dtype)).transpose(1, 2)  # [B, F, T]
        for layer in self.layers:
            x = layer(x, mask)  # [B, C, T]
        tokens = self.token_proj(x.transpose(1, 2)) * mask.unsqueeze(-1).to(x.dtype)  # [B, T, D]
        mean = masked_mean(tokens, mask)  # [B, D]
        var = masked_mean((tokens - mean.unsqueeze(1)).pow(2), mask)  # [B, D]
        stats = torch.cat([mean, var.clamp_min(1e-6).sqrt()], dim=-1)  # [B, 2D]
        return EncoderOutput(tokens=tokens, pooled=self.pool_proj(stats), mask=mask)
