"""Alignment head: one projection per input into a shared space, and a contrastive loss.

Each aligned input's pooled encoder vector ``[B, D_m]`` is projected to ``[B, E]`` and
scaled to unit length, so a dot product is a cosine similarity and a search is an inner
product search. Two losses:

- ``infonce``: symmetric InfoNCE with a learned temperature, as in CLIP (Radford et al.
  2021). Rows of the same match group (the same row, or the same label value under
  ``match: label``) are all positives of each other: the loss is ``-log`` of the softmax
  mass on the positives (multi-positive NCE), so duplicates are never pushed apart.
- ``siglip``: the pairwise sigmoid loss of SigLIP (Zhai et al. 2023), with a learned
  scale (initial 10) and bias (initial -10).

With more than two inputs the loss is the mean over every pair of inputs. Rows where either
input of a pair is absent are left out of that pair's loss.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from polymodal.heads.base import register_head

__all__ = ["AlignmentHead", "AlignedBatch"]

_MAX_LOG_SCALE = math.log(100.0)  # CLIP caps the logit scale at 100


@dataclass
class AlignedBatch:
    """What the alignment head returns for one batch.

    Attributes:
        embeddings: input name -> ``[B, E]`` unit vectors (zeros where the input is absent).
        present: input name -> ``[B]`` bool, True where the row has that input.
    """

    embeddings: dict[str, torch.Tensor]
    present: dict[str, torch.Tensor]


def _projection(in_dim: int, hidden: int, out_dim: int) -> nn.Module:
    if hidden <= 0:
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))


@register_head("alignment")
class AlignmentHead(nn.Module):
    """Projects each aligned input into one ``dim``-wide space; contrastive loss between them.

    Args:
        input_dims: aligned input name -> width D of its encoder's pooled vector (>= 2 inputs).
        dim: E, the width of the shared space.
        loss: ``"infonce"`` or ``"siglip"``.
        temperature: initial softmax temperature for InfoNCE (the scale is ``1/temperature``).
        learn_temperature: learn the scale (and SigLIP's bias) or keep the initial values.
        hidden: width of a hidden layer in each projection (0 = one linear layer).
        weight: the factor on this loss when it is added to a task head's loss.
        match: ``"row"`` (positives: the inputs of one row) or ``"label"`` (also every row
            with the same label; beside a task head, the training loop passes the classes).
    """

    def __init__(self, input_dims: Mapping[str, int], dim: int = 256,
                 loss: Literal["infonce", "siglip"] = "infonce", temperature: float = 0.07,
                 learn_temperature: bool = True, hidden: int = 0, weight: float = 1.0,
                 match: Literal["row", "label"] = "row"):
        super().__init__()
        if len(input_dims) < 2:
            raise ValueError(f"alignment needs at least two inputs, got {sorted(input_dims)}")
        self.names = sorted(input_dims)
        self.dim = dim
        self.loss_name = loss
        self.weight = weight
        self.match = match
        self.proj = nn.ModuleDict({n: _projection(input_dims[n], hidden, dim) for n in self.names})
        start = math.log(10.0) if loss == "siglip" else math.log(1.0 / temperature)
        self.logit_scale = nn.Parameter(torch.tensor(start), requires_grad=learn_temperature)
        if loss == "siglip":
            self.logit_bias = nn.Parameter(torch.tensor(-10.0), requires_grad=learn_temperature)
        else:
            self.register_parameter("logit_bias", None)

    def project(self, name: str, pooled: torch.Tensor) -> torch.Tensor:
        """``pooled [B, D]`` of input ``name`` → unit vectors ``[B, E]`` in the shared space."""
        return F.normalize(self.proj[name](pooled).float(), dim=-1)  # [B, E]

    def forward(self, pooled: Mapping[str, torch.Tensor],
                present: Mapping[str, torch.Tensor]) -> AlignedBatch:
        """
        Args:
            pooled: input name -> ``[B, D]`` (every aligned input must be there).
            present: input name -> ``[B]`` bool.
        """
        embeddings = {}
        for name in self.names:
            z = self.project(name, pooled[name])  # [B, E]
            embeddings[name] = z * present[name].to(z.device, z.dtype).unsqueeze(-1)
        return AlignedBatch(embeddings, {n: present[n].to(torch.bool) for n in self.names})

    def scale(self) -> torch.Tensor:
        """The current logit scale (``1/temperature``), capped at 100."""
        return self.logit_scale.clamp(max=_MAX_LOG_SCALE).exp()

    def loss(self, aligned: AlignedBatch, groups: torch.Tensor | None = None) -> torch.Tensor:
        """Mean contrastive loss over every pair of aligned inputs.

        Args:
            groups: ``[B]`` integer match group per row (rows of one group are positives of
                each other); None = every row is its own group.

        Returns:
            A scalar. Zero (still attached to the graph) when no pair has two rows with both
            inputs present.
        """
        some = aligned.embeddings[self.names[0]]
        if groups is None:
            groups = torch.arange(some.shape[0], device=some.device)
        losses = []
        for a, b in itertools.combinations(self.names, 2):
            both = aligned.present[a] & aligned.present[b]  # [B]
            if int(both.sum()) < 2:
                continue
            za, zb, g = aligned.embeddings[a][both], aligned.embeddings[b][both], groups[both]
            logits = self.scale() * (za @ zb.T)  # [n, n]: row i = a of row i against b of every row
            positive = g.unsqueeze(1) == g.unsqueeze(0)  # [n, n]
            losses.append(self._pair_loss(logits, positive))
        if not losses:
            return self.logit_scale * 0.0
        return torch.stack(losses).mean()

    def _pair_loss(self, logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "siglip":
            signs = positive.float() * 2.0 - 1.0  # [n, n]: +1 positive, -1 negative
            return -F.logsigmoid(signs * (logits + self.logit_bias)).sum() / logits.shape[0]
        masked = logits.masked_fill(~positive, float("-inf"))  # [n, n]
        a_to_b = torch.logsumexp(logits, dim=1) - torch.logsumexp(masked, dim=1)  # [n]
        b_to_a = torch.logsumexp(logits, dim=0) - torch.logsumexp(masked, dim=0)  # [n]
        return 0.5 * (a_to_b.mean() + b_to_a.mean())
