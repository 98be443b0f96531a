"""The fit pipeline for a table read a chunk at a time (``training.stream``): memory that does
not grow with the number of rows.

The same stages as ``pipeline.fit``, each over chunks: a first pass counts the rows of each
split, keeps the label column (compact) and a seeded sample of ``training.fit_sample_rows``
rows; the schema and the preprocessors come from that sample (logged), the label encoding
from every training row's label. Rows go to tuning by their position (``data.stream.RowSplit``,
not stratified). Training and validation stream batches (``data.stream.StreamedBatches``); the
tuning report is scored a chunk at a time.
"""
from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from polymodal.backbones.feature_cache import prepare_backbone_inputs
from polymodal.builders import build_model, build_preprocessors, input_specs
from polymodal.config import Config
from polymodal.data import Collator
from polymodal.data.chunks import ChunkedTable, open_chunked
from polymodal.data.parquet import parquet_files
from polymodal.data.stream import RowSplit, StreamedBatches
from polymodal.data.tables import Table
from polymodal.distributed import world_size
from polymodal.errors import ConfigError, DataError
from polymodal.fitted import FittedModel
from polymodal.fusion import check_fusion_inputs
from polymodal.runtime import resolve_precision
from polymodal.tasks import get_task, schema_of
from polymodal.training import fit_model
from polymodal.training.devices import check_devices
from polymodal.training.module import count_parameters
from polymodal.training.loggers import log_final_metrics
from polymodal.validate import validate

__all__ = ["streamed_table", "fit_streamed"]

log = logging.getLogger("polymodal")


def streamed_table(config: Config, train_data: Any) -> ChunkedTable | None:
    """The training table as a ``ChunkedTable`` when ``training.stream`` asks to stream it, else None.

    Raises:
        ConfigError: ``stream: on`` for data that cannot be read in parts (a DataFrame, a folder).
    """
    mode = config.training.stream
    if mode == "off" or not isinstance(train_data, (str, Path)):
        if mode == "on":
            raise ConfigError("training.stream: on reads the table a chunk at a time, so it needs the path of a "
                              f"Parquet, CSV or JSON lines file (got a {type(train_data).__name__}); pass the path")
        return None
    path = Path(train_data).expanduser()
    if mode == "auto" and (not path.exists() or parquet_files(path) is None):
        return None  # auto: Parquet only (its length is in its metadata; a CSV would need a pass)
    chunked = open_chunked(path)
    if chunked is None:
        if mode == "on":
            raise ConfigError(f"training.stream: on, but {path} cannot be read in parts; use a Parquet file or "
                              "folder, a CSV / TSV or a JSON lines file")
        return None
    if mode == "auto" and chunked.n_rows <= config.training.stream_above_rows:
        return None
    return chunked


def fit_streamed(config: Config, chunked: ChunkedTable, tuning_data: Any = None, data_root: Any = None,
                 checkpoint_dir: Any = None, resume: bool = False,
                 say: Callable[[str], None] = log.info, callbacks: list[Any] | None = None) -> FittedModel:
    """Train on a chunked table (see the module docstring); the arguments are ``pipeline.fit``'s."""
    start = time.perf_counter()
    if not config.label:
        raise ConfigError("a streamed fit needs the label column named (label= / label: in the config)")
    if isinstance(config.label, list):
        raise ConfigError(f"a streamed fit predicts one label; label: {config.label} names several. Set "
                          "training.stream: off (the table is read whole) or train a model per label")
    t = config.training
    split = RowSplit(config.seed, t.tuning_fraction) if tuning_data is None else None
    sample, label_column, counts = _first_pass(chunked, config, split)
    schema = schema_of(sample, config)
    task = get_task(schema.problem_type)
    validate(config, schema, checks=[lambda: task.config_problems(config, schema)])
    check_fusion_inputs(config.fusion, [spec["name"] for spec in input_specs(schema)])
    check_devices(t, resolve_precision(t.precision, t.accelerator))
    if t.group_by_length:
        raise ConfigError("training.group_by_length needs the whole table in memory; drop it or set training.stream: off")
    say("Columns (from a sample of %s rows):\n%s" % (f"{len(sample):,}", schema.describe()))
    say(f"Streaming {chunked.source}: {counts['train']:,} training rows"
        + (f", {counts['tuning']:,} tuning rows ({t.tuning_fraction:.0%} by row position, seed {config.seed})"
           if split is not None else "") + (f"; {counts['no_label']:,} rows without a label left out"
                                            if counts["no_label"] else ""))
    labels = task.fit_labels(pd.DataFrame({schema.label: label_column}), schema, config)
    del label_column
    fitted = FittedModel(config, schema, labels, build_preprocessors(config, schema), data_root=data_root)
    for pre in fitted.preprocessors.values():
        pre.fit(sample, chunked.base_dir)
    say(f"Preprocessors fitted on a seeded sample of {len(sample):,} training rows (training.fit_sample_rows).")
    run = _run_directory(checkpoint_dir, resume, fitted, chunked, sample, counts)
    model = build_model(config, schema, fitted.preprocessors, labels)
    fitted.model = model
    load = _chunk_loader(fitted, model)
    common = dict(preprocessors=fitted.preprocessors, batch_size=t.batch_size, seed=config.seed,
                  world=world_size(t))
    train = StreamedBatches(chunked, load, (lambda p: ~split.tuning(p)) if split else (lambda p: np.ones(len(p), bool)),
                            counts["train"], shuffle=True, augment=task.augmented(labels, sorted(fitted.preprocessors)),
                            **common)
    if split is not None:
        tuning: Any = StreamedBatches(chunked, load, split.tuning, counts["tuning"], shuffle=False,
                                      **{**common, "batch_size": max(t.batch_size, 128)})
        tune_rows = counts["tuning"]
    else:
        from polymodal.data import MultimodalDataset
        from polymodal.fitted import as_table

        tune_loaded, tune_y = fitted.load_inputs(as_table(tuning_data, data_root), labelled=True, what="tuning data")
        prepare_backbone_inputs(model, fitted.preprocessors, tune_loaded, t, "tuning data")
        tuning, tune_rows = MultimodalDataset(tune_loaded, fitted.preprocessors, tune_y), len(tune_loaded)
    say(f"Model: {count_parameters(model):,} parameters; inputs "
        + ", ".join(f"{n} ({p.modality})" for n, p in sorted(fitted.preprocessors.items())))
    result = fit_model(model, train, tuning, Collator(fitted.preprocessors), t, task, labels, config.seed,
                       checkpoint=run, callbacks=callbacks)
    fitted.history, fitted.grids = result.history, result.grids
    if split is not None:
        metrics, confusion = _score_streamed(fitted, chunked, split.tuning)
    else:
        fitted.labels = task.calibrate(fitted.forward(tune_loaded), tune_y, fitted.labels, config)
        metrics, confusion = fitted.score(tune_loaded, tune_y)
    fitted.reports = {"tuning": {"metrics": metrics, "confusion": confusion}}
    log_final_metrics(result.experiment, config, metrics)  # the experiment log: the config and these scores
    fitted.fit_info = {
        "streamed": True, "train_rows": counts["train"], "tuning_rows": tune_rows, "sample_rows": len(sample),
        "rows_without_label": counts["no_label"], "epochs": len(result.history), "best_epoch": result.best_epoch,
        "monitor": result.monitor, "precision": result.precision, "parameters": count_parameters(model),
        "world_size": result.world_size, "global_batch_size": result.world_size * t.batch_size,
        "fit_seconds": round(time.perf_counter() - start, 2),
    }
    say(f"Trained {fitted.fit_info['epochs']} epochs in {fitted.fit_info['fit_seconds']:.1f}s; best epoch "
        f"{result.best_epoch}; tuning " + ", ".join(f"{k} {metrics[k]:.4f}" for k in task.summary if k in metrics))
    return fitted


def _first_pass(chunked: ChunkedTable, config: Config, split: RowSplit | None) -> tuple[pd.DataFrame, Any, dict]:
    """One read of the table: a seeded sample of training rows, the training rows' labels, the counts."""
    label, n = config.label, chunked.n_rows
    if label not in chunked.columns:
        raise DataError(f"{chunked.source}: no label column {label!r}; its columns are {', '.join(chunked.columns)}")
    expected = n * (1 - config.training.tuning_fraction if split is not None else 1)  # training rows
    keep = min(1.0, config.training.fit_sample_rows / max(expected, 1))
    samples, labels = [], []
    counts = {"train": 0, "tuning": 0, "no_label": 0}
    for table in chunked.chunks():
        frame = table.frame
        positions = np.asarray(frame.index, dtype=np.int64)
        labelled = frame[label].notna().to_numpy()
        tuning = split.tuning(positions) if split is not None else np.zeros(len(frame), bool)
        counts["no_label"] += int((~labelled).sum())
        counts["tuning"] += int((tuning & labelled).sum())
        train = ~tuning & labelled
        counts["train"] += int(train.sum())
        column = frame[label][train]
        labels.append(column.astype("category") if column.dtype == object else column)
        draws = np.random.default_rng([config.seed, int(positions[0]), 7]).random(len(frame))
        samples.append(frame[train & (draws < keep)])
    if counts["train"] == 0:
        raise DataError(f"{chunked.source}: no labelled training rows")
    label_column = pd.api.types.union_categoricals(labels) if all(
        isinstance(c.dtype, pd.CategoricalDtype) for c in labels) else pd.concat(labels, ignore_index=True)
    return pd.concat(samples), pd.Series(label_column), counts


def _chunk_loader(fitted: FittedModel, model: torch.nn.Module) -> Callable:
    """``load(table) -> (loaded, targets)`` for one chunk: decoded, frozen features filled in."""
    def load(table: Table):
        loaded, target = fitted.load_inputs(table, labelled=True, unknown="drop")
        with _quiet():  # one log line per chunk would bury the epoch lines
            prepare_backbone_inputs(model, fitted.preprocessors, loaded, fitted.config.training, str(table.source))
        return loaded, target
    return load


@contextlib.contextmanager
def _quiet():
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)


def _score_streamed(fitted: FittedModel, chunked: ChunkedTable, keep: Callable) -> tuple[dict, Any]:
    """The task's metrics over the tuning rows, computed from their outputs chunk by chunk."""
    load = _chunk_loader(fitted, fitted.model)
    outputs, targets = [], []
    for table in chunked.chunks():
        mask = keep(np.asarray(table.frame.index, dtype=np.int64))
        if mask.any():
            loaded, target = load(Table(table.frame[mask], table.base_dir, table.source))
            if len(loaded):
                outputs.append(fitted.forward(loaded))
                targets.append(target)
    task = fitted.task
    outputs, target = task.concat(outputs, fitted.labels), torch.cat(targets)
    fitted.labels = task.calibrate(outputs, target, fitted.labels, fitted.config)
    return task.score(outputs, target, fitted.labels, None)


def _run_directory(checkpoint_dir: Any, resume: bool, fitted: FittedModel, chunked: ChunkedTable,
                   sample: pd.DataFrame, counts: dict) -> Any:
    if checkpoint_dir is None:
        if resume:
            raise ConfigError("resume=True needs checkpoint_dir= (the folder of the interrupted run)")
        return None
    from polymodal.training.resume import RunDirectory, data_digest

    run = RunDirectory(checkpoint_dir, resume, {
        "config": fitted.config.model_dump(mode="json"), "schema": fitted.schema.to_dict(), "labels": fitted.labels,
        "train": {"source": str(chunked.source), "rows": chunked.n_rows, "counts": counts,
                  "sample_digest": data_digest(sample)},
    })
    if run.has_preprocessors:
        fitted.preprocessors = run.load_preprocessors(fitted.preprocessors)
    else:
        run.save_preprocessors(fitted.preprocessors)
    return run
