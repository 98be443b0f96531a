"""Run training: Lightning Trainer, early stopping, best weights, history."""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.profilers import SimpleProfiler

from polymodal.config import TrainingConfig
from polymodal.data.dataset import Collator, MultimodalDataset
from polymodal.errors import TrainingError
from polymodal.generation import GenerativeModel
from polymodal.generation.grids import epoch_grid
from polymodal.model import MultimodalModel
from polymodal.runtime import resolve_precision
from polymodal.training.devices import PRECISION, trainer_devices
from polymodal.training.callbacks import (BestWeights, EpochSeeder, FiniteLoss, History, divergence_hint,
                                          nonfinite_weights)
from polymodal.training.generative import SampleGrids, make_module
from polymodal.training.loggers import ExperimentLog, open_experiment
from polymodal.training.module import TrainingModule
from polymodal.training.profile import time_split
from polymodal.training.progress import progress_callbacks
from polymodal.training.threads import LoadSampler, ThreadPolicy
from polymodal.training.sampler import EpochSampler, row_lengths

if TYPE_CHECKING:
    from polymodal.training.resume import RunDirectory

__all__ = ["FitResult", "fit_model", "resolve_monitor"]

log = logging.getLogger("polymodal")


@dataclass
class FitResult:
    history: pd.DataFrame
    best_epoch: int
    monitor: str
    precision: str
    grids: dict = field(default_factory=dict)  # generation: {target: [(epoch, sample grid)]}
    profile: dict | None = None  # training.profile: seconds per phase (training.profile.time_split)
    world_size: int = 1  # processes that trained (DDP); each took batch_size rows per step
    experiment: ExperimentLog | None = None  # training.logger's log: training.loggers.log_final_metrics ends it


def resolve_monitor(requested: str, task: Any) -> tuple[str, str]:
    """The metric early stopping and best-weights selection watch, and its direction.

    Args:
        requested: ``training.monitor`` (``auto``: the task's ``default_monitor``, ``val_loss``
            but for several labels in one model).
        task: the ``polymodal.tasks.Task``, which says what it can monitor.
    """
    return task.monitor(task.default_monitor if requested == "auto" else requested)


def fit_model(model: MultimodalModel, train: MultimodalDataset, val: MultimodalDataset,
              collator: Collator, cfg: TrainingConfig, task: Any, labels: Mapping[str, Any],
              seed: int, checkpoint: "RunDirectory | None" = None, load: LoadSampler | None = None,
              callbacks: list[Any] | None = None) -> FitResult:
    """Train ``model`` in place; its weights end at the best validation epoch.

    ``task`` (a ``polymodal.tasks.Task``) gives the training metric and the monitored value;
    ``labels`` is the label encoding its metric needs.

    With ``checkpoint`` (a ``training.resume.RunDirectory``) the whole training state is
    written after every epoch, and training continues from it when it is resuming. ``load``
    (started when the fit began) gives the thread policy its first look at the machine's load.
    ``callbacks``: more Lightning callbacks (a search's pruning, a caller's own), run after ours.

    The per-epoch values go to ``cfg.logger``'s experiment log (``training.loggers``), and the
    progress to stderr (``training.progress``).

    Raises:
        ConfigError: ``cfg.logger`` needs a package that is not installed.
        TrainingError: the training loss or the final weights are NaN or infinite (diverged).
    """
    experiment = open_experiment(cfg, seed)  # before anything trains: a missing extra is a ConfigError
    if experiment is not None:
        log.info(f"Logs: {experiment.where}")
    L.seed_everything(seed, workers=True, verbose=False)
    # Data order depends on (seed, epoch) only, and the loaders never draw from the global
    # RNG, so a run resumed at epoch k sees what an uninterrupted one would.
    common = dict(collate_fn=collator, num_workers=cfg.num_workers,
                  persistent_workers=cfg.num_workers > 0)
    if isinstance(train, torch.utils.data.IterableDataset):  # streamed (data.stream): it batches itself
        sampler = None
        train_loader = torch.utils.data.DataLoader(train, batch_size=None, **common)
    else:
        lengths = row_lengths(train.loaded.items, train.preprocessors) if cfg.group_by_length else None
        sampler = EpochSampler(len(train), seed, lengths=lengths, batch_size=cfg.batch_size)
        train_loader = torch.utils.data.DataLoader(
            train, batch_size=cfg.batch_size, sampler=sampler,
            generator=torch.Generator().manual_seed(seed),
            drop_last=len(train) > cfg.batch_size, **common,
        )
    if isinstance(val, torch.utils.data.IterableDataset):
        val_loader = torch.utils.data.DataLoader(val, batch_size=None, **common)
    else:
        val_loader = torch.utils.data.DataLoader(val, batch_size=max(cfg.batch_size, 128),
                                                 generator=torch.Generator().manual_seed(seed), **common)
    saving = checkpoint.trainer_parts() if checkpoint is not None else {}
    extra: list[Any] = []
    if isinstance(model, GenerativeModel):
        module = make_module(model, cfg)
        extra.append(SampleGrids(epoch_grid(model, val, collator, seed=seed)))
    else:
        module = TrainingModule(model, task, labels, cfg.learning_rate, cfg.weight_decay,
                                cfg.warmup_fraction, cfg.scheduler, cfg.modality_dropout)
    monitor, mode = resolve_monitor(cfg.monitor, task)
    precision = resolve_precision(cfg.precision, cfg.accelerator)
    history, best = History(), BestWeights(monitor, mode)
    hint = divergence_hint(cfg.learning_rate, cfg.gradient_clip, precision)
    profiler = SimpleProfiler() if cfg.profile else None
    show_bar, progress = progress_callbacks(cfg.progress_bar)
    with _quiet_lightning():
        trainer = L.Trainer(
            **trainer_devices(cfg), max_epochs=cfg.max_epochs, precision=PRECISION[precision],
            # a module that steps its own optimisers clips its own gradients
            gradient_clip_val=(cfg.gradient_clip or None) if module.automatic_optimization else None,
            callbacks=[ThreadPolicy(cfg.threads, load), FiniteLoss(hint), history, best,
                       EarlyStopping(monitor, patience=cfg.patience, mode=mode),
                       EpochSeeder(*[t for t in (train, sampler) if t is not None]), *extra, *saving.get("callbacks", []),
                       *progress, *(callbacks or [])],
            plugins=saving.get("plugins"), enable_checkpointing=bool(saving), profiler=profiler,
            logger=experiment.logger if experiment is not None else False, enable_model_summary=False,
            num_sanity_val_steps=0, enable_progress_bar=show_bar,
        )
        trainer.fit(module, train_loader, val_loader,
                    ckpt_path=checkpoint.ckpt_path if checkpoint is not None else None)
    if experiment is not None:
        experiment.step = trainer.global_step
    model.eval()
    bad = nonfinite_weights(model)
    if bad:  # a finite loss can still leave weights at inf (e.g. a NaN in an unused branch)
        if experiment is not None:
            experiment.logger.finalize("failed")
        raise TrainingError(f"training diverged: {len(bad)} weight tensors hold NaN or infinite values "
                            f"(e.g. {bad[0]}); no model was saved. Try: {hint}.")
    grids = next((c.grids for c in extra if isinstance(c, SampleGrids)), {})
    return FitResult(pd.DataFrame(history.rows), best.best_epoch, monitor, precision, grids,
                     time_split(profiler) if profiler is not None else None, trainer.world_size, experiment)


class _quiet_lightning:
    """Silence Lightning's start-up banners and hints that do not apply to us."""

    def __enter__(self) -> None:
        self._levels = {}
        for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.WARNING)
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*number of training batches.*")
        warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")
        # a streamed table's batches are split between the loader's workers (data.stream)
        warnings.filterwarnings("ignore", message=".*`IterableDataset` has `__len__` defined.*")
        # Frozen pretrained backbones stay in eval mode on purpose (encoders/pretrained.py).
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode at the start of training.*")

    def __exit__(self, *exc: object) -> None:
        self._warnings.__exit__(*exc)
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
