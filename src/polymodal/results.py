"""What ``predict`` and ``evaluate`` return, and how a prediction report is built from loaded
rows and the model's outputs (for a whole table, or one chunk of a table at a time)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from polymodal.data.dataset import LoadedInputs
from polymodal.data.presence import absent_per_row

__all__ = ["PredictionReport", "EvaluationReport", "prediction_report", "skipped_frame", "count_skips"]


@dataclass
class PredictionReport:
    """What ``FittedModel.predict`` returns.

    Attributes:
        predictions: the predicted label or value per table row (None / NaN for rows
            skipped under ``on_bad_input: skip_row``), named after the label; several labels:
            a frame with a column each.
        probabilities: one column per class (classification), NaN for skipped rows; else None.
        skipped: ``row`` (the table's index label), ``input``, ``reason`` per skipped input.
        absent: per row, the inputs it lacked, ``;``-joined (``""`` when none; None when skipped).
        note: a line saying which inputs were absent, or ``""``.
    """

    predictions: pd.Series
    probabilities: pd.DataFrame | None
    skipped: pd.DataFrame
    absent: pd.Series
    note: str = ""


@dataclass
class EvaluationReport:
    """What ``FittedModel.evaluate`` returns: ``metrics`` (with ``skipped_rows``,
    ``skipped_inputs``, ``n_unknown_label`` and ``n_no_input``), the ``confusion`` matrix as lists (classification) or None, and the
    ``skipped`` inputs (as in ``PredictionReport``)."""

    metrics: dict[str, Any]
    confusion: list | None
    skipped: pd.DataFrame


def prediction_report(task: Any, labels: dict[str, Any], label: str | None, index: pd.Index,
                      loaded: LoadedInputs, outputs: Any) -> PredictionReport:
    """The report of the rows of a table (``index``) from their loaded inputs and the model's
    ``outputs`` for the loaded rows (``loaded.rows``); its ``note`` is left empty."""
    absent = pd.Series([None] * len(index), index=index, dtype=object, name="absent_inputs")
    absent.iloc[loaded.rows] = absent_per_row(loaded)
    predictions = task.prediction_series(task.predictions(outputs, labels), loaded.rows, index)
    probs = task.probabilities(outputs)
    probabilities = None
    if probs is not None:
        full = np.full((len(index), probs.shape[1]), np.nan)
        full[loaded.rows] = probs
        probabilities = pd.DataFrame(full, columns=task.probability_columns(labels), index=index)
    if isinstance(predictions, pd.Series):  # several labels: a frame with a column each
        predictions = predictions.rename(label)
    return PredictionReport(predictions, probabilities, skipped_frame(loaded, index), absent)


def skipped_frame(loaded: LoadedInputs, index: pd.Index) -> pd.DataFrame:
    """``row`` (the table's index label), ``input``, ``reason`` per skipped input."""
    return pd.DataFrame([(index[i], name, reason) for i, name, reason in sorted(loaded.skipped)],
                        columns=["row", "input", "reason"])


def count_skips(metrics: dict[str, Any], skipped: Sequence[tuple[Any, str, str]], unknown_label: int,
                no_input: int) -> dict[str, Any]:
    """``metrics`` with the counts every evaluation reports: ``skipped_rows``, ``skipped_inputs``,
    ``n_unknown_label`` and ``n_no_input``."""
    metrics["skipped_rows"] = len({s[0] for s in skipped})
    metrics["skipped_inputs"] = len(skipped)
    metrics["n_unknown_label"] = unknown_label
    metrics["n_no_input"] = no_input
    return metrics
