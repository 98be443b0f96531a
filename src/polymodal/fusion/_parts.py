"""Pieces the fusion modules share: per-input projection with a learned "missing" vector,
presence-masked softmax, and the modality sequence that token-level fusions attend over."""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from polymodal.encoders.base import EncoderOutput

__all__ = ["_ModalityVectors", "_ModalitySequence", "_masked_softmax", "_check_min_inputs"]


def _check_min_inputs(fusion: str, input_dims: Mapping[str, int], minimum: int) -> None:
    """Raise ``ConfigError`` when a fusion that combines ``minimum``+ inputs gets fewer."""
    from polymodal.errors import ConfigError

    if len(input_dims) < minimum:
        got = ", ".join(sorted(input_dims)) or "none"
        raise ConfigError(
            f"fusion {fusion!r} combines at least {minimum} inputs, got {len(input_dims)} ({got}); "
            "add another input column, or use fusion: concat (works with one input)"
        )


class _ModalityVectors(nn.Module):
    """Each input's pooled vector → LayerNorm → Linear to ``width``; absent rows get a learned
    per-input "missing" vector instead, so the absent input's values can never leak in.

    Args:
        input_dims: input name → D of its encoder output.
        width: the common width of the output vectors.
    """

    def __init__(self, input_dims: Mapping[str, int], width: int):
        super().__init__()
        self.names = sorted(input_dims)
        self.norms = nn.ModuleDict({n: nn.LayerNorm(input_dims[n]) for n in self.names})
        self.projs = nn.ModuleDict({n: nn.Linear(input_dims[n], width) for n in self.names})
        self.missing = nn.Parameter(torch.zeros(len(self.names), width))  # [M, width]
        nn.init.normal_(self.missing, std=0.02)

    def forward(self, outputs: Mapping[str, EncoderOutput], present: torch.Tensor) -> torch.Tensor:
        """Returns ``[B, M, width]`` (inputs in sorted name order)."""
        vectors = torch.stack(
            [self.projs[n](self.norms[n](outputs[n].pooled)) for n in self.names], dim=1
        )  # [B, M, width]
        keep = present.unsqueeze(-1)  # [B, M, 1]
        return torch.where(keep, vectors, self.missing.to(vectors.dtype))  # [B, M, width]


class _ModalitySequence(nn.Module):
    """The sequence a token-level fusion attends over, with a modality-type embedding added.

    Per input m: one summary token (its pooled vector, or the learned missing vector when the
    input is absent), followed, when ``tokens`` is set, by the encoder's token sequence
    projected to ``width`` (masked out where the encoder's mask is False or the input absent).

    Returns ``sequence [B, S, width]``, ``valid [B, S]`` (True = attend) and
    ``owner [S]`` (the input index of each position).
    """

    def __init__(self, input_dims: Mapping[str, int], width: int, tokens: bool):
        super().__init__()
        self.names = sorted(input_dims)
        self.tokens = tokens
        self.summary = _ModalityVectors(input_dims, width)
        self.type_embed = nn.Parameter(torch.zeros(len(self.names), width))  # [M, width]
        nn.init.normal_(self.type_embed, std=0.02)
        if tokens:
            self.token_norms = nn.ModuleDict({n: nn.LayerNorm(input_dims[n]) for n in self.names})
            self.token_projs = nn.ModuleDict({n: nn.Linear(input_dims[n], width) for n in self.names})

    def forward(self, outputs: Mapping[str, EncoderOutput],
                present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        summary = self.summary(outputs, present)  # [B, M, width]
        type_embed = self.type_embed.to(summary.dtype)
        parts, valid, owner = [summary + type_embed], [torch.ones_like(present)], [torch.arange(len(self.names))]
        if self.tokens:
            for m, n in enumerate(self.names):
                out = outputs[n]
                seq = self.token_projs[n](self.token_norms[n](out.tokens)) + type_embed[m]  # [B, T_m, width]
                ok = out.mask.bool() & present[:, m : m + 1]  # [B, T_m]
                # Zero what is masked, so not even a NaN in an absent input can leak through.
                parts.append(torch.where(ok.unsqueeze(-1), seq, torch.zeros_like(seq)))
                valid.append(ok)
                owner.append(torch.full((seq.shape[1],), m))
        sequence = torch.cat(parts, dim=1)  # [B, S, width], S = M + Σ T_m
        return sequence, torch.cat(valid, dim=1), torch.cat(owner).to(sequence.device)


def _masked_softmax(logits: torch.Tensor, present: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Softmax over inputs, giving absent inputs weight 0.

    Args:
        logits: ``[B, M]`` or ``[B, M, D]`` (inputs on ``dim`` = 1).
        present: ``[B, M]`` bool.

    A row with no input present falls back to an unmasked softmax (its inputs are all
    missing vectors, which is the best the model has).
    """
    mask = present if logits.dim() == 2 else present.unsqueeze(-1)  # [B, M] or [B, M, 1]
    none = ~present.any(dim=1)  # [B]
    mask = mask | none.view(-1, *([1] * (logits.dim() - 1)))
    return logits.float().masked_fill(~mask, float("-inf")).softmax(dim=dim).to(logits.dtype)
