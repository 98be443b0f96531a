"""The pruning callback with a real Optuna study: a trial behind the median is stopped."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

optuna = pytest.importorskip("optuna")

from polymodal.tune.pruning import PruneOnEpoch  # noqa: E402


def _trainer(val_loss: float, epoch: int, max_epochs: int = 5) -> SimpleNamespace:
    return SimpleNamespace(sanity_checking=False, current_epoch=epoch, max_epochs=max_epochs,
                           callback_metrics={"val_loss": torch.tensor(val_loss)})


def _study() -> "optuna.Study":
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(
        n_startup_trials=1, n_warmup_steps=1))
    good = study.ask()
    callback = PruneOnEpoch(good, "val_loss", sign=-1)  # maximising accuracy, watching a loss
    for epoch, loss in enumerate([1.0, 0.5, 0.3]):
        callback.on_validation_end(_trainer(loss, epoch), None)
    study.tell(good, 0.9)
    return study


def test_a_lagging_trial_is_pruned_after_the_warmup_epochs():
    study = _study()
    trial = study.ask()
    callback = PruneOnEpoch(trial, "val_loss", sign=-1)
    callback.on_validation_end(_trainer(2.3, 0), None)  # epoch 1: warm-up, never pruned
    with pytest.raises(optuna.TrialPruned, match="val_loss 2.3 at epoch 2"):
        callback.on_validation_end(_trainer(2.3, 1), None)
    assert callback.epochs == 2
    reported = study.trials[1].intermediate_values
    assert list(reported) == [0, 1] and reported[1] == pytest.approx(-2.3)


def test_a_better_trial_and_the_last_epoch_are_not_pruned():
    study = _study()
    callback = PruneOnEpoch(study.ask(), "val_loss", sign=-1)
    for epoch, loss in enumerate([0.9, 0.4, 0.2]):
        callback.on_validation_end(_trainer(loss, epoch), None)
    lagging = PruneOnEpoch(study.ask(), "val_loss", sign=-1)
    lagging.on_validation_end(_trainer(2.3, 0, max_epochs=2), None)
    lagging.on_validation_end(_trainer(2.3, 1, max_epochs=2), None)  # the last epoch: it ends anyway
    assert lagging.epochs == 2
