"""The conditional GAN: a generator G(z, c) and a spectrally normalised critic D(x, c).

- ``discriminator: projection`` (Miyato & Koyama 2018): ``D(x, c) = w·h(x) + <V c, h(x)>``,
  with ``c`` the critic's own encoding of the conditions;
- ``discriminator: auxiliary`` (AC-GAN, Odena et al. 2017): ``D`` also predicts the row's
  label class (``label:`` is needed); G is rewarded when its samples are classified as their
  row's class.

Losses: ``hinge`` or ``nonsaturating``; with ``mode_seeking: w`` the generator's loss adds
``w / (mean over rows of mean|G(z1, c) - G(z2, c)| / mean|z1 - z2|, + eps)`` (Mao et al. 2019, MSGAN), two noises
per row, both samples scored by the critic. With ``label_weight: w`` (and ``label:`` not among the
conditions, e.g. an image that conditions a clip), the generator's and the critic's condition
vectors each carry a linear classifier of the row's label, trained by ``w`` times its
cross-entropy, so that both encode what class the conditions show from the first steps
instead of learning it from the adversarial signal alone. The generator's weights are averaged
(``torch.optim.swa_utils.AveragedModel`` with an EMA of decay ``ema``); sampling uses the
average. The critic's conditions are encoded by encoders of its own (trained by its loss
only), the generator's by the model's ``conditions``.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from polymodal.generation.model import GenerativeModel, decoder_for, decoding_of
from polymodal.generation.parts import Conditions
from polymodal.generation.vae import masked_mean

__all__ = ["ConditionalGAN"]


class Generator(nn.Module):
    """``G(z, c)``: the conditions encoded and fused, concatenated to z, decoded."""

    def __init__(self, conditions: Conditions, decoder: nn.Module, label_classes: int = 0) -> None:
        super().__init__()
        self.conditions = conditions
        self.decoder = decoder
        self.classify = nn.Linear(conditions.out_dim, label_classes) if label_classes else None  # label_weight

    def forward(self, batch: Mapping[str, Any], noise: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """One sample per row: ``noise [B, Z]`` → ``[B, ...]``; ``noise [k*B, Z]`` → ``k`` per row,
        the ``j``-th of every row in rows ``j*B .. (j+1)*B - 1`` (the conditions encoded once;
        ``c [B, C]``: already encoded)."""
        c = self.conditions(batch) if c is None else c  # [B, C]
        c = c.repeat(noise.shape[0] // c.shape[0], 1)  # [k*B, C]
        return self.decoder(torch.cat([noise.to(c.dtype), c], dim=1))


class Critic(nn.Module):
    """``D(x, c)``: a realness score ``[B]`` and, for AC-GAN, class logits ``[B, K]``."""

    def __init__(self, body: nn.Module, conditions: Conditions, kind: str, num_classes: int,
                 label_classes: int = 0) -> None:
        super().__init__()
        self.body, self.conditions, self.kind = body, conditions, kind
        self.score = spectral_norm(nn.Linear(body.out_dim, 1))
        self.embed = spectral_norm(nn.Linear(conditions.out_dim, body.out_dim, bias=False)) \
            if kind == "projection" and conditions.out_dim else None
        self.classify = nn.Linear(body.out_dim, num_classes) if kind == "auxiliary" else None
        self.classify_conditions = nn.Linear(conditions.out_dim, label_classes) if label_classes else None

    def forward(self, x: torch.Tensor, batch: Mapping[str, Any],
                c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``c``: the critic's encoding of the batch's conditions, when already made (it is the
        same for the real and the generated rows of a batch)."""
        h = self.body(x)  # [B, H]
        score = self.score(h).squeeze(1)  # [B]
        if self.embed is not None:
            c = self.conditions(batch) if c is None else c  # [B, C]
            score = score + (self.embed(c) * h).sum(dim=1)
        return score, (self.classify(h) if self.classify is not None else None)


class ConditionalGAN(GenerativeModel):
    kind = "gan"
    adversarial = True

    def __init__(self, names: list[str], target: str, pre: Any, conditions: Conditions,
                 critic_conditions: Conditions, num_classes: int, settings: Mapping[str, Any]) -> None:
        z = int(settings["latent_dim"])
        super().__init__(names, [target], z, settings)
        if settings["discriminator"] == "auxiliary" and num_classes < 2:
            raise ValueError("discriminator: auxiliary needs label: (a column of classes)")
        self.label_weight = float(settings.get("label_weight") or 0.0)
        if self.label_weight and (num_classes < 2 or not conditions.out_dim):
            raise ValueError("generate.label_weight needs label: (a column of two or more classes) and at least "
                             "one condition for it to organise")
        label_classes = num_classes if self.label_weight else 0
        self.target = target
        width = int(settings["width"])
        # No dropout in what conditions the generator: noise there is variety in training that
        # sampling (in eval mode) lacks; z is the generator's only source of it.
        for module in conditions.modules():
            if isinstance(module, nn.Dropout):
                module.p = 0.0
        self.generator = Generator(conditions, decoder_for(pre, z + conditions.out_dim, width), label_classes)
        body = decoding_of(pre).critic(**pre.encoder_inputs(), width=width)
        projection = settings["discriminator"] == "projection"  # only then does the critic read the conditions
        self.critic = Critic(body, critic_conditions, settings["discriminator"], num_classes,
                             label_classes if projection else 0)
        self.average = AveragedModel(self.generator, multi_avg_fn=get_ema_multi_avg_fn(float(settings["ema"])),
                                     use_buffers=True)
        self.hinge = settings["gan_loss"] == "hinge"
        self.mode_seeking = float(settings.get("mode_seeking", 0.0))

    @property
    def conditions(self) -> Conditions:  # type: ignore[override]
        return self.generator.conditions

    def _real(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = batch["inputs"][self.target]
        return self.generator.decoder.target(inputs), self.present(batch, self.target)

    def _aux(self, logits: torch.Tensor | None, batch: Mapping[str, Any], rows: torch.Tensor) -> torch.Tensor:
        if logits is None or batch.get("target") is None:  # no classes, or unlabelled rows
            return torch.zeros((), device=rows.device)
        return masked_mean(F.cross_entropy(logits.float(), batch["target"], reduction="none"), rows)

    def _label(self, head: nn.Module | None, c: torch.Tensor, batch: Mapping[str, Any],
               rows: torch.Tensor) -> torch.Tensor | None:
        """The label cross-entropy of a condition vector ``c [B, C]`` (None without ``label_weight``)."""
        if head is None or batch.get("target") is None:
            return None
        return masked_mean(F.cross_entropy(head(c).float(), batch["target"], reduction="none"), rows)

    def _critic_conditions(self, batch: Mapping[str, Any]) -> torch.Tensor | None:
        """The critic's encoding of the conditions ``[B, C]``; None when it reads none (AC-GAN)."""
        return self.critic.conditions(batch) if self.critic.embed is not None else None

    def critic_loss(self, batch: Mapping[str, Any], noise: torch.Tensor) -> tuple[torch.Tensor, dict]:
        real, rows = self._real(batch)
        with torch.no_grad():
            fake = self.generator(batch, noise)
        c = self._critic_conditions(batch)  # [B, C], once for the real and the generated rows
        both = torch.cat([real, fake.to(real.dtype)])  # [2B, ...]: one pass (the critic scores each row alone)
        scores, cls = self.critic(both, batch, None if c is None else torch.cat([c, c]))
        (d_real, d_fake), cls_real = scores.chunk(2), None if cls is None else cls.chunk(2)[0]
        if self.hinge:
            loss = masked_mean(F.relu(1.0 - d_real.float()), rows) + masked_mean(F.relu(1.0 + d_fake.float()), rows)
        else:
            loss = masked_mean(F.softplus(-d_real.float()), rows) + masked_mean(F.softplus(d_fake.float()), rows)
        parts = {"d_loss": loss.detach(), "d_real": masked_mean(d_real.float(), rows).detach(),
                 "d_fake": masked_mean(d_fake.float(), rows).detach()}
        total = loss + self._aux(cls_real, batch, rows)
        label = self._label(self.critic.classify_conditions, c, batch, rows)
        if label is not None:
            total, parts["d_label_nll"] = total + self.label_weight * label, label.detach()
        return total, parts

    def _fooling(self, fake: torch.Tensor, batch: Mapping[str, Any], rows: torch.Tensor,
                 c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The generator's adversarial loss on ``fake`` and its AC-GAN term (0 without one)."""
        d_fake, cls_fake = self.critic(fake, batch, c)
        loss = masked_mean(-d_fake.float() if self.hinge else F.softplus(-d_fake.float()), rows)
        return loss, self._aux(cls_fake, batch, rows)

    def generator_loss(self, batch: Mapping[str, Any], noise: torch.Tensor) -> tuple[torch.Tensor, dict]:
        _, rows = self._real(batch)
        c, critic_c = self.generator.conditions(batch), self._critic_conditions(batch)  # [B, C] each
        label = self._label(self.generator.classify, c, batch, rows)
        extra = {} if label is None else {"g_label_nll": label.detach()}
        label = 0.0 if label is None else self.label_weight * label
        if not self.mode_seeking:
            loss, aux = self._fooling(self.generator(batch, noise, c), batch, rows, critic_c)
            return loss + aux + label, {"g_loss": loss.detach(), **extra}
        other = torch.randn_like(noise)
        fakes = self.generator(batch, torch.cat([noise, other]), c)  # [2B, ...]: two samples per row
        (loss_a, aux_a), (loss_b, aux_b) = (self._fooling(f, batch, rows, critic_c) for f in fakes.chunk(2))
        first, second = fakes.float().flatten(1).chunk(2)  # [B, P] each
        spread = (first - second).abs().mean(1) / (noise - other).abs().mean(1).float()  # [B]
        seeking = 1.0 / (masked_mean(spread, rows) + 1e-5)
        loss = (loss_a + loss_b) / 2
        return loss + (aux_a + aux_b) / 2 + label + self.mode_seeking * seeking, {
            "g_loss": loss.detach(), "g_mode_seeking": seeking.detach(), **extra}

    def generator_parameters(self) -> list[nn.Parameter]:
        return list(self.generator.parameters())

    def critic_parameters(self) -> list[nn.Parameter]:
        return list(self.critic.parameters())

    def update_average(self) -> None:
        self.average.update_parameters(self.generator)

    @torch.no_grad()
    def generate(self, batch: Mapping[str, Any], target: str, noise: torch.Tensor) -> torch.Tensor:
        return self.average.module(batch, noise).float()
