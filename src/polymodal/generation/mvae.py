"""The multimodal VAE: one latent space over two or more inputs; any present subset
generates any missing one.

Each input m has a Gaussian expert q(z | x_m) (its encoder, then ``(mu, logvar)``); a row's
posterior over a subset S of its present inputs is the product of the prior and S's experts
(``product_of_experts``). Training (``posterior``):

- ``poe`` (Wu & Goodman 2018): the ELBO of the joint posterior (every present input
  reconstructed) plus each present input's own ELBO under its expert alone;
- ``mopoe`` (Sutter et al. 2021): the mean over every non-empty subset S of the row's present
  inputs of the ELBO of PoE(S) reconstructing every present input, so each input learns to
  make the others (the cross-modal paths generation uses).

With ``likelihood_scaling: largest`` (the default), training multiplies each input's
reconstruction term by ``values of the largest input / its values`` (Shi et al. 2019): without
it a 40 × 100 log-mel (4,000 values) outweighs a 16 × 16 image (256) sixteen times over, the
latent learns the sound and the image expert is ignored. In eval mode (validation, evaluation)
the terms are unscaled, so the reported ELBO is the model's own.

With ``label_weight`` > 0 (and ``label:``), the label is one more jointly modelled column
without an expert: a likelihood ``p(label | z)`` (a linear decoder) on every subset's latent,
weighted in training by ``label_weight`` times the largest input's values, so that the latent
each input infers alone carries the class the inputs share (Wu & Goodman 2018 model an image
with its label the same way). It is not part of the reported ELBO, which stays the inputs';
validation reports its cross-entropy as ``label_nll``.

A row with an input missing still trains on what it has. ``generate`` infers z from the
row's present inputs (the target hidden) and decodes the target.
"""
from __future__ import annotations

from itertools import combinations
from typing import Any, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from polymodal.generation.model import GenerativeModel, decoder_for
from polymodal.generation.parts import Conditions, Posterior, kl_standard, product_of_experts, sample_latent
from polymodal.generation.vae import gaussian_nll, masked_mean

__all__ = ["MultimodalVAE"]


class MultimodalVAE(GenerativeModel):
    kind = "mvae"

    def __init__(self, names: list[str], targets: list[str], pres: Mapping[str, Any],
                 encoders: Mapping[str, nn.Module], conditions: Conditions, settings: Mapping[str, Any],
                 num_classes: int = 0) -> None:
        z = int(settings["latent_dim"])
        super().__init__(names, targets, z, settings)
        self.conditions = conditions
        c = conditions.out_dim
        self.experts = nn.ModuleDict({t: Posterior(encoders[t], c, z) for t in targets})
        self.decoders = nn.ModuleDict({t: decoder_for(pres[t], z + c, int(settings["width"])) for t in targets})
        self.log_sigmas = nn.ParameterDict({t: nn.Parameter(torch.zeros(())) for t in targets})
        self.posterior_kind = settings["posterior"]
        self.label_weight = float(settings.get("label_weight") or 0.0)
        if self.label_weight and num_classes < 2:
            raise ValueError("generate.label_weight needs label: (a column of two or more classes)")
        self.label_decoder = nn.Linear(z, num_classes) if self.label_weight else None

    def _experts(self, batch: Mapping[str, Any], c: torch.Tensor) -> dict[str, tuple]:
        out = {}
        for t in self.targets:
            present = self.present(batch, t)
            mu, logvar = self.experts[t](batch["inputs"][t], c, present)
            out[t] = (mu, logvar, present)
        return out

    def _nll(self, t: str, z: torch.Tensor, c: torch.Tensor, batch: Mapping[str, Any]) -> tuple[torch.Tensor, ...]:
        decoder = self.decoders[t]
        target = decoder.target(batch["inputs"][t])
        sse = decoder.reconstruction(decoder(torch.cat([z, c], dim=1)).float(), target.float())  # [B]
        return gaussian_nll(sse, target[0].numel(), self.log_sigmas[t]), sse / target[0].numel()

    def _sizes(self, batch: Mapping[str, Any]) -> dict[str, int]:
        return {t: self.decoders[t].target(batch["inputs"][t])[0].numel() for t in self.targets}

    def _scales(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """Each input's weight on its reconstruction term (1.0 unless scaling in training)."""
        if not self.training or self.settings.get("likelihood_scaling", "largest") == "none":
            return {t: 1.0 for t in self.targets}
        sizes = self._sizes(batch)
        largest = max(sizes.values())
        return {t: largest / n for t, n in sizes.items()}

    def _subsets(self) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        """``(experts, reconstructed)`` pairs the ELBO averages over."""
        ts = tuple(self.targets)
        if self.posterior_kind == "poe":
            return [(ts, ts)] + [((t,), (t,)) for t in ts]
        return [(s, ts) for k in range(1, len(ts) + 1) for s in combinations(ts, k)]

    def loss(self, batch: Mapping[str, Any], beta: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.conditions(batch)
        experts = self._experts(batch, c)
        scales = self._scales(batch)
        total = torch.zeros_like(experts[self.targets[0]][0][:, 0])  # [B]
        count = torch.zeros_like(total)
        nll_sum, kl_sum, mse = torch.zeros_like(total), torch.zeros_like(total), {}
        label_sum = torch.zeros_like(total)
        labelled = self.label_decoder is not None and batch.get("target") is not None  # scoring: maybe no labels
        label_scale = self.label_weight * max(self._sizes(batch).values()) if labelled else 0.0
        for subset, rebuilt in self._subsets():
            masks = [experts[t][2] for t in subset]
            valid = torch.stack(masks).any(dim=0)  # [B] rows with an expert of the subset
            mu, logvar = product_of_experts([experts[t][0] for t in subset], [experts[t][1] for t in subset], masks)
            z = sample_latent(mu, logvar)
            nll, scaled = torch.zeros_like(total), torch.zeros_like(total)
            for t in rebuilt:
                term, err = self._nll(t, z, c, batch)
                nll = nll + term * experts[t][2].float()
                scaled = scaled + scales[t] * term * experts[t][2].float()
                if len(subset) == 1 and subset[0] != t:  # cross-modal reconstruction error
                    mse[f"mse_{subset[0]}_to_{t}"] = masked_mean(err, experts[t][2] & valid).detach()
            kl = kl_standard(mu, logvar)
            if labelled:
                label_nll = F.cross_entropy(self.label_decoder(z).float(), batch["target"], reduction="none")
                label_sum = label_sum + label_nll * valid.float()
                if self.training:  # not part of the inputs' ELBO
                    scaled = scaled + label_scale * label_nll
            total = total + (scaled + beta * kl) * valid.float()
            nll_sum, kl_sum = nll_sum + nll * valid.float(), kl_sum + kl * valid.float()
            count = count + valid.float()
        rows = count > 0
        per_row = total / count.clamp_min(1.0)
        parts = {"nll": masked_mean(nll_sum / count.clamp_min(1.0), rows).detach(),
                 "kl": masked_mean(kl_sum / count.clamp_min(1.0), rows).detach(), **mse}
        if labelled:
            parts["label_nll"] = masked_mean(label_sum / count.clamp_min(1.0), rows).detach()
        return masked_mean(per_row, rows), parts

    @torch.no_grad()
    def generate(self, batch: Mapping[str, Any], target: str, noise: torch.Tensor) -> torch.Tensor:
        c = self.conditions(batch)
        experts = self._experts(batch, c)
        others = [t for t in self.targets if t != target]
        mu, logvar = product_of_experts([experts[t][0] for t in others], [experts[t][1] for t in others],
                                        [experts[t][2] for t in others])
        z = mu + noise.to(mu.dtype) * (0.5 * logvar).exp()
        return self.decoders[target](torch.cat([z, c], dim=1)).float()
