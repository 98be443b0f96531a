"""A recurrent layer over packed sequences, shared by the text and audio RNN encoders."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["PackedRNN"]


class PackedRNN(nn.Module):
    """A (bi)directional LSTM/GRU run over packed sequences, so padding never reaches it.

    Returns ``outputs [B, T, H * directions]`` (zeros at padded positions) and ``last
    [B, H * directions]`` (the final state of the top layer, each direction at its own end).
    """

    def __init__(self, cell: Literal["lstm", "gru"], input_size: int, hidden_size: int,
                 num_layers: int, bidirectional: bool, dropout: float) -> None:
        super().__init__()
        rnn_cls = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_cls(
            input_size, hidden_size, num_layers=num_layers, batch_first=True,
            bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0,
        )
        self.directions = 2 if bidirectional else 1
        self.out_dim = hidden_size * self.directions

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        total = x.shape[1]
        # Rows with no real position still need length >= 1 to be packed; callers mask them.
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        outputs, _ = pad_packed_sequence(out, batch_first=True, total_length=total)  # [B, T, H*dirs]
        h_n = state[0] if isinstance(state, tuple) else state  # [layers*dirs, B, H]
        top = h_n[-self.directions:]  # [dirs, B, H]
        last = top.permute(1, 0, 2).reshape(x.shape[0], self.out_dim)  # [B, dirs*H]
        return outputs, last
