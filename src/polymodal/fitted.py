"""The public fitted model: config, schema, labels, preprocessors and model, and what they do.

``FittedModel`` is what a fit returns and what a model directory holds (``modeldir``). Its
methods are the steps every surface uses (the ``Predictor``, the CLI, explanations, the
robustness report, retrieval, the HTTP service): read a table, load its inputs, run the
model, score it. ``predict`` and ``evaluate`` return reports; nothing here mutates the
model except ``record``, which keeps an evaluation so that a save writes it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from polymodal.backbones.feature_cache import prepare_backbone_inputs
from polymodal.builders import input_specs
from polymodal.config import Config
from polymodal.data import Collator, MultimodalDataset, load_inputs, read_table
from polymodal.data.dataset import LoadedInputs
from polymodal.data.presence import Absences, describe_absent, fill_absent_columns, warn_no_input
from polymodal.data.schema import Schema
from polymodal.data.skips import POLICIES, normalise_policy
from polymodal.data.skips import warn_unknown_labels
from polymodal.data.tables import Table
from polymodal.errors import ConfigError, DataError, NotFittedError
from polymodal.results import EvaluationReport, PredictionReport, count_skips, prediction_report, skipped_frame
from polymodal.tasks import Task, get_task

__all__ = ["FittedModel", "PredictionReport", "EvaluationReport", "as_fitted", "as_table", "require_columns", "skipped_frame"]

log = logging.getLogger("polymodal")

BATCH = 256  # rows per forward pass at inference

@dataclass
class FittedModel:
    """A trained model and everything it needs to read new tables.

    Attributes:
        config, schema: as fitted (``config.yaml``, ``schema.json``).
        labels: the task's label encoding (``labels.json``).
        preprocessors: input name -> fitted preprocessor.
        model: the ``MultimodalModel`` (None only while a fit is building it).
        history: one row per epoch; fit_info: timings, sizes, skipped rows.
        reports: recorded evaluations, name -> ``{"metrics", "confusion"}`` (``tuning`` first).
        data_root: when set, file paths in tables must stay inside it, and a DataFrame's
            relative paths are relative to it.
        allow_urls: whether image and audio cells may be URLs, read over the network
            (``data.urls``); None: the config's ``allow_urls``. Neither is saved with the model.
    """

    config: Config
    schema: Schema
    labels: dict[str, Any]
    preprocessors: dict[str, Any]
    model: Any = None
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    fit_info: dict[str, Any] = field(default_factory=dict)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_root: str | Path | None = None
    allow_urls: bool | None = None
    grids: dict[str, list] = field(default_factory=dict)  # generation: {target: [(epoch, picture)]}
    # plots/ of the directory it was loaded from (PNG bytes): a re-save keeps those it cannot
    # draw again (the per-epoch sample grids, the confusion matrices of recorded evaluations)
    saved_plots: dict[str, bytes] = field(default_factory=dict)
    runtime: Any = None  # an exported network that ``forward`` runs instead of ``model`` (polymodal.export)

    @property
    def task(self) -> Task:
        return get_task(self.schema.problem_type)

    @property
    def classes(self) -> list | None:
        return self.labels.get("classes")

    @property
    def metrics(self) -> dict[str, Any]:
        """The metrics on the tuning split."""
        return self.reports.get("tuning", {}).get("metrics", {})

    # ------------------------------------------------------------ reading
    def read_table(self, data: Any, fill_absent: bool = True) -> Table:
        """``data`` (path, DataFrame or ``Table``) as a ``Table`` (see ``as_table``).

        With ``fill_absent``, every input column the table lacks is added, empty: those
        inputs are absent in every row.

        Raises:
            DataError: unreadable table; none of the model's input columns is in it.
        """
        table = as_table(data, self.data_root)
        if not fill_absent:
            return table
        inputs = {name: pre.columns for name, pre in self.preprocessors.items()}
        frame = fill_absent_columns(table.frame, inputs, str(table.source))
        return table if frame is table.frame else Table(frame, table.base_dir, table.source)

    def require_columns(self, table: Table, need_label: bool, what: str | None = None) -> None:
        """Raise ``DataError`` naming the input (and label) columns ``table`` lacks."""
        require_columns(table, self.schema, need_label, what)

    def load_inputs(self, table: Table, labelled: bool = False, on_bad_input: str | None = None,
                    unknown: str = "error", preprocessors: Mapping[str, Any] | None = None,
                    what: str | None = None) -> tuple[LoadedInputs, torch.Tensor | None]:
        """Decode a table's inputs and, when ``labelled``, encode its targets.

        Args:
            on_bad_input: ``error`` | ``skip_row`` | ``skip_modality``; None = the config's.
            unknown: ``error`` (raise) or ``drop`` (leave out) rows whose label the model does
                not know (unseen classes, missing values).
            preprocessors: decode through these instead of the model's (e.g. only a noisy copy
                of one input's preprocessor).

        Returns:
            The loaded inputs (``rows``: positions in the table; ``skipped``: positions in the
            whole table) and the ``[n]`` targets of the loaded rows (None unlabelled).
        """
        policy = self.policy(on_bad_input)
        what = str(table.source) if what is None else what
        pres = self.preprocessors if preprocessors is None else preprocessors
        frame, target_all = table.frame, None
        if labelled:
            task = self.task
            target_all = task.encode_target(frame, self.schema, self.labels, self.config, what, unknown)
            known = task.known(target_all)
            if not known.all():
                frame, target_all = frame[known], target_all[known]
        urls = self.config.allow_urls if self.allow_urls is None else self.allow_urls
        loaded = load_inputs(frame, table.base_dir, pres, policy, self.config.training.load_threads, what,
                             data_root=self.data_root, allow_urls=urls)
        if target_all is None:
            return loaded, None
        loaded.unknown_label = len(table.frame) - len(frame)
        if len(frame) != len(table.frame):  # report skipped rows by their position in the whole table
            positions = np.flatnonzero(known)
            loaded.skipped = [(int(positions[i]), n, r) for i, n, r in loaded.skipped]
        return loaded, self.task.target_tensor(target_all[loaded.rows])

    def policy(self, on_bad_input: str | None) -> str:
        """``on_bad_input`` checked (None = the config's)."""
        if on_bad_input is None:
            return self.config.on_bad_input
        if normalise_policy(on_bad_input) not in POLICIES:
            raise ConfigError(f"The 'on_bad_input' parameter must be one of {', '.join(POLICIES)}. "
                              f"Got {on_bad_input!r} instead.")
        return normalise_policy(on_bad_input)

    # ------------------------------------------------------------ running
    @torch.no_grad()
    def forward(self, loaded: LoadedInputs) -> Any:
        """The task's outputs for loaded rows: probabilities ``[N, K]`` (classification),
        values ``[N]`` (regression), unit vectors per aligned input (alignment)."""
        if self.runtime is not None:  # onnxruntime on the same batches (export.runtime.OnnxNetwork)
            return self.runtime.forward(self, loaded)
        prepare_backbone_inputs(self.model, self.preprocessors, loaded, self.config.training)
        model = self.model.eval()
        loader = torch.utils.data.DataLoader(MultimodalDataset(loaded, self.preprocessors), batch_size=BATCH,
                                             collate_fn=Collator(self.preprocessors))
        task = self.task
        return task.concat([task.batch_outputs(model, batch) for batch in loader], self.labels)

    def score(self, loaded: LoadedInputs, target: torch.Tensor) -> tuple[dict[str, Any], list | None]:
        """Metrics of loaded labelled rows, and the confusion matrix (lists) or None."""
        if len(loaded) == 0:
            raise DataError("no rows to evaluate: every row was skipped or had an unknown label")
        return self.task.score(self.forward(loaded), target, self.labels, loaded)

    def generate(self, conditions: Any, n: int = 1, seed: int = 0, **options: Any) -> Any:
        """Samples of a generation model (see ``polymodal.generation.sample.generate``)."""
        from polymodal.generation.sample import generate

        if self.labels.get("targets") is None:
            raise ConfigError(f"this is a {self.schema.problem_type} model: it generates nothing; fit one with "
                              "problem_type: generation")
        return generate(self, conditions, n=n, seed=seed, **options)

    def check_predicts(self) -> None:
        """Raise ``ConfigError`` when the model has no label to predict (alignment, generation)."""
        if self.labels.get("targets") is not None:
            raise ConfigError("this is a generation model: it makes samples, not predictions; use "
                              "generate() or `polymodal generate`")
        if self.model.head is None:
            raise ConfigError("this is an alignment model: it has no label to predict; use embed(), "
                              "`polymodal embed | index | search`, or zero-shot classification")

    def warn_untrained_absence(self, absences: Absences, what: str) -> None:
        """Warn when predicted rows lack an input this model never learnt to do without."""
        absences.warn_untrained(what, self.fit_info or {}, self.config.training.modality_dropout,
                                str(self.config.fusion.get("name", "concat")))

    def predict(self, data: Any, on_bad_input: str | None = None) -> PredictionReport:
        """Predictions (and class probabilities) for every row of a table; decodes it once."""
        self.check_predicts()
        table = self.read_table(data)
        loaded, _ = self.load_inputs(table, on_bad_input=on_bad_input)
        report = self.report(table.frame.index, loaded, self.forward(loaded))
        _, nothing = warn_no_input(loaded, str(table.source))
        report.note = "\n".join(n for n in (describe_absent(loaded, str(table.source)), nothing) if n)
        self.warn_untrained_absence(Absences().add(loaded), str(table.source))
        return report

    def report(self, index: pd.Index, loaded: LoadedInputs, outputs: Any) -> PredictionReport:
        """The prediction report of a table's rows (``index``) from their loaded inputs and outputs."""
        return prediction_report(self.task, self.labels, self.schema.label, index, loaded, outputs)

    def evaluate(self, data: Any, on_bad_input: str | None = None) -> EvaluationReport:
        """Metrics on a labelled table; rows with labels the model does not know (or none) are
        left out, counted in ``metrics["n_unknown_label"]`` and logged; rows with no input at all
        are counted in ``metrics["n_no_input"]`` and logged."""
        table = self.read_table(data)
        self.require_columns(table, need_label=True)
        loaded, target = self.load_inputs(table, labelled=True, on_bad_input=on_bad_input, unknown="drop")
        if len(loaded) == 0:
            raise DataError(f"{table.source}: no rows to evaluate: every row was skipped or had a "
                            "label the model was not trained on")
        metrics, confusion = self.score(loaded, target)
        count_skips(metrics, loaded.skipped, loaded.unknown_label, warn_no_input(loaded, str(table.source))[0])
        warn_unknown_labels(loaded, table, "the metrics", log)
        return EvaluationReport(metrics, confusion, skipped_frame(loaded, table.frame.index))

    def record(self, name: str, report: EvaluationReport) -> None:
        """Keep an evaluation under ``name``: a save writes its metrics (``metrics.json``) and
        confusion matrix (``plots/confusion_matrix_<name>.png``)."""
        self.reports[name] = {"metrics": report.metrics, "confusion": report.confusion}


def as_fitted(model: Any) -> FittedModel:
    """``model`` if it is a ``FittedModel``, else the one a fitted ``Predictor`` holds (``fitted_``).

    Raises:
        NotFittedError: neither.
    """
    if isinstance(model, FittedModel):
        return model
    fitted = getattr(model, "fitted_", None)
    if isinstance(fitted, FittedModel):
        return fitted
    raise NotFittedError(f"expected a fitted model (a FittedModel or a fitted Predictor), got "
                         f"{type(model).__name__}; call fit(...) or load a model directory first")


def as_table(data: Any, data_root: str | Path | None = None) -> Table:
    """``data`` (path, DataFrame or ``Table``) as a ``Table``; with a data root, a DataFrame's
    relative paths are relative to it."""
    if isinstance(data, Table):
        return data
    if isinstance(data, pd.DataFrame) and data_root is not None:
        return read_table(data, base_dir=Path(data_root))
    return read_table(data)


def require_columns(table: Table, schema: Schema, need_label: bool, what: str | None = None) -> None:
    """Raise ``DataError`` naming the input (and label) columns of ``schema`` that ``table`` lacks."""
    needed = [c for spec in input_specs(schema) for c in spec["columns"]]
    if need_label:
        needed += schema.label_columns
    missing = [c for c in needed if c not in table.frame.columns]
    if missing:
        raise DataError(f"{what or table.source}: missing column(s) {', '.join(map(repr, missing))} that the "
                        f"model was trained with; columns present: {', '.join(map(str, table.frame.columns))}")
