"""The schema and match groups of an alignment model (``problem_type: alignment``).

An alignment model reads only the columns named in ``align.columns``; every other column is
ignored. Its optional ``label`` is no prediction target: it marks which rows match (under
``align.match: label``, two rows with the same label value are positives of each other, so
a clip of "seven" matches every image of a seven). Without it, each row matches itself.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from polymodal.config import Config
from polymodal.data.schema import Schema, infer_role
from polymodal.errors import ConfigError, DataError

__all__ = ["ALIGNABLE", "alignment_schema", "check_align_columns", "match_groups"]

ALIGNABLE = ("text", "image", "audio")  # roles with one input per column


def alignment_schema(frame: pd.DataFrame, config: Config) -> Schema:
    """Roles for an alignment model: the aligned columns (inferred or from ``columns:``);
    the rest ignored.

    Raises:
        DataError: an aligned column (or the label) is not in the table.
        ConfigError: an aligned column is not text, image or audio.
    """
    align = config.align
    assert align is not None, "alignment_schema needs config.align"
    wanted = [*align.columns, *([config.label] if config.label else [])]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(f"column(s) {', '.join(map(repr, missing))} named in the config are not in the "
                        f"table; columns are: {', '.join(map(str, frame.columns))}")
    roles, reasons = {}, {}
    for column in frame.columns:
        if column == config.label:
            continue
        if column not in align.columns:
            roles[column], reasons[column] = "ignore", "not in align.columns"
        elif column in config.columns:
            roles[column], reasons[column] = config.columns[column], "set in columns:"
        else:
            roles[column], reasons[column] = infer_role(frame[column])
    if config.label:
        reasons[config.label] = f"alignment: rows with equal values match ({frame[config.label].nunique():,} groups)"
    schema = Schema(label=config.label or None, problem_type="alignment", roles=roles, reasons=reasons)
    check_align_columns(schema, align.columns)
    return schema


def check_align_columns(schema: Schema, columns: list[str]) -> None:
    """Every aligned column must be a text, image or audio input of ``schema``.

    Raises:
        ConfigError: naming each column that is not, with its role and why.
    """
    bad = [c for c in columns if schema.roles.get(c) not in ALIGNABLE]
    if bad:
        listed = "; ".join(
            f"'{c}' is {'not an input column' if c not in schema.roles else repr(schema.roles[c])}"
            + (f" ({schema.reasons[c]})" if schema.reasons.get(c) else "") for c in bad)
        raise ConfigError(f"align.columns must be text, image or audio columns: {listed}. Set the role "
                          f"with columns: {{{bad[0]}: text}} (or image / audio), or align other columns")


def match_groups(frame: pd.DataFrame, schema: Schema, match: str) -> np.ndarray:
    """``[N]`` int64 match group per row: equal ids match. ``-1`` where the label is missing.

    Under ``match: row`` (or with no label) each row is its own group.
    """
    if match != "label" or schema.label is None:
        return np.arange(len(frame), dtype=np.int64)
    codes, _ = pd.factorize(frame[schema.label].map(_key), use_na_sentinel=True)
    return codes.astype(np.int64)


def _key(value: Any) -> Any:
    """Label values as compared for matching: ``3``, ``3.0`` and ``"3"`` are one group."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)
