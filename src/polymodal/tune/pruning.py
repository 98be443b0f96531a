"""The pruning callback of a search: each epoch's monitored value goes to the Optuna trial, and
the trial stops (``optuna.TrialPruned``) when the study's pruner says it lags the others.

A small Lightning callback instead of ``optuna-integration``'s: that package would be one more
dependency for these few lines, and it reports on the validation hook only where ours also keeps
the epochs run, which the leaderboard shows.
"""
from __future__ import annotations

import math
from typing import Any

import lightning as L

__all__ = ["PruneOnEpoch"]


class PruneOnEpoch(L.Callback):
    """Report ``monitor`` (``val_loss``, ``val_accuracy``, ...) to ``trial`` after every validation.

    Args:
        trial: the ``optuna.Trial`` being run.
        monitor: the per-epoch value early stopping watches (``training.fit.resolve_monitor``).
        sign: 1 when ``monitor`` improves the way the study's direction does, -1 when it runs the
            other way (a study maximising accuracy, pruning on ``val_loss``): the reported values
            then improve in the study's direction, as Optuna's pruners assume.
    """

    def __init__(self, trial: Any, monitor: str, sign: int = 1) -> None:
        self.trial, self.monitor, self.sign = trial, monitor, sign
        self.epochs = 0  # epochs whose validation ran

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        self.epochs = trainer.current_epoch + 1
        value = float(value)
        if not math.isfinite(value):
            return  # a diverging trial is stopped by training's own check (TrainingError)
        self.trial.report(self.sign * value, step=trainer.current_epoch)
        last = trainer.max_epochs is not None and self.epochs >= trainer.max_epochs
        if not last and self.trial.should_prune():  # stopping at the last epoch would save nothing
            import optuna

            raise optuna.TrialPruned(f"{self.monitor} {value:.4g} at epoch {self.epochs} lags the other trials")
