"""Callbacks: per-epoch history, best-weights restore, epoch-seeded augmentation, divergence check."""
from __future__ import annotations

import copy
import math
import time

from typing import Any

import lightning as L
import torch

from polymodal.errors import TrainingError

__all__ = ["History", "BestWeights", "EpochSeeder", "FiniteLoss", "divergence_hint", "nonfinite_weights"]


class History(L.Callback):
    """Collects one row per epoch of every logged epoch metric, plus the wall time."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # Runs after the epoch's validation, so training and validation metrics are both in.
        row = {"epoch": trainer.current_epoch + 1}
        row.update({k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1})
        row["seconds"] = time.perf_counter() - self._start
        row["lr"] = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else math.nan
        self.rows.append(row)

    def state_dict(self) -> dict:  # kept in training checkpoints (training.checkpoint)
        return {"rows": self.rows}

    def load_state_dict(self, state: dict) -> None:
        self.rows = [dict(r) for r in state["rows"]]


class BestWeights(L.Callback):
    """Keeps a copy of the weights at the best monitored value and restores them at the end."""

    def __init__(self, monitor: str, mode: str) -> None:
        self.monitor = monitor
        self.mode = mode
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = 0
        self.state: dict[str, torch.Tensor] | None = None

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        better = value < self.best if self.mode == "min" else value > self.best
        if better or self.state is None:
            self.best, self.best_epoch = value, trainer.current_epoch + 1
            self.state = copy.deepcopy({k: v.detach().cpu() for k, v in module.state_dict().items()})

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.state is not None:
            module.load_state_dict(self.state)

    def state_dict(self) -> dict:  # kept in training checkpoints (training.checkpoint)
        return {"best": self.best, "best_epoch": self.best_epoch, "state": self.state}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.state = float(state["best"]), int(state["best_epoch"]), state["state"]


class EpochSeeder(L.Callback):
    """Tells the training dataset (and sampler) the epoch, so augmentation and order differ
    per epoch yet repeat per seed, also in a resumed run."""

    def __init__(self, *targets) -> None:
        self.targets = targets

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        for target in self.targets:
            target.set_epoch(trainer.current_epoch)


def divergence_hint(learning_rate: float, gradient_clip: float, precision: str) -> str:
    """What to try when training diverges, naming the settings of this run."""
    tries = [f"lower training.learning_rate (now {learning_rate:g}), e.g. by 10x"]
    tries.append("set training.gradient_clip: 1.0" if not gradient_clip
                 else f"lower training.gradient_clip (now {gradient_clip:g})")
    if precision != "32":
        tries.append("set training.precision: 32")
    return "; ".join(tries)


def nonfinite_weights(module: torch.nn.Module) -> list[str]:
    """Names of the parameters and buffers of ``module`` that hold NaN or infinite values."""
    return [name for name, t in module.state_dict().items()
            if t.is_floating_point() and not bool(torch.isfinite(t).all())]


class FiniteLoss(L.Callback):
    """Stops training with a ``TrainingError`` at the first NaN or infinite training or tuning loss.

    Lightning's ``EarlyStopping(check_finite=True)`` only stops (and only on the monitored
    validation value); a diverged model must never be saved as if it were good.
    """

    def __init__(self, hint: str) -> None:
        self.hint = hint

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and not bool(torch.isfinite(loss.detach()).all()):
            self._fail(f"the training loss became {float(loss.detach().float().mean())} at epoch "
                       f"{trainer.current_epoch + 1}, step {trainer.global_step} (batch {batch_idx + 1})")

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # A step can turn a finite loss into weights that give NaN on the next rows: the
        # tuning loss is where that shows at the end of an epoch.
        value = trainer.callback_metrics.get("val_loss")
        if trainer.sanity_checking or value is None or bool(torch.isfinite(value).all()):
            return
        self._fail(f"the tuning loss (val_loss) became {float(value)} after epoch {trainer.current_epoch + 1}, "
                   f"step {trainer.global_step}")

    def _fail(self, what: str) -> None:
        raise TrainingError(f"training diverged: {what}; no model was saved. Try: {self.hint}.")
