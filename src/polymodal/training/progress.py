"""What a fit shows while it trains (``training.progress_bar``), always on stderr.

stdout is left to the command's own output (``polymodal fit ... | jq``). At a terminal (or in a
notebook) Lightning's bar, its epochs counted from 1 (``Epoch 5/5`` after five of five);
elsewhere (a pipe, a log file, a CI job) a bar would only ever print its last state, so one
line per epoch instead: ``Epoch 3/10: train_loss 0.5123, val_loss 0.6012, val_accuracy 0.8000 (1.2s)``.
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, TextIO

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import convert_inf

__all__ = ["EpochLines", "StderrProgressBar", "progress_callbacks"]


def progress_callbacks(enabled: bool, stream: TextIO | None = None) -> tuple[bool, list[L.Callback]]:
    """``(enable_progress_bar, callbacks)`` for ``L.Trainer``: the bar when ``stream``
    (default stderr) is a terminal or a notebook's, epoch lines otherwise, nothing when not
    ``enabled``."""
    if not enabled:
        return False, []
    stream = stream if stream is not None else sys.stderr
    if _interactive(stream):
        return True, [StderrProgressBar()]
    return False, [EpochLines(stream)]


def _interactive(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    # an IPython kernel's streams are no terminal, but tqdm draws its bar there
    return bool(isatty is not None and isatty()) or "ipykernel" in sys.modules


class StderrProgressBar(TQDMProgressBar):
    """Lightning's ``TQDMProgressBar`` writing to stderr, its epochs numbered from 1 of ``max_epochs``."""

    # Lightning builds each bar with file=sys.stdout, read when the bar is made.
    def init_sanity_tqdm(self) -> Any:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_sanity_tqdm()

    def init_train_tqdm(self) -> Any:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_train_tqdm()

    def init_validation_tqdm(self) -> Any:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_validation_tqdm()

    def init_predict_tqdm(self) -> Any:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_predict_tqdm()

    def init_test_tqdm(self) -> Any:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_test_tqdm()

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        # Lightning's, with the description drawn once: "Epoch 1/5", never a first "Epoch 0"
        if self._leave:
            self.train_progress_bar = self.init_train_tqdm()
        self.train_progress_bar.reset(convert_inf(self.total_train_batches))
        self.train_progress_bar.initial = 0
        self.train_progress_bar.set_description(_epoch(trainer))


class EpochLines(L.Callback):
    """One line per epoch on ``stream`` (rank 0 only): the epoch of ``max_epochs``, its losses
    and metrics, its seconds (training and validation)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # Runs after the epoch's validation: its values are in callback_metrics too.
        if not trainer.is_global_zero:
            return
        values = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        first = [k for k in ("train_loss", "val_loss") if k in values]
        shown = ", ".join(f"{k} {values[k]:.4f}" for k in first + sorted(set(values) - set(first)))
        seconds = time.perf_counter() - self._start
        print(f"{_epoch(trainer)}: {shown} ({seconds:.1f}s)", file=self.stream or sys.stderr, flush=True)


def _epoch(trainer: L.Trainer) -> str:
    return f"Epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
