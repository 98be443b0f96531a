"""The LightningModule that trains a ``MultimodalModel``."""
from __future__ import annotations

import math
from typing import Any, Mapping

import lightning as L
import torch
from torch import nn

from polymodal.model import MultimodalModel
from polymodal.training.modality_dropout import drop_modalities
from polymodal.training.param_groups import adamw, clip_norm, param_groups

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
        task: the ``polymodal.tasks.Task``: its training metric, and whether the batch target
            is each row's match group (alignment: the model's aligner is its only head).
        labels: the label encoding (``labels.json``), for the task's metric.
    """

    def __init__(self, model: MultimodalModel, task: Any, labels: Mapping[str, Any],
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
        self.train_metric = task.training_metric(labels)
        self.val_metric = task.training_metric(labels)
        self.metric_name = task.metric_name

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
            groups = target if self.task.targets_are_groups or aligner.match == "label" else None
            loss = aligner.loss(aligned, groups)
            if output is not None:
                loss = self.model.head.loss(output, target) + aligner.weight * loss
        metric = self.train_metric if stage == "train" else self.val_metric
        if metric is not None:
            self.task.update_metric(metric, self.model.head, output, target)
        size = target.shape[0]
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, sync_dist=True, prog_bar=True, batch_size=size)
        if metric is not None:
            self.log(f"{stage}_{self.metric_name}", metric, on_step=False, on_epoch=True,
                     prog_bar=stage == "val", batch_size=size)
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_gradient_clipping(self, optimizer: Any, gradient_clip_val: Any = None,
                                    gradient_clip_algorithm: Any = None) -> None:
        clip_norm(optimizer, gradient_clip_val)  # the fused AdamW: see training.param_groups.clip_norm

    def configure_optimizers(self) -> Any:
        # Norm scales and biases are not decayed; pretrained backbones set their own (layer-wise) rates.
        groups = param_groups(self.model, self.learning_rate, self.weight_decay)
        optimizer = adamw(groups, scaled=self.trainer.precision == "16-mixed", lr=self.learning_rate)
        total = int(self.trainer.estimated_stepping_batches)
        warmup = max(1, int(self.warmup_fraction * total))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda(warmup, total, self.scheduler_kind)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
