"""Shared parts of the generation models: the condition encoder and Gaussian latents."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import nn

from polymodal.encoders.presence import encode_present

__all__ = ["Conditions", "Posterior", "kl_standard", "product_of_experts", "sample_latent"]


class Conditions(nn.Module):
    """The conditioning inputs encoded and fused into one vector ``c [B, out_dim]``.

    Args:
        encoders: input name -> encoder, for the conditioning inputs only (may be empty:
            an unconditional model, ``out_dim`` 0).
        make_fusion: ``make_fusion(input_dims) -> fusion module`` (the config's fusion).
        order: every input name of the batch, sorted (the columns of ``present``).
    """

    def __init__(self, encoders: Mapping[str, nn.Module], make_fusion: Callable[[dict[str, int]], nn.Module],
                 order: list[str]) -> None:
        super().__init__()
        self.names = sorted(encoders)
        self.encoders = nn.ModuleDict(dict(encoders))
        self.order = list(order)
        self.fusion = make_fusion({n: e.out_dim for n, e in encoders.items()}) if encoders else None
        self.out_dim = self.fusion.out_dim if self.fusion is not None else 0

    def forward(self, batch: Mapping[str, Any]) -> torch.Tensor:
        present = batch["present"]  # [B, M] over self.order
        size = present.shape[0]
        if self.fusion is None:
            return present.new_zeros((size, 0), dtype=torch.float32)
        mine = present[:, [self.order.index(n) for n in self.names]]  # [B, M_c]
        encoded = {n: encode_present(self.encoders[n], batch["inputs"][n], mine[:, i])
                   for i, n in enumerate(self.names)}
        return self.fusion(encoded, mine).fused  # [B, out_dim]


class Posterior(nn.Module):
    """An encoder of one input followed by a Gaussian ``(mu, logvar)`` over ``latent_dim``.

    Args:
        encoder: a registered encoder of the input (its pooled vector is used).
        cond_dim: width of a condition vector concatenated to the pooled one (0: none).
    """

    def __init__(self, encoder: nn.Module, cond_dim: int, latent_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = max(latent_dim * 4, 128)
        self.net = nn.Sequential(nn.Linear(encoder.out_dim + cond_dim, hidden), nn.GELU(),
                                 nn.Linear(hidden, 2 * latent_dim))

    def forward(self, inputs: Mapping[str, torch.Tensor], c: torch.Tensor | None = None,
                present: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)``, each ``[B, latent_dim]``; rows not ``present`` get zeros (ignore them)."""
        if present is None:
            pooled = self.encoder(inputs).pooled
        else:
            pooled = encode_present(self.encoder, inputs, present).pooled  # [B, D]
        h = pooled if c is None or c.shape[1] == 0 else torch.cat([pooled, c], dim=1)
        mu, logvar = self.net(h.float()).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)


def kl_standard(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` per row, ``[B]``."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def sample_latent(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The reparameterised draw ``mu + sigma * eps`` (``[B, Z]``)."""
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


def product_of_experts(mus: list[torch.Tensor], logvars: list[torch.Tensor],
                       masks: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The product of the standard-normal prior and each present Gaussian expert.

    Args:
        mus, logvars: one ``[B, Z]`` per expert; masks: one ``[B]`` bool per expert (a row's
            absent experts drop out of its product).

    Returns:
        ``(mu, logvar)`` ``[B, Z]``: precision-weighted (Wu & Goodman 2018); a row with no
        expert present gets the prior.
    """
    precision = torch.ones_like(mus[0])  # the prior N(0, I)
    weighted = torch.zeros_like(mus[0])
    for mu, logvar, mask in zip(mus, logvars, masks):
        p = torch.exp(-logvar) * mask.float().unsqueeze(1)  # [B, Z]; 0 where absent
        precision = precision + p
        weighted = weighted + mu * p
    return weighted / precision, -torch.log(precision)
