"""Which inputs each row has: missing columns become absent inputs, and absences are summed up."""
from __future__ import annotations

import logging
from collections import Counter
from typing import Mapping, Sequence

import pandas as pd

from polymodal.data.dataset import LoadedInputs
from polymodal.errors import DataError

__all__ = ["fill_absent_columns", "absent_per_row", "describe_absent", "no_input_rows", "warn_no_input", "Absences"]

log = logging.getLogger("polymodal")


def fill_absent_columns(frame: pd.DataFrame, inputs: Mapping[str, Sequence[str]], what: str) -> pd.DataFrame:
    """Add the input columns ``frame`` lacks, empty, so those inputs are absent in every row.

    Args:
        inputs: input name → the table columns it reads.

    Raises:
        DataError: the table has none of the model's input columns (nothing to predict from).
    """
    missing = {name: [c for c in cols if c not in frame.columns] for name, cols in inputs.items()}
    missing = {name: cols for name, cols in missing.items() if cols}
    if not missing:
        return frame
    lacking = sorted({c for cols in missing.values() for c in cols})
    if len(missing) == len(inputs) and all(
            len(cols) == len(inputs[name]) for name, cols in missing.items()):
        raise DataError(
            f"{what}: none of the model's input columns is in the table (expected "
            f"{', '.join(map(repr, lacking))}; columns present: {', '.join(map(str, frame.columns))}); "
            "give at least one of them"
        )
    log.warning("%s: column(s) %s not in the table; treated as absent in every row", what,
                ", ".join(map(repr, lacking)))
    frame = frame.copy()
    for column in lacking:
        frame[column] = None
    return frame


def absent_per_row(loaded: LoadedInputs) -> list[str]:
    """For each loaded row, the names of its absent inputs joined by ``;`` ("" = none absent)."""
    names = sorted(loaded.items)
    return [";".join(n for n in names if loaded.items[n][i] is None) for i in range(len(loaded))]


class Absences:
    """Rows lacking inputs, counted over one or more sets of loaded rows (a table's chunks).

    Attributes:
        rows: loaded rows counted; lacking: those that lack some input; per_input: rows
            lacking each input; no_input: rows with no input at all, the first labelled
            ``first_no_input``.
    """

    def __init__(self) -> None:
        self.rows = self.lacking = self.no_input = 0
        self.per_input: Counter = Counter()
        self.first_no_input: object = None

    def add(self, loaded: LoadedInputs) -> "Absences":
        names = sorted(loaded.items)
        for i in range(len(loaded)):
            missing = [n for n in names if loaded.items[n][i] is None]
            self.per_input.update(missing)
            self.lacking += bool(missing)
            if len(missing) == len(names):
                self.no_input += 1
                if self.first_no_input is None:
                    self.first_no_input = loaded.row_label(i)
        self.rows += len(loaded)
        return self

    def describe(self, what: str) -> str | None:
        """One line counting the rows that lack some input, per input; None when none do."""
        if not self.lacking:
            return None
        per = ", ".join(f"{n}: {c:,}" for n, c in sorted(self.per_input.items()) if c)
        return (f"{what}: {self.lacking:,} of {self.rows:,} rows lack some inputs ({per}); "
                "predicted from the inputs they have")

    def warn_untrained(self, what: str, fit_info: Mapping, modality_dropout: float, fusion: str) -> str | None:
        """Log a warning when rows lack an input and the model never learnt to do without one: no
        modality dropout and no training row lacking an input (``fit_info["rows_lacking_inputs"]``)."""
        if not self.lacking or modality_dropout > 0 or fit_info.get("rows_lacking_inputs", 0) > 0:
            return None
        message = (f"{what}: {self.lacking:,} rows lack an input, and this model never trained without one "
                   f"(training.modality_dropout: 0, every training row complete): its '{fusion}' fusion may "
                   "predict those rows far worse (weighted and low_rank fall to chance on av-digits without the "
                   "image; docs/benchmarks.md). Retrain with training.modality_dropout: 0.3 to make it robust")
        log.warning(message)
        return message

    def warn_no_input(self, what: str) -> tuple[int, str | None]:
        """Log a warning when some rows have no input at all (see ``warn_no_input``)."""
        if not self.no_input:
            return 0, None
        message = (f"{what}: {self.no_input:,} of {self.rows:,} rows have no input at all (first: row "
                   f"{self.first_no_input}); each gets the same prediction, made from nothing. "
                   "Fill in their inputs or drop those rows")
        log.warning(message)
        return self.no_input, message


def describe_absent(loaded: LoadedInputs, what: str) -> str | None:
    """One line counting the rows that lack some input, per input; None when none do."""
    return Absences().add(loaded).describe(what)


def no_input_rows(loaded: LoadedInputs) -> list[int]:
    """Positions (in ``loaded``) of the rows that have none of the model's inputs."""
    names = sorted(loaded.items)
    return [i for i in range(len(loaded)) if all(loaded.items[n][i] is None for n in names)]


def warn_no_input(loaded: LoadedInputs, what: str) -> tuple[int, str | None]:
    """Count the rows with no input at all and, when there are some, log a warning: the model
    can only give each of them the same prediction.

    Returns:
        The count, and the warning's text (None when the count is 0).
    """
    return Absences().add(loaded).warn_no_input(what)
