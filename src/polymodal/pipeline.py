"""The fit pipeline: a table and a config in, a ``FittedModel`` out.

schema (the task checks the label) → one validation pass → tuning split → label encoding →
preprocessors fitted on the training rows → inputs decoded → model built → trained → scored
on the tuning rows. Everything a user can get wrong is checked before any tensor is built.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch

from polymodal.backbones.feature_cache import prepare_backbone_inputs
from polymodal.builders import build_model, build_preprocessors, input_specs
from polymodal.config import Config
from polymodal.data import Collator, MultimodalDataset
from polymodal.data.dataset import LoadedInputs
from polymodal.data.paths import PathGuard
from polymodal.data.presence import Absences
from polymodal.data.urls import fetch_for_fit
from polymodal.data.schema import Schema
from polymodal.data.skips import skip_summary
from polymodal.data.tables import Table
from polymodal.errors import ConfigError, DataError, TrainingError
from polymodal.fitted import FittedModel, as_table, require_columns
from polymodal.fusion import check_fusion_inputs
from polymodal.modalities.base import modality_of_role
from polymodal.tasks import Task, get_task, schema_of
from polymodal.training import fit_model
from polymodal.runtime import resolve_precision
from polymodal.stream_fit import fit_streamed, streamed_table
from polymodal.table_defaults import for_table
from polymodal.training.callbacks import divergence_hint, nonfinite_weights
from polymodal.training.devices import check_devices
from polymodal.training.loggers import check_logger, log_final_metrics
from polymodal.training.module import count_parameters
from polymodal.training.threads import LoadSampler
from polymodal.validate import validate

__all__ = ["fit", "training_tables", "tuning_split"]

log = logging.getLogger("polymodal")


def fit(config: Config, train_data: Any, tuning_data: Any = None, data_root: str | Path | None = None,
        checkpoint_dir: str | Path | None = None, resume: bool = False,
        say: Callable[[str], None] = log.info, callbacks: list[Any] | None = None) -> FittedModel:
    """Train a model on ``train_data``; early-stop on ``tuning_data`` (split off when None).

    Args:
        config: the loaded ``Config`` (with its label).
        data_root: see ``FittedModel``; file paths in the tables must stay inside it.
        checkpoint_dir: write the whole training state there after every epoch (see
            ``training.resume``); resume: continue the interrupted run found there.
        say: where progress lines go.
        callbacks: more Lightning callbacks for the Trainer (e.g. a hyperparameter search's pruning).

    Raises:
        ConfigError, DataError: on a bad config or unusable data, before any training.
        TrainingError: training diverged (a NaN or infinite loss or weight); nothing is kept
            (a fresh run's checkpoint folder is deleted).
    """
    chunked = streamed_table(config, train_data)
    if chunked is not None:  # training.stream: a chunk at a time
        return fit_streamed(config, chunked, tuning_data, data_root, checkpoint_dir, resume, say, callbacks)
    start = time.perf_counter()
    load = LoadSampler()  # the machine's load while decoding: the training threads' first look
    torch.manual_seed(config.seed)
    train = as_table(train_data, data_root)
    schema = schema_of(train.frame, config)
    task = get_task(schema.problem_type)
    validate(config, schema, checks=[lambda: task.config_problems(config, schema)])
    check_fusion_inputs(config.fusion, [spec["name"] for spec in input_specs(schema)])
    check_devices(config.training, resolve_precision(config.training.precision, config.training.accelerator))
    check_logger(config.training)  # a logger whose extra is missing: refused before any data is decoded
    say("Columns:\n" + schema.describe())
    train, tuning = training_tables(train, tuning_data, schema, task, config, data_root, say)
    config = for_table(config, schema, len(train.frame), say)  # presets' epochs, a small table's text

    labels = task.fit_labels(train.frame, schema, config)
    fitted = FittedModel(config, schema, labels, build_preprocessors(config, schema), data_root=data_root)
    run = _run_directory(checkpoint_dir, resume, fitted, train, tuning)
    if run is not None and run.has_preprocessors:
        fitted.preprocessors = run.load_preprocessors(fitted.preprocessors)
    else:
        fit_frame = fetch_for_fit(train.frame, fitted.preprocessors, config.allow_urls)  # URL images' statistics
        if data_root is not None:
            fit_frame = PathGuard(train.base_dir, data_root).confine_frame(fit_frame, fitted.preprocessors)
        for pre in fitted.preprocessors.values():
            pre.fit(fit_frame, train.base_dir)
        if run is not None:
            run.save_preprocessors(fitted.preprocessors)
    preprocessors = fitted.preprocessors
    train_loaded, train_y = fitted.load_inputs(train, labelled=True, what="training data")
    tune_loaded, tune_y = fitted.load_inputs(tuning, labelled=True, what="tuning data")
    if len(train_loaded) == 0 or len(tune_loaded) == 0:
        raise DataError("no usable rows left after skipping unreadable inputs; fix the files")
    load_seconds = time.perf_counter() - start

    model = build_model(config, schema, preprocessors, labels)
    for loaded, what in ((train_loaded, "training data"), (tune_loaded, "tuning data")):
        prepare_backbone_inputs(model, preprocessors, loaded, config.training, what)
    say(f"Model: {count_parameters(model):,} parameters; inputs "
        + ", ".join(f"{n} ({p.modality})" for n, p in sorted(preprocessors.items())))
    try:
        result = fit_model(
            model,
            MultimodalDataset(train_loaded, preprocessors, train_y, seed=config.seed,
                              augment=task.augmented(labels, sorted(preprocessors))),
            MultimodalDataset(tune_loaded, preprocessors, tune_y),
            Collator(preprocessors), config.training, task, labels, config.seed, checkpoint=run, load=load,
            callbacks=callbacks,
        )
        _require_finite(model, config)
    except TrainingError as exc:
        raise TrainingError(_forget_run(run, str(exc))) from None
    fitted.model, fitted.history, fitted.grids = model, result.history, result.grids
    fitted.fit_info = {
        "train_rows": len(train_loaded), "tuning_rows": len(tune_loaded),
        "skipped_rows": {"training": len({s[0] for s in train_loaded.skipped}),
                         "tuning": len({s[0] for s in tune_loaded.skipped})},
        "skipped": {"training": _skips(train_loaded, len(train.frame), config),
                    "tuning": _skips(tune_loaded, len(tuning.frame), config)},
        "epochs": len(result.history), "best_epoch": result.best_epoch,
        "monitor": result.monitor, "precision": result.precision,
        "parameters": count_parameters(model),
        "rows_lacking_inputs": Absences().add(train_loaded).lacking,  # (prediction warns when 0, see presence)
        "world_size": result.world_size, "global_batch_size": result.world_size * config.training.batch_size,
        "load_seconds": round(load_seconds, 2),
        "fit_seconds": round(time.perf_counter() - start, 2),
    }
    if result.profile is not None:
        fitted.fit_info["profile"] = result.profile
    fitted.labels = task.calibrate(fitted.forward(tune_loaded), tune_y, fitted.labels, config)
    metrics, confusion = fitted.score(tune_loaded, tune_y)
    fitted.reports = {"tuning": {"metrics": metrics, "confusion": confusion}}
    log_final_metrics(result.experiment, config, metrics)  # the experiment log: the config and these scores
    say(f"Trained {fitted.fit_info['epochs']} epochs in {fitted.fit_info['fit_seconds']:.1f}s; "
        f"best epoch {result.best_epoch}; tuning " + summary(metrics, task))
    return fitted


def training_tables(train: Table, tuning_data: Any, schema: Schema, task: Task, config: Config, data_root: Any,
                    say: Callable[[str], None], note: str = "") -> tuple[Table, Table]:
    """The training rows and the tuning rows: ``tuning_data`` read and checked, or a seeded
    split of ``train`` (``tuning_split``), said with ``note`` (e.g. ", the same for every trial")."""
    if tuning_data is not None:
        tuning = as_table(tuning_data, data_root)
        require_columns(tuning, schema, need_label=True, what="tuning data")
        return train, tuning
    train_frame, tuning_frame = tuning_split(train.frame, schema, task, config)
    say(f"Split off {len(tuning_frame):,} rows for tuning{note} "
        f"({config.training.tuning_fraction:.0%}, seed {config.seed}).")
    return (Table(train_frame, train.base_dir, train.source),
            Table(tuning_frame, train.base_dir, f"{train.source} (tuning split)"))


def tuning_split(frame: pd.DataFrame, schema: Schema, task: Task,
                 config: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded tuning split; stratified by the task's groups (classes) when it has them."""
    rng = np.random.default_rng(config.seed)
    frac = config.training.tuning_fraction
    strata = task.stratify(frame, schema)
    if strata is not None:
        groups = frame.groupby(strata, sort=True).indices
        picks = []
        for _, idx in sorted(groups.items()):
            if len(idx) >= 2:
                picks.extend(rng.permutation(idx)[: max(1, round(frac * len(idx)))].tolist())
    else:
        picks = rng.permutation(len(frame))[: max(1, round(frac * len(frame)))].tolist()
    mask = np.zeros(len(frame), dtype=bool)
    mask[picks] = True
    if mask.all() or not mask.any():
        raise DataError(f"cannot split {len(frame)} rows into training and tuning; pass tuning data or add rows")
    return frame[~mask], frame[mask]


def summary(metrics: Mapping[str, Any], task: Task) -> str:
    """The task's main metrics on one line (``accuracy 0.9412, f1_macro 0.9398``)."""
    keys = [k for k in task.summary if k in metrics]
    keys += [k for k in metrics if k.endswith(("_recall@1", "_recall@10"))]  # aligned inputs
    keys += [k for k in metrics if k.endswith((".accuracy", ".rmse", ".f1_micro"))]  # several labels
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in keys)


def _run_directory(checkpoint_dir: Any, resume: bool, fitted: FittedModel, train: Table, tuning: Table) -> Any:
    """The checkpoint folder of this run (``training.resume.RunDirectory``), or None."""
    if checkpoint_dir is None:
        if resume:
            raise ConfigError("resume=True needs checkpoint_dir= (the folder of the interrupted run)")
        return None
    from polymodal.training.resume import RunDirectory, data_digest

    schema = fitted.schema
    files = any(getattr(modality_of_role(r), "cells_are_files", False) for r in schema.roles.values())
    return RunDirectory(checkpoint_dir, resume, {
        "config": fitted.config.model_dump(mode="json"), "schema": schema.to_dict(), "labels": fitted.labels,
        "train": {"rows": len(train.frame), "digest": data_digest(train.frame)},
        "tuning": {"rows": len(tuning.frame), "digest": data_digest(tuning.frame)},
        "base_dir": str(train.base_dir) if files else None,
    })


def _skips(loaded: LoadedInputs, n_rows: int, config: Config) -> dict[str, Any]:
    return skip_summary(loaded.skipped, n_rows, len(loaded), config.on_bad_input)


def _require_finite(model: torch.nn.Module, config: Config) -> None:
    """Never hand back a model with NaN or infinite weights (the last guard before saving)."""
    bad = nonfinite_weights(model)
    if bad:
        t = config.training
        hint = divergence_hint(t.learning_rate, t.gradient_clip, t.precision)
        raise TrainingError(f"training diverged: {len(bad)} weight tensors hold NaN or infinite values "
                            f"(e.g. {bad[0]}); no model was saved. Try: {hint}.")


def _forget_run(run: Any, message: str) -> str:
    """Delete the checkpoints of a diverged fresh run (resuming them would diverge again);
    a resumed run keeps its folder, and the message says where it is."""
    if run is None:
        return message
    from polymodal.training.resume import discard_run

    if run.resuming:
        return f"{message} The checkpoints of the resumed run are kept in {run.path}."
    discard_run(run.path)
    return message
