"""Cells of another kind than the rest of their column (a dict among numbers, a word among
numbers): role inference names them, so a few of them never silently decide a column's role."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from polymodal.preprocessing import shown

__all__ = ["odd_cells", "warn_odd_role"]

log = logging.getLogger("polymodal")


def odd_cells(values: pd.Series, odd: np.ndarray, what: str, then: str = "") -> str:
    """``"; 2 of 40 cells <what> (first: row 7: 'abc')<then>"``, or "" when no cell is odd.

    Args:
        odd: ``[len(values)]`` bool, True for the cells of another kind.
    """
    if not odd.any():
        return ""
    first = int(np.flatnonzero(odd)[0])
    return (f"; {int(odd.sum()):,} of {len(values):,} cells {what} "
            f"(first: row {values.index[first]}: {shown(values.iloc[first])}){then}")


def warn_odd_role(values: pd.Series, role: str, why: str, meant: str) -> tuple[str, str]:
    """Log that a few odd cells decided the role of column ``values.name``, and how to fix it
    (``meant``: the role the other cells suggest)."""
    log.warning("column '%s' gets role %s: %s. Fix those cells, or set the column's role "
                "(columns: {%s: %s} in the config)", values.name, role, why, values.name, meant)
    return role, why
