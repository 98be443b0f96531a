"""The LightningModule that trains a ``MultimodalModel``."""
from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
import torchmetrics
from torch import nn

from polymodal.model import MultimodalModel

__all__ = ["TrainingModule", "lr_lambda"]


def lr_lambda(warmup_steps: int, total_steps: int, kind: str):
    """Learning-rate multiplier per step: linear warm-up, then cosine/linear decay or constant."""

    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        if kind == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


class TrainingModule(L.LightningModule):
    """Wraps the model with its loss, optimiser, schedule and per-epoch metrics.

    Args:
        model: the multimodal model (its head defines ``loss``).
        task: ``"classification"`` or ``"regression"``.
        num_classes: K for classification.
    """

    def __init__(self, model: MultimodalModel, task: str, num_classes: int = 0,
                 learning_rate: float = 1e-3, weight_decay: float = 0.01,
                 warmup_fraction: float = 0.05, scheduler: str = "cosine"):
        super().__init__()
        self.model = model
        self.task = task
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.warmup_fraction = warmup_fraction
        self.scheduler_kind = scheduler
        if task == "classification":
            self.train_metric = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
            self.val_metric = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
            self.metric_name = "accuracy"
        else:
            self.train_metric = torchmetrics.MeanSquaredError(squared=False)
            self.val_metric = torchmetrics.MeanSquaredError(squared=False)
            self.metric_name = "rmse"

    def _step(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        output, _ = self.model(batch)
        target = batch["target"]
        loss = self.model.head.loss(output, target)
        metric = self.train_metric if stage == "train" else self.val_metric
        if self.task == "classification":
            metric(output.detach().float().argmax(dim=-1), target)
        else:
            metric(self.model.head.values(output.detach()), target.float())
        size = target.shape[0]
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=size)
        self.log(f"{stage}_{self.metric_name}", metric, on_step=False, on_epoch=True,
                 prog_bar=stage == "val", batch_size=size)
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> Any:
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            # Norm scales, biases and learned embeddings-as-vectors are not decayed.
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.weight_decay},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=self.learning_rate,
        )
        total = int(self.trainer.estimated_stepping_batches)
        warmup = max(1, int(self.warmup_fraction * total))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda(warmup, total, self.scheduler_kind)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
