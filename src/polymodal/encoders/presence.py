"""Run an encoder on the rows where its input is present, and mark the others absent."""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from polymodal.encoders.base import EncoderOutput

__all__ = ["encode_present", "zero_absent"]


def encode_present(encoder: nn.Module, inputs: Mapping[str, torch.Tensor],
                   present: torch.Tensor) -> EncoderOutput:
    """``encoder(inputs)`` computed for present rows only; absent rows get zero tokens and
    pooled vectors and an all-False mask (the fusion puts its learned missing vector there).

    Encoding only the present rows keeps the zero-filled stand-ins of absent inputs out of
    BatchNorm statistics and saves the work (modality dropout leaves many rows absent).
    When fewer than two rows are present in training mode the whole batch is encoded instead
    (BatchNorm cannot train on one row) and the absent rows are zeroed afterwards.

    Args:
        encoder: any registered encoder (reads its batch tensors, all batch-first).
        inputs: the input's batch tensors, e.g. ``pixel_values [B, C, H, W]``.
        present: ``[B]`` bool.
    """
    count = int(present.sum())
    b = present.shape[0]
    if count == 0:
        pooled = torch.zeros(b, encoder.out_dim, device=present.device)  # [B, D]
        return EncoderOutput(tokens=pooled.unsqueeze(1), pooled=pooled,
                             mask=torch.zeros(b, 1, dtype=torch.bool, device=present.device))
    if count == b or (encoder.training and count < 2):
        out = encoder(inputs)
        return out if count == b else zero_absent(out, present)
    rows = present.nonzero().squeeze(1)  # [n]
    out = encoder({k: v[rows] if torch.is_tensor(v) else v for k, v in inputs.items()})
    tokens = out.tokens.new_zeros((b, *out.tokens.shape[1:]))  # [B, T, D]
    pooled = out.pooled.new_zeros((b, *out.pooled.shape[1:]))  # [B, D]
    mask = out.mask.new_zeros((b, *out.mask.shape[1:]))  # [B, T]
    rows = rows.to(out.pooled.device)
    return EncoderOutput(tokens=tokens.index_copy(0, rows, out.tokens),
                         pooled=pooled.index_copy(0, rows, out.pooled),
                         mask=mask.index_copy(0, rows, out.mask))


def zero_absent(out: EncoderOutput, present: torch.Tensor) -> EncoderOutput:
    """``out`` with the rows where ``present [B]`` is False set to zero tokens and pooled
    vectors and an all-False mask: what ``encode_present`` gives absent rows."""
    keep = present.to(out.pooled.device)
    return EncoderOutput(
        tokens=torch.where(keep.view(-1, 1, 1), out.tokens, torch.zeros_like(out.tokens)),  # [B, T, D]
        pooled=torch.where(keep.view(-1, 1), out.pooled, torch.zeros_like(out.pooled)),  # [B, D]
        mask=out.mask & keep.view(-1, 1),  # [B, T]
    )
