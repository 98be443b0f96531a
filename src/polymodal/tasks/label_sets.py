"""Label cells that hold several labels: a list (Parquet, JSON lines, a DataFrame, a Hugging
Face ``Sequence``) or a delimited string (CSV with ``label_delimiter:``), read as sorted tuples.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from polymodal.errors import DataError

__all__ = ["is_label_set", "label_sets", "split_labels", "first_rows"]

_SETS = (list, tuple, set, frozenset, np.ndarray)


def is_label_set(value: Any) -> bool:
    """A cell holding several labels (a list-like; text is one label, not a set of characters)."""
    return isinstance(value, _SETS)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def _tag(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def label_sets(y: pd.Series, label: str, delimiter: str | None) -> list[tuple[str, ...] | None]:
    """Every cell of ``y`` as a sorted tuple of distinct labels (``()``: no label), or None (missing).

    With a ``delimiter``, a text cell is split on it and an empty or missing cell is the empty
    set (a CSV cannot tell the two apart); without one, a missing cell stays missing.

    Raises:
        DataError: a column that mixes label lists with single values (rows named), or a
            text cell without a ``label_delimiter`` to split it by.
    """
    out: list[tuple[str, ...] | None] = []
    scalars: list[Any] = []
    for position, value in enumerate(y.tolist()):
        if is_label_set(value):
            tags = [_tag(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value) if not _missing(v)]
        elif _missing(value):
            out.append(() if delimiter is not None else None)
            continue
        elif delimiter is not None and isinstance(value, str):
            tags = [t.strip() for t in value.split(delimiter)]
        else:
            scalars.append(y.index[position])
            tags = [_tag(value)]
        out.append(tuple(sorted({t for t in tags if t})))
    if scalars and delimiter is None:
        lists = sum(1 for v in y.tolist() if is_label_set(v))
        if lists:
            raise DataError(
                f"label {label!r} mixes lists of labels ({lists:,} rows) with single values ({len(scalars):,} rows, "
                f"e.g. rows {first_rows(scalars)}); a multi-label column needs a list in every row "
                "(an empty list means no label). Make those cells lists.")
        raise DataError(
            f"label {label!r} holds single values (e.g. {y.iloc[0]!r}), not lists of labels; a multi-label "
            "column needs a list per row (Parquet, JSON lines, a DataFrame), or delimited text with "
            "label_delimiter: (e.g. label_delimiter: '|' for 'cat|dog'). Or use problem_type: classification.")
    return out


def split_labels(y: pd.Series, delimiter: str | None) -> pd.Series:
    """``y`` with delimited text cells split into lists (others as they are), for label checks."""
    if delimiter is None:
        return y
    return pd.Series([list(v) if v is not None else None for v in label_sets(y, str(y.name), delimiter)],
                     index=y.index, name=y.name, dtype=object)


def first_rows(rows: list[Any], n: int = 5) -> str:
    shown = ", ".join(str(r) for r in rows[:n])
    return shown + (f" and {len(rows) - n:,} more" if len(rows) > n else "")
