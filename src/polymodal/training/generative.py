"""The LightningModules that train generation models (``polymodal.generation``), and the
per-epoch sample grids.

VAEs (``vae``, ``mvae``) train with one optimiser on the negative ELBO, β rising linearly
from 0 over ``kl_warmup_epochs``; their tuning loss is the negative ELBO at the full β. The
GAN alternates critic and generator updates (manual optimisation, two AdamW optimisers with
β₁ = 0, β₂ = 0.9, as in spectrally normalised GANs); its losses do not measure sample
quality, so the monitored value (``val_monitor``) prefers the latest epoch, whose averaged
generator is kept.
"""
from __future__ import annotations

from typing import Any, Mapping

import lightning as L
import numpy as np
import torch

from polymodal.errors import ConfigError
from polymodal.generation.model import GenerativeModel
from polymodal.training.module import lr_lambda
from polymodal.training.param_groups import adamw, clip_norm, param_groups

__all__ = ["VAEModule", "GANModule", "make_module", "SampleGrids"]


def _schedule(module: L.LightningModule, optimizer: torch.optim.Optimizer, training: Any) -> Any:
    total = int(module.trainer.estimated_stepping_batches)
    warmup = max(1, int(training.warmup_fraction * total))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(warmup, total, training.scheduler))


class VAEModule(L.LightningModule):
    def __init__(self, model: GenerativeModel, training: Any) -> None:
        super().__init__()
        self.model, self.training_cfg = model, training
        self.beta = float(model.settings["beta"])
        self.warmup_epochs = float(model.settings["kl_warmup_epochs"])

    def current_beta(self) -> float:
        if self.warmup_epochs <= 0:
            return self.beta
        per_epoch = max(1, int(self.trainer.num_training_batches))
        return self.beta * min(1.0, (self.global_step + 1) / (self.warmup_epochs * per_epoch))

    def _log(self, stage: str, loss: torch.Tensor, parts: Mapping[str, torch.Tensor], size: int) -> None:
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, sync_dist=True, prog_bar=True, batch_size=size)
        for key, value in parts.items():
            self.log(f"{stage}_{key}", value, on_step=False, on_epoch=True, sync_dist=True, batch_size=size)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, parts = self.model.loss(batch, self.current_beta())
        self._log("train", loss, parts, batch["present"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        loss, parts = self.model.loss(batch, self.beta)
        size = batch["present"].shape[0]
        self._log("val", loss, parts, size)
        self.log("val_monitor", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=size)

    def configure_gradient_clipping(self, optimizer: Any, gradient_clip_val: Any = None,
                                    gradient_clip_algorithm: Any = None) -> None:
        clip_norm(optimizer, gradient_clip_val)  # the fused AdamW: see training.param_groups.clip_norm

    def configure_optimizers(self) -> Any:
        t = self.training_cfg
        optimizer = adamw(param_groups(self.model, t.learning_rate, t.weight_decay),
                          scaled=self.trainer.precision == "16-mixed", lr=t.learning_rate)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": _schedule(self, optimizer, t), "interval": "step"}}


class GANModule(L.LightningModule):
    def __init__(self, model: GenerativeModel, training: Any) -> None:
        super().__init__()
        self.model, self.training_cfg = model, training
        self.automatic_optimization = False
        self.critic_steps = int(model.settings["critic_steps"])

    def _noise(self, batch: Mapping[str, Any]) -> torch.Tensor:
        size = batch["present"].shape[0]
        return torch.randn(size, self.model.latent_dim, device=batch["present"].device)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        opt_g, opt_d = self.optimizers()
        sched_g, sched_d = self.lr_schedulers()
        clip = self.training_cfg.gradient_clip or None
        for _ in range(self.critic_steps):
            d_loss, d_parts = self.model.critic_loss(batch, self._noise(batch))
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            clip_norm(opt_d, clip)
            opt_d.step()
        g_loss, g_parts = self.model.generator_loss(batch, self._noise(batch))
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        clip_norm(opt_g, clip)
        opt_g.step()
        sched_g.step()
        sched_d.step()
        self.model.update_average()
        size = batch["present"].shape[0]
        loss = (d_loss + g_loss).detach()
        self.log("train_loss", loss, on_step=False, on_epoch=True, sync_dist=True, prog_bar=True, batch_size=size)
        for key, value in {**d_parts, **g_parts}.items():
            self.log(f"train_{key}", value, on_step=False, on_epoch=True, sync_dist=True, batch_size=size)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        size = batch["present"].shape[0]
        d_loss, d_parts = self.model.critic_loss(batch, self._noise(batch))
        g_loss, _ = self.model.generator_loss(batch, self._noise(batch))
        self.log("val_loss", d_loss + g_loss, on_step=False, on_epoch=True, sync_dist=True, prog_bar=True,
                 batch_size=size)
        for key, value in {**d_parts, "g_loss": g_loss}.items():
            self.log(f"val_{key}", value, on_step=False, on_epoch=True, sync_dist=True, batch_size=size)
        self.log("val_monitor", float(-self.current_epoch), on_step=False, on_epoch=True, sync_dist=True,
                 batch_size=size)

    def configure_optimizers(self) -> Any:
        t = self.training_cfg
        out = []
        for params in (self.model.generator_parameters(), self.model.critic_parameters()):
            optimizer = adamw(params, lr=t.learning_rate, betas=(0.0, 0.9), weight_decay=0.0)
            out.append({"optimizer": optimizer, "lr_scheduler": {"scheduler": _schedule(self, optimizer, t),
                                                                 "interval": "step"}})
        return out


def make_module(model: GenerativeModel, training: Any) -> L.LightningModule:
    """The LightningModule that trains ``model``: alternating updates for an adversarial one.

    Raises:
        ConfigError: fp16 for an adversarial model (it clips by hand, before a scaler unscales).
    """
    if model.adversarial and training.precision == "16":
        raise ConfigError("training.precision: 16 is not offered for a GAN (its alternating steps clip "
                          "gradients themselves, which a fp16 gradient scaler leaves scaled); use bf16 or 32")
    return GANModule(model, training) if model.adversarial else VAEModule(model, training)


class SampleGrids(L.Callback):
    """After every tuning epoch, samples a fixed grid (fixed rows, fixed noise) of each target.

    Attributes:
        grids: ``{target: [(epoch, uint8 [H, W] or [H, W, 3])]}``.
    """

    def __init__(self, grid: Any, every: int = 1) -> None:
        self.grid, self.every = grid, every  # grid(model) -> {target: picture}
        self.grids: dict[str, list[tuple[int, np.ndarray]]] = {}

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every:
            return
        was = module.model.training
        module.model.eval()
        for target, picture in self.grid(module.model).items():
            self.grids.setdefault(target, []).append((trainer.current_epoch + 1, picture))
        module.model.train(was)

    def state_dict(self) -> dict:  # kept in training checkpoints: a resumed run has every epoch's grid
        return {"grids": {t: {"epochs": [e for e, _ in v], "pictures": [torch.from_numpy(p.copy()) for _, p in v]}
                          for t, v in self.grids.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.grids = {t: [(int(e), np.asarray(p.numpy() if isinstance(p, torch.Tensor) else p, dtype=np.uint8))
                          for e, p in zip(v["epochs"], v["pictures"])] for t, v in state.get("grids", {}).items()}

