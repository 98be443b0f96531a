"""The schema of a training table: the columns' roles, and the label checked by its task.

``infer_schema`` gives every column a role (``data.schema.infer_roles``), picks the task
(``problem_type: auto`` asks each registered task whether it ``claims`` the label, highest
``auto_priority`` first) and lets the task check the label. ``schema_of`` does the same from
a config, for tasks with a schema of their own (alignment) too, and checks ``align.columns``.
"""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from polymodal.data.schema import Schema, check_frame, infer_roles, require_inputs
from polymodal.errors import ConfigError
from polymodal.modalities.base import modality_of_role
from polymodal.tasks.base import Task, get_task, task_names
from polymodal.tasks.label_sets import split_labels

__all__ = ["infer_schema", "schema_of", "choose_task", "check_align_columns", "alignable"]


def _labelled() -> list[str]:
    return [name for name in task_names() if get_task(name).reads_label]


def choose_task(y: pd.Series) -> Task:
    """The task of label ``y`` under ``problem_type: auto``."""
    ranked = sorted((get_task(n) for n in _labelled() if get_task(n).auto_priority is not None),
                    key=lambda t: -t.auto_priority)
    for task in ranked:
        if task.claims(y):
            return task
    raise ConfigError(f"no task recognises label values like {y.head(3).tolist()}; set problem_type")


def infer_schema(frame: pd.DataFrame, label: str, overrides: Mapping[str, str] | None = None,
                 problem_type: str = "auto") -> Schema:
    """Give every column a role and check that the label suits the problem type.

    Args:
        frame: the table (see ``data.read_table``).
        label: the label column.
        overrides: column -> role, for columns whose inferred role is wrong.
        problem_type: ``"auto"`` (fractional floats -> regression, else classification)
            or the name of a task that reads a label.

    Raises:
        DataError: the label is absent, has missing values, a single class, or is not
            numeric for regression; no column is left as input.
        ConfigError: unknown problem type; overrides name unknown columns or roles, or the label.
    """
    check_frame(frame)
    if problem_type != "auto" and problem_type not in _labelled():
        raise ConfigError(
            f"problem_type {problem_type!r} is not known; expected 'auto' or one of {', '.join(_labelled())}."
        )
    roles, reasons = infer_roles(frame, label, overrides)
    y = frame[label]
    task = choose_task(y) if problem_type == "auto" else get_task(problem_type)
    reasons[label] = task.check_label(y, label)
    if problem_type == "auto":
        reasons[label] += task.auto_note(y)
    require_inputs(roles, reasons, label)
    return Schema(label=label, problem_type=task.name, roles=roles, reasons=reasons)


def schema_of(frame: pd.DataFrame, config: Any) -> Schema:
    """The schema a fit on ``frame`` with ``config`` uses (see ``infer_schema``).

    Raises:
        ConfigError, DataError: as ``infer_schema``; ``align.columns`` that are no input.
    """
    if isinstance(config.label, list) and len(config.label) != 1:  # several labels: one head each
        if config.problem_type not in ("auto", "multioutput"):
            raise ConfigError(f"label: {config.label} names several columns, which needs problem_type: auto or "
                              f"multioutput (got {config.problem_type!r}); set each label's task in head.targets")
        return get_task("multioutput").custom_schema(frame, config)
    if isinstance(config.label, list):
        config = config.model_copy(update={"label": config.label[0]})
    if config.problem_type != "auto":
        custom = get_task(config.problem_type).custom_schema(frame, config)
        if custom is not None:
            return custom
    problem_type = config.problem_type
    delimiter = getattr(config, "label_delimiter", None)
    if delimiter is not None and config.label in frame.columns:  # 'cat|dog' cells: sets of labels
        frame = frame.assign(**{config.label: split_labels(frame[config.label], delimiter)})
        if problem_type == "auto":
            problem_type = "multilabel"
    schema = infer_schema(frame, config.label, config.columns, problem_type)
    if config.align is not None:
        check_align_columns(schema, config.align.columns)
    return schema


def alignable(role: str | None) -> bool:
    """Columns of ``role`` are one model input each (text, image, audio): they can be aligned."""
    modality = None if role is None else modality_of_role(role)
    return modality is not None and modality.one_column


def check_align_columns(schema: Schema, columns: list[str]) -> None:
    """Every aligned column must be a text, image or audio input of ``schema``.

    Raises:
        ConfigError: naming each column that is not, with its role and why.
    """
    bad = [c for c in columns if not alignable(schema.roles.get(c))]
    if bad:
        listed = "; ".join(
            f"'{c}' is {'not an input column' if c not in schema.roles else repr(schema.roles[c])}"
            + (f" ({schema.reasons[c]})" if schema.reasons.get(c) else "") for c in bad)
        raise ConfigError(f"align.columns must be text, image or audio columns: {listed}. Set the role "
                          f"with columns: {{{bad[0]}: text}} (or image / audio), or align other columns")
