"""Where a fit's time goes: Lightning's ``SimpleProfiler`` records, summed into phases.

``training.profile: true`` runs the Trainer with a ``SimpleProfiler`` and keeps
``time_split(profiler)`` in ``fit_info["profile"]``: seconds per phase over the whole fit.

- ``collate``: fetching training batches (indexing the decoded items, augmentation, collate);
- ``forward``: the training step (forward, loss, metric updates and logging);
- ``backward``: the backward pass;
- ``optimizer``: the optimiser and scheduler step and gradient clipping (the optimiser step
  less the forward and backward it wraps, plus zeroing the gradients);
- ``evaluation``: validation (its batches and its steps);
- ``overhead``: the rest of the epochs (Lightning's loops, callbacks, checkpoints);
- ``epochs``: the epochs' whole time (the sum of the above), and ``steps``: optimiser steps.

Decoding and preprocessing happen before the Trainer starts (``fit_info["load_seconds"]``).
"""
from __future__ import annotations

from typing import Any, Mapping

__all__ = ["time_split"]


def _total(durations: Mapping[str, list[float]], *suffixes: str) -> float:
    return float(sum(sum(v) for k, v in durations.items() if k.endswith(suffixes)))


def _count(durations: Mapping[str, list[float]], suffix: str) -> int:
    return sum(len(v) for k, v in durations.items() if k.endswith(suffix))


def time_split(profiler: Any) -> dict[str, float]:
    """Seconds per phase (module docstring) from a ``SimpleProfiler`` after ``trainer.fit``."""
    d = profiler.recorded_durations
    epochs = _total(d, "run_training_epoch")
    collate = _total(d, "].train_dataloader_next")
    forward = _total(d, ".training_step")
    backward = _total(d, ".backward")
    step = _total(d, "Module.optimizer_step")  # wraps the closure: forward + backward
    zero = _total(d, "Module.optimizer_zero_grad")
    optimizer = max(0.0, step - forward - backward) + zero if step else zero
    evaluation = _total(d, "].val_next", ".validation_step")
    overhead = max(0.0, epochs - collate - forward - backward - optimizer - evaluation)
    split = {"collate": collate, "forward": forward, "backward": backward, "optimizer": optimizer,
             "evaluation": evaluation, "overhead": overhead, "epochs": epochs}
    out = {k: round(v, 3) for k, v in split.items()}
    out["steps"] = _count(d, ".backward")
    return out
