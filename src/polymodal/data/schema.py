"""The schema (the label, the problem type, the role of every other column) and role inference.

``infer_roles`` looks at the values of each column and gives it a role, with a reason a
person can check (``Schema.describe()`` prints them before training):

    text         free text
    image/audio  paths to image / audio files (relative to the table's base_dir)
    numeric      numbers (also numbers stored as text)
    categorical  few distinct short values, booleans, pandas categories
    ignore       not used: all missing, id-like, or a kind of value not supported

What the label must look like is the task's business (``polymodal.tasks.infer_schema``). The
schema is saved with the model (``to_dict`` / ``from_dict``): prediction reads the columns the same way.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from polymodal.data.file_cells import file_kind
from polymodal.data.odd_cells import odd_cells, warn_odd_role
from polymodal.errors import ConfigError, DataError
from polymodal.modalities import input_roles, media_extensions

__all__ = ["Schema", "infer_roles", "infer_role", "require_inputs", "check_frame", "is_missing"]


# Thresholds of the inference rules (see _infer_role).
_MEDIA_SHARE = 0.90  # share of values ending in a media extension to call a column media
_NUMBER_SHARE = 0.95  # share of text values that parse as numbers to call a column numeric
_ID_MIN_ROWS = 20  # fewer values than this are never called an identifier
_MAX_CATEGORIES = 50
_CATEGORY_SHARE = 0.05
_CATEGORY_MAX_WORDS = 3  # mean words per value must stay below this
_CONTAINERS = (list, tuple, dict, set, frozenset, np.ndarray, bytes, bytearray)


@dataclass
class Schema:
    """The label, the problem type, and the role of every other column.

    Attributes:
        label: the label column (None only for an alignment model without one; a list: one
            model with a head per label column, ``problem_type: multioutput``).
        problem_type: a registered task's name (``polymodal.tasks.task_names()``).
        roles: every non-label column -> one of ``modalities.input_roles()``, in table order.
        reasons: column -> why it got its role (the label's entry says why the problem type).
    """

    label: str | list[str] | None
    problem_type: str
    roles: dict[str, str]
    reasons: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.problem_type, str) or not self.problem_type:
            raise ConfigError(f"problem_type must be a task name, got {self.problem_type!r}.")
        bad = {c: r for c, r in self.roles.items() if r not in input_roles()}
        if bad:
            raise ConfigError(f"unknown roles {bad}; valid roles are: {', '.join(input_roles())}.")
        if any(c in self.roles for c in self.label_columns):
            raise ConfigError(f"the label {self.label!r} also has an input role; remove it from roles.")

    @property
    def label_columns(self) -> list[str]:  # the label column(s) as a list (empty without a label)
        return [] if self.label is None else [self.label] if isinstance(self.label, str) else list(self.label)

    def inputs(self, role: str) -> list[str]:
        """The columns with ``role``, in table order."""
        if role not in input_roles():
            raise ConfigError(f"unknown role {role!r}; valid roles are: {', '.join(input_roles())}.")
        return [column for column, r in self.roles.items() if r == role]

    def describe(self) -> str:
        """An aligned text table: column, role, why; the label first."""
        rows = [("column", "role", "why")]
        rows += [(c, "label", self.reasons.get(c, self.problem_type)) for c in self.label_columns]
        rows += [(c, r, self.reasons.get(c, "")) for c, r in self.roles.items()]
        width_column = max(len(row[0]) for row in rows)
        width_role = max(len(row[1]) for row in rows)
        lines = [f"{c:<{width_column}}  {r:<{width_role}}  {why}".rstrip() for c, r, why in rows]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; ``Schema.from_dict`` reads it back."""
        return {
            "label": self.label,
            "problem_type": self.problem_type,
            "roles": dict(self.roles),
            "reasons": dict(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Schema":
        """Rebuild a schema from ``to_dict``'s output.

        Raises:
            ConfigError: keys missing or unknown, or values of the wrong kind.
        """
        expected = {"label", "problem_type", "roles", "reasons"}
        if not isinstance(data, Mapping) or set(data) != expected:
            got = sorted(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
            raise ConfigError(f"schema dict must have keys {sorted(expected)}; got {got}. Use Schema.to_dict().")
        if not isinstance(data["roles"], Mapping) or not isinstance(data["reasons"], Mapping):
            raise ConfigError("schema dict: 'roles' and 'reasons' must be objects (column -> text).")
        return cls(
            label=data["label"] if data["label"] is None or isinstance(data["label"], list) else str(data["label"]),
            problem_type=str(data["problem_type"]),
            roles={str(k): str(v) for k, v in data["roles"].items()},
            reasons={str(k): str(v) for k, v in data["reasons"].items()},
        )


def infer_roles(frame: pd.DataFrame, label: str | None,
                overrides: Mapping[str, str] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """The role of every column but the label, and why (the label checks belong to the task:
    ``polymodal.tasks.infer_schema``).

    Args:
        frame: the table (see ``tables.read_table``).
        label: the label column.
        overrides: column -> role, for columns whose inferred role is wrong.

    Returns:
        ``roles`` and ``reasons``, column -> text, in table order.

    Raises:
        DataError: not a usable table; the label is absent.
        ConfigError: overrides name unknown columns or roles, or the label.
    """
    check_frame(frame)
    if label not in frame.columns:
        raise DataError(
            f"label column {label!r} not in the table; columns are: {_list(frame.columns)} (pass --label)."
        )
    overrides = dict(overrides or {})
    _check_overrides(overrides, frame, label)
    roles: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for column in frame.columns:
        if column == label:
            continue
        if column in overrides:
            roles[column], reasons[column] = overrides[column], "set in overrides"
        else:
            roles[column], reasons[column] = _infer_role(frame[column])
    return roles, reasons


def require_inputs(roles: Mapping[str, str], reasons: Mapping[str, str], label: str) -> None:
    """Raise ``DataError`` when every column but the label is ignored."""
    if all(role == "ignore" for role in roles.values()):
        why = "; ".join(f"{c}: {reasons[c]}" for c in list(roles)[:5]) or "the table has only the label column"
        raise DataError(
            f"no input columns: every column but the label {label!r} is ignored ({why}). "
            "Add input columns, or set a role with overrides, e.g. {'column': 'text'}."
        )


# --- checks -----------------------------------------------------------------------------


def _list(names: Any, limit: int = 20) -> str:
    names = [str(n) for n in names]
    more = f", ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def check_frame(frame: Any) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, got {type(frame).__name__}. Read it with read_table.")
    not_str = [c for c in frame.columns if not isinstance(c, str)]
    if not_str:
        raise DataError(
            f"column names must be text; got {_list(repr(c) for c in not_str)}. "
            "Rename them, e.g. frame.columns = frame.columns.astype(str)."
        )
    dupes = sorted(c for c, count in Counter(frame.columns).items() if count > 1)
    if dupes:
        raise DataError(f"duplicate column names: {_list(dupes)}; expected each once. Rename or drop the repeats.")
    if len(frame) == 0:
        raise DataError("the table has no rows; expected at least one example per class.")


def _check_overrides(overrides: dict[str, str], frame: pd.DataFrame, label: str) -> None:
    problems = []
    unknown = [c for c in overrides if c not in frame.columns]
    if unknown:
        problems.append(
            f"overrides name columns not in the table: {_list(unknown)}; columns are: {_list(frame.columns)}"
        )
    bad = {c: r for c, r in overrides.items() if r not in input_roles()}
    if bad:
        problems.append(f"overrides give unknown roles {bad}; valid roles are: {', '.join(input_roles())}")
    if label in overrides:
        problems.append(f"overrides give the label column {label!r} a role; the label is no input, remove it")
    if problems:
        raise ConfigError("; ".join(problems) + ".")


def is_missing(series: pd.Series) -> pd.Series:
    """NaN/None, and text that is empty or blank."""
    missing = series.isna()
    if series.dtype == object or ptypes.is_string_dtype(series.dtype):
        blank = [isinstance(v, str) and not v.strip() for v in series.tolist()]
        missing = missing | np.asarray(blank, dtype=bool)
    return missing


def infer_role(series: pd.Series) -> tuple[str, str]:
    """The role ``infer_roles`` would give one column, and why."""
    return _infer_role(series)


# --- roles ------------------------------------------------------------------------------


def _infer_role(series: pd.Series) -> tuple[str, str]:
    """The role of one input column and why."""
    values = series[~is_missing(series)]
    if values.empty:
        return "ignore", "all values missing"
    dtype = series.dtype
    if ptypes.is_bool_dtype(dtype):
        return "categorical", "true/false values"
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical", f"pandas category dtype ({values.nunique():,} values)"
    if ptypes.is_datetime64_any_dtype(dtype) or ptypes.is_timedelta64_dtype(dtype):
        return "ignore", f"dates/times ({dtype}) are not supported; derive numeric columns from them"
    if ptypes.is_integer_dtype(dtype) or ptypes.is_float_dtype(dtype):
        return "numeric", f"numbers ({dtype})"
    return _infer_from_values(values)


def _infer_from_values(values: pd.Series) -> tuple[str, str]:
    """The role of a column of Python objects (text, mostly), none missing.

    A few cells of another kind (a dict among numbers, a word among numbers) never silently
    decide the role: they are named in the reason and in a logged warning.
    """
    items = values.tolist()
    odd = [i for i, v in enumerate(items) if isinstance(v, _CONTAINERS) or file_kind(v) is not None]
    if len(odd) == len(items):
        kinds = {file_kind(v) for v in items}
        if len(kinds) == 1 and None not in kinds:
            kind = kinds.pop()
            return kind, f"{kind} file contents (bytes, {{bytes, path}} or in memory)"
        return "ignore", "lists, dicts or bytes are not supported (bytes or {bytes, path} cells of one " \
                         "kind of image or audio file are read as that)"
    if all(isinstance(v, (bool, np.bool_)) for v in items):
        return "categorical", "true/false values"
    numbers, flags = (int, float, np.integer, np.floating), (bool, np.bool_)
    if all(isinstance(v, numbers) and not isinstance(v, flags) for v in items):
        return "numeric", "numbers (in an object column)"

    text = pd.Series([v if isinstance(v, str) else str(v) for v in items], dtype=object).str.strip()
    n = len(text)
    if odd:  # a container's text is never a number, a path or a category
        text = text.mask(pd.Series([isinstance(v, _CONTAINERS) for v in items]), "")
    lower = text.str.lower()
    for kind, extensions in media_extensions().items():
        hits = lower[lower.str.endswith(extensions)]
        if len(hits) >= _MEDIA_SHARE * n:
            endings = hits.str.extract(r"(\.[a-z0-9]+)$", expand=False).value_counts().index[:3]
            return kind, f"paths ending {', '.join(endings)} ({len(hits):,}/{n:,})"

    try:
        is_number = pd.to_numeric(text.where(text != "", None), errors="coerce").notna().to_numpy()
    except (TypeError, ValueError, OverflowError):
        is_number = np.zeros(n, dtype=bool)
    n_numbers = int(is_number.sum())
    if n_numbers >= _NUMBER_SHARE * n:
        why = f"numbers stored as text ({n_numbers:,}/{n:,} parse)"
        return "numeric", why + odd_cells(values, ~is_number, "are not numbers", ": bad inputs under on_bad_input")
    role, why = _infer_text(text, n)
    if odd:
        why = "lists, dicts or bytes are not supported" + odd_cells(values, np.isin(np.arange(n), odd),
                                                                     "are lists, dicts or bytes")
        return warn_odd_role(values, "ignore", why, "text" if role == "ignore" else role)
    if role in ("ignore", "text") and n_numbers >= n / 2:  # mostly numbers, a few not
        return warn_odd_role(values, role, why + odd_cells(
            values, ~is_number, "are not numbers", f" (numeric needs {_NUMBER_SHARE:.0%})"), "numeric")
    return role, why


def _infer_text(text: pd.Series, n: int) -> tuple[str, str]:
    """The role of a column of text that is neither media paths nor numbers."""
    distinct = text.nunique()
    if n >= _ID_MIN_ROWS and distinct == n and not text.str.contains(r"\s", regex=True).any():
        return "ignore", f"unique id-like values ({distinct:,}/{n:,} distinct, no spaces)"
    mean_words = float(text.str.split().str.len().mean())
    if distinct <= max(2, min(_MAX_CATEGORIES, _CATEGORY_SHARE * n)) and mean_words < _CATEGORY_MAX_WORDS:
        return "categorical", f"{distinct:,} distinct short values in {n:,} rows"
    return "text", f"free text (mean {mean_words:.1f} words, {distinct:,}/{n:,} distinct)"
