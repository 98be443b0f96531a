"""The conditional VAE: q(z | x, c), p(z) = N(0, I), p(x | z, c) with a learnt scale.

The decoder's Gaussian scale σ is one learnt number (a calibrated decoder): the
reconstruction term is ``SSE / 2σ² + n log σ + n/2 log 2π`` per row, so β keeps its
meaning whatever the units of the target. The loss is the negative ELBO per row,
``nll + β KL``; with β = 1 it is the per-row negative ELBO in nats.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn

from polymodal.generation.model import GenerativeModel, decoder_for
from polymodal.generation.parts import Conditions, Posterior, kl_standard, sample_latent

__all__ = ["ConditionalVAE", "gaussian_nll", "masked_mean"]


def gaussian_nll(sse: torch.Tensor, n: int, log_sigma: torch.Tensor) -> torch.Tensor:
    """``-log N(x; x̂, σ²I)`` per row from its sum of squared errors ``sse [B]`` over ``n`` values."""
    return sse / (2.0 * torch.exp(2.0 * log_sigma)) + n * (log_sigma + 0.5 * math.log(2 * math.pi))


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values [B]`` over rows where ``mask [B]``; 0 (with a gradient) when none."""
    weight = mask.float()
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


class ConditionalVAE(GenerativeModel):
    """Generates ``target`` from the row's conditions (Sohn et al. 2015, with a fixed prior)."""

    kind = "vae"

    def __init__(self, names: list[str], target: str, pre: Any, encoder: nn.Module, conditions: Conditions,
                 settings: Mapping[str, Any]) -> None:
        z = int(settings["latent_dim"])
        super().__init__(names, [target], z, settings)
        self.conditions = conditions
        self.target = target
        self.posterior = Posterior(encoder, conditions.out_dim, z)
        self.decoder = decoder_for(pre, z + conditions.out_dim, int(settings["width"]))
        self.log_sigma = nn.Parameter(torch.zeros(()))

    def terms(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Per row ``[B]``: ``nll``, ``kl``, ``sse`` (sum of squared errors), ``present``."""
        c = self.conditions(batch)  # [B, C]
        inputs, present = batch["inputs"][self.target], self.present(batch, self.target)
        mu, logvar = self.posterior(inputs, c, present)  # [B, Z] each
        out = self.decoder(torch.cat([sample_latent(mu, logvar), c], dim=1))
        target = self.decoder.target(inputs)
        sse = self.decoder.reconstruction(out.float(), target.float())  # [B]
        n = target[0].numel()
        return {"nll": gaussian_nll(sse, n, self.log_sigma), "kl": kl_standard(mu, logvar),
                "sse": sse, "n": torch.tensor(float(n)), "present": present}

    def loss(self, batch: Mapping[str, Any], beta: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        t = self.terms(batch)
        p = t["present"]
        nll, kl = masked_mean(t["nll"], p), masked_mean(t["kl"], p)
        return nll + beta * kl, {"nll": nll.detach(), "kl": kl.detach(),
                                 "mse": (masked_mean(t["sse"], p) / t["n"]).detach()}

    @torch.no_grad()
    def generate(self, batch: Mapping[str, Any], target: str, noise: torch.Tensor) -> torch.Tensor:
        c = self.conditions(batch)
        return self.decoder(torch.cat([noise.to(c.dtype), c], dim=1)).float()
