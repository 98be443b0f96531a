"""The LightningModule that trains a ``MultimodalModel``."""
from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
import torchmetrics
from torch import nn

from polymodal.model import MultimodalModel
from polymodal.training.modality_dropout import drop_modalities
from polymodal.training.param_groups import param_groups

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
        task: ``"classification"``, ``"regression"`` or ``"alignment"`` (the model's aligner
            is its only head; the batch target holds each row's match group).
        num_classes: K for classification.
    """

    def __init__(self, model: MultimodalModel, task: str, num_classes: int = 0,
                 learning_rate: float = 1e-3, weight_decay: float = 0.01,
                 warmup_fraction: float = 0.05, scheduler: str = "cosine",
                 modality_dropout: float = 0.0):
        super().__init__()
        self.model = model
        self.task = task
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.warmup_fraction = warmup_fraction
        self.scheduler_kind = scheduler
        self.modality_dropout = modality_dropout
        if task == "classification":
            self.train_metric = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
            self.val_metric = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
            self.metric_name = "accuracy"
        elif task == "alignment":  # the loss is the metric
            self.train_metric = self.val_metric = self.metric_name = None
        else:
            self.train_metric = torchmetrics.MeanSquaredError(squared=False)
            self.val_metric = torchmetrics.MeanSquaredError(squared=False)
            self.metric_name = "rmse"

    def _step(self, batch: dict[str, Any], stage: str) -> torch.Tensor:
        if stage == "train" and self.modality_dropout > 0:
            batch = {**batch, "present": drop_modalities(batch["present"], self.modality_dropout)}
        target = batch["target"]
        aligner = self.model.aligner
        if aligner is None:
            output, _ = self.model(batch)
            loss = self.model.head.loss(output, target)
        else:  # contrastive loss (+ the task head's loss, when there is one)
            output, aligned = self.model.forward_aligned(batch)
            groups = target if self.task == "alignment" or aligner.match == "label" else None
            loss = aligner.loss(aligned, groups)
            if output is not None:
                loss = self.model.head.loss(output, target) + aligner.weight * loss
        metric = self.train_metric if stage == "train" else self.val_metric
        if metric is not None and self.task == "classification":
            metric(output.detach().float().argmax(dim=-1), target)
        elif metric is not None:
            metric(self.model.head.values(output.detach()), target.float())
        size = target.shape[0]
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=size)
        if metric is not None:
            self.log(f"{stage}_{self.metric_name}", metric, on_step=False, on_epoch=True,
                     prog_bar=stage == "val", batch_size=size)
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> Any:
        # Norm scales and biases are not decayed; pretrained backbones set their own (layer-wise) rates.
        groups = param_groups(self.model, self.learning_rate, self.weight_decay)
        optimizer = torch.optim.AdamW(groups, lr=self.learning_rate)
        total = int(self.trainer.estimated_stepping_batches)
        warmup = max(1, int(self.warmup_fraction * total))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda(warmup, total, self.scheduler_kind)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
