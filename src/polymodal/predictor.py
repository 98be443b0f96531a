"""The high-level API: ``Predictor(label=...).fit(train).predict(test)``.

A thin scikit-learn-style façade over ``polymodal.fitted.FittedModel`` (what a fit returns),
``polymodal.pipeline.fit`` and ``polymodal.modeldir`` (save and load).
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from polymodal.config import Config, load_config
from polymodal.errors import ConfigError, NotFittedError
from polymodal.fitted import EvaluationReport, FittedModel, PredictionReport
from polymodal.modeldir import load_model, save_model
from polymodal.pipeline import fit as fit_pipeline
from polymodal.tasks import get_task

__all__ = ["Predictor"]

log = logging.getLogger("polymodal")


class Predictor:
    """Fit a multimodal model on a table, then evaluate, predict, save and load it.

    Args:
        label: the column to predict, or a list of columns for one model of several labels
            (or set ``label:`` in the config).
        config: a ``Config``, a dict, or the path of a YAML file; None for defaults.
        problem_type: a task name (``"classification"``, ``"regression"`` …); inferred when None.
        verbose: log the schema, progress and a summary.
        data_root: when set, every image/audio path in a table must stay inside this
            folder (``..``, absolute paths and symlinks out are bad inputs of their row),
            and a DataFrame's relative paths are relative to it.
        allow_urls: image and audio cells may be URLs (``https://``, ``s3://``, ...), read over
            the network (see ``polymodal.data.urls``); None: the config's ``allow_urls``.

    Attributes (after ``fit`` or ``load``):
        fitted_ (the ``FittedModel``), config_, schema_, labels_, classes_ (classification),
        model_, preprocessors_, history_, metrics_ (on the tuning split), fit_info_ (timings,
        parameter count, skipped rows), reports_ (recorded evaluations).

    ``predict``, ``predict_proba``, ``evaluate`` and ``embed`` take ``on_bad_input=`` (None =
    the config's); ``predict_report`` and ``evaluate_report`` also return the skipped inputs
    and, for predictions, the inputs each row lacked. A table file that can be read in parts
    (Parquet, a folder of Parquet shards, CSV, JSON lines) is read, decoded and run a chunk of
    rows at a time (``polymodal.streaming``), with the same results; ``predict_chunks`` gives
    the reports chunk by chunk, for tables whose predictions do not fit in memory either.
    """

    def __init__(self, label: str | list[str] | None = None, config: Any = None,
                 problem_type: str | None = None, verbose: bool = True,
                 data_root: str | Path | None = None, allow_urls: bool | None = None):
        self.label = label
        self.config = config
        self.problem_type = problem_type
        self.verbose = verbose
        self.data_root = data_root
        self.allow_urls = allow_urls

    # ------------------------------------------------------------------ fit
    def fit(self, train_data: Any, tuning_data: Any = None, checkpoint_dir: str | Path | None = None,
            resume: bool = False) -> "Predictor":
        """Train on ``train_data``; early-stop on ``tuning_data`` (split off when None).

        Args:
            checkpoint_dir: write the whole training state there after every epoch
                (see ``training.resume``); delete the folder once the model is saved.
            resume: continue the interrupted run whose checkpoint is in ``checkpoint_dir``
                (same data and config); it ends as an uninterrupted run would have.

        Returns:
            self.

        Raises:
            ConfigError, DataError: on a bad config or unusable data, before any training.
        """
        config = self._resolve_config()
        saved = config.allow_urls  # allow_urls= is this run's permission; the config keeps its own
        if self.allow_urls is not None:
            config = config.model_copy(update={"allow_urls": self.allow_urls})
        fitted = fit_pipeline(config, train_data, tuning_data, data_root=self.data_root,
                              checkpoint_dir=checkpoint_dir, resume=resume, say=self._say)
        fitted.config = fitted.config.model_copy(update={"allow_urls": saved})
        self._set(fitted)
        return self

    def _set(self, fitted: FittedModel) -> None:
        self.fitted_ = fitted
        self.config_, self.schema_, self.labels_ = fitted.config, fitted.schema, fitted.labels
        self.preprocessors_, self.model_, self.history_ = fitted.preprocessors, fitted.model, fitted.history
        self.classes_ = fitted.classes
        self.fit_info_ = fitted.fit_info
        self.metrics_ = fitted.metrics
        self.reports_ = fitted.reports

    # ------------------------------------------------------------ inference
    def predict_report(self, data: Any, on_bad_input: str | None = None) -> PredictionReport:
        """Predictions, class probabilities (classification), skipped inputs and the inputs
        each row lacked, from one pass over the table (see ``fitted.PredictionReport``)."""
        from polymodal.streaming import predict_report

        report = predict_report(self._check_fitted(), data, on_bad_input=on_bad_input)
        if report.note:
            self._say(report.note)
        return report

    def predict_chunks(self, data: Any, on_bad_input: str | None = None, chunk_rows: int = 4096,
                       shard: str | None = None) -> Iterator[PredictionReport]:
        """Prediction reports of a table file, one per chunk of ``chunk_rows`` rows, indexed by
        the rows' position in the whole table; memory holds a chunk, whatever the table's length.

        Args:
            shard: ``"I/N"``: only the I-th of N contiguous parts of the table.
        """
        from polymodal.streaming import predict_chunks

        return predict_chunks(self._check_fitted(), data, on_bad_input=on_bad_input, shard_spec=shard,
                              chunk_rows=chunk_rows)

    def predict_proba(self, data: Any, on_bad_input: str | None = None) -> pd.DataFrame:
        """Class probabilities, one column per class, one row per input row.

        Rows dropped under ``on_bad_input: skip_row`` hold NaN.
        """
        self._check_fitted()
        if self.classes_ is None:  # fail before reading the table
            raise ConfigError("predict_proba is for classification models; use predict for regression")
        report = self.predict_report(data, on_bad_input)
        if report.probabilities is None:
            raise ConfigError("predict_proba is for classification models; use predict for regression")
        return report.probabilities

    def predict(self, data: Any, on_bad_input: str | None = None) -> pd.Series:
        """Predicted label (classification) or value (regression) per row."""
        return self.predict_report(data, on_bad_input).predictions

    def explain(self, data: Any, n_steps: int = 32) -> "ModalityImportance":
        """Global and per-row importance of each input: ablation (remove it) and integrated
        gradients (Captum) on the encoder outputs. See ``polymodal.explain``.

        Returns:
            ``ModalityImportance`` with ``summary`` (one row per input) and ``rows``.
        """
        from polymodal.explain import explain

        return explain(self._check_fitted(), data, n_steps=n_steps)

    def embed(self, data: Any, column: str, batch_size: int = 256, progress: bool = False,
              on_bad_input: str | None = None) -> "Embeddings":
        """Unit vectors for one text, image or audio column (see ``retrieval.embed``).

        Columns an aligner projects get vectors in the shared space (comparable across
        modalities); other input columns get their encoder's pooled vector. The table needs
        only that column.

        Returns:
            ``Embeddings``: ``vectors [n, E]``, ``rows [n]`` (the rows that have the input;
            ``full()`` gives ``[N, E]`` with NaN rows for the others).
        """
        from polymodal.retrieval.embed import embed_column

        return embed_column(self._check_fitted(), data, column, batch_size=batch_size, progress=progress,
                            on_bad_input=on_bad_input)

    def evaluate_report(self, data: Any, on_bad_input: str | None = None) -> EvaluationReport:
        """Metrics, confusion matrix and skipped inputs on a labelled table."""
        from polymodal.streaming import evaluate_report

        return evaluate_report(self._check_fitted(), data, on_bad_input=on_bad_input)

    def evaluate(self, data: Any, record_as: str | None = None, on_bad_input: str | None = None) -> dict[str, Any]:
        """Metrics on a labelled table: accuracy, macro-F1, AUROC, log loss; or RMSE, MAE, R².

        Args:
            record_as: also keep the result (and, for classification, the confusion
                matrix) under this name, so that ``save`` writes it to ``metrics.json``
                and ``plots/confusion_matrix_<name>.png``.
        """
        report = self.evaluate_report(data, on_bad_input)
        if record_as:
            self.fitted_.record(record_as, report)
        return report.metrics

    def generate(self, conditions: Any, n: int = 1, seed: int = 0, **options: Any) -> Any:
        """New samples of a generation model's target: ``n`` per condition row, the same for a seed.

        Args:
            conditions: ``{"label": "Sneaker"}``, a list of such dicts, a DataFrame or a table path
                (a multimodal VAE makes the column each row lacks from the ones it has).
            options: ``target``, ``out`` (a folder: files, ``samples.csv``, a grid), ``keep_arrays``,
                ``on_bad_input`` (see ``polymodal.generation.sample.generate``).

        Returns:
            ``Samples``: ``table`` (one row per sample), ``arrays`` (decoded samples), ``grid``.
        """
        return self._check_fitted().generate(conditions, n=n, seed=seed, **options)

    def evaluate_samples(self, data: Any, reference: Any = None, train: Any = None, **options: Any) -> dict[str, Any]:
        """A generation model's scores on a labelled test table: conditional accuracy, CAS, Fréchet
        distance (and the test ELBO of a VAE); see ``polymodal.samples.evaluate``."""
        from polymodal.samples.evaluate import evaluate_generation

        return evaluate_generation(self._check_fitted(), data, reference=reference, train=train, **options)

    # ----------------------------------------------------------- save/load
    def save(self, path: str | Path) -> Path:
        """Write the model directory atomically (see ``modeldir``). Returns its path."""
        self._check_fitted()
        path = save_model(self.fitted_, path)
        self._say(f"Saved model to {path}")
        return path

    @classmethod
    def load(cls, path: str | Path, verbose: bool = False,
             data_root: str | Path | None = None, allow_urls: bool | None = None,
             runtime: str = "torch", onnx: str | Path | None = None) -> "Predictor":
        """Load a model directory written by ``save``. Reads JSON/YAML/safetensors only.

        Args:
            data_root: see ``Predictor``; file paths in tables must stay inside it.
            allow_urls: see ``Predictor``; None: the saved config's ``allow_urls``.
            runtime: ``"torch"``, or ``"onnx"``: predict, predict_proba and evaluate run the
                network with onnxruntime (the ``onnx`` extra), after polymodal's own
                preprocessing; explain and embed keep PyTorch (see ``polymodal.export``).
            onnx: the graph ``polymodal export`` wrote for this directory; None with
                ``runtime="onnx"``: export it now, into a temporary file.
        """
        from polymodal.export.runtime import use_runtime

        fitted = use_runtime(load_model(path, data_root=data_root), path, runtime, onnx)
        self = cls(label=fitted.schema.label, config=fitted.config, verbose=verbose, data_root=data_root,
                   allow_urls=allow_urls)
        self._set(fitted)
        return self

    # ------------------------------------------------------------ helpers
    def _resolve_config(self) -> Config:
        config = load_config(self.config)
        updates = {}
        if self.label is not None:
            updates["label"] = self.label
        if self.problem_type is not None:
            updates["problem_type"] = self.problem_type
        if updates:
            config = load_config({**config.model_dump(exclude_unset=True), **updates})  # unset stays unset
        reads_label = config.problem_type == "auto" or get_task(config.problem_type).reads_label
        if not config.label and reads_label:
            raise ConfigError("no label column given; pass Predictor(label=...) / --label, or set label: in the config")
        return config

    def _check_fitted(self) -> FittedModel:
        """The fitted model, reading tables under the current ``data_root``."""
        if not hasattr(self, "fitted_"):
            raise NotFittedError("this Predictor is not fitted yet; call fit(...) or Predictor.load(dir) first")
        if self.fitted_.data_root != self.data_root or self.fitted_.allow_urls != self.allow_urls:
            return dataclasses.replace(self.fitted_, data_root=self.data_root, allow_urls=self.allow_urls)
        return self.fitted_

    def _say(self, message: str) -> None:
        if self.verbose:
            log.info(message)
