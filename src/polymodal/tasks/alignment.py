"""Alignment: project some columns into one space with a contrastive loss; no label to predict.

An alignment model reads only the columns named in ``align.columns``; every other column is
ignored. Its optional ``label`` is no prediction target: it marks which rows match (under
``align.match: label``, two rows with the same label value are positives of each other, so
a clip of "seven" matches every image of a seven). Without it, each row matches itself. The
aligner is the model's only head; it is scored by Recall@K between the aligned inputs.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from polymodal.data.schema import Schema, infer_role
from polymodal.errors import DataError
from polymodal.tasks.base import Task, register_task
from polymodal.tasks.infer import check_align_columns
from polymodal.tasks.ranking import alignment_metrics

__all__ = ["AlignmentTask", "alignment_schema", "match_groups"]


def alignment_schema(frame: pd.DataFrame, config: Any) -> Schema:
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
    schema = Schema(label=config.label or None, problem_type=AlignmentTask.name, roles=roles, reasons=reasons)
    check_align_columns(schema, align.columns)
    return schema


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


class AlignmentTask(Task):
    """The aligner is the only head; the target of a row is its match group."""

    name = "alignment"
    reads_label = False
    has_head = False
    targets_are_groups = True

    def settings_problems(self, config: Any) -> list[str]:
        if config.align is None:
            return ["problem_type: alignment needs an align: section naming the columns to align, "
                    "e.g. align: {columns: [caption, photo]}"]
        return []

    def custom_schema(self, frame: pd.DataFrame, config: Any) -> Schema:
        return alignment_schema(frame, config)

    def encode_target(self, frame: pd.DataFrame, schema: Schema, labels: Mapping[str, Any], config: Any,
                      what: str, unknown: str) -> np.ndarray:
        return match_groups(frame, schema, config.align.match)

    def monitor(self, requested: str) -> tuple[str, str]:
        return "val_loss", "min"  # the loss is the metric

    def batch_outputs(self, model: nn.Module, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Unit vectors ``[B, E]`` per aligned input (zeros where absent)."""
        encoded = model.encode(batch["inputs"], batch["present"])
        return model.align(encoded, batch["present"]).embeddings

    def concat(self, parts: list[Any], labels: Mapping[str, Any]) -> dict[str, np.ndarray]:
        if not parts:
            return {}
        return {n: torch.cat([p[n] for p in parts]).numpy().astype(np.float32) for n in parts[0]}

    def score(self, outputs: Mapping[str, np.ndarray], target: torch.Tensor, labels: Mapping[str, Any],
              loaded: Any) -> tuple[dict[str, Any], None]:
        """Recall@1/5/10, median rank and MRR between the aligned inputs, both directions."""
        names = sorted(outputs)
        present = {n: np.array([it is not None for it in loaded.items[n]], dtype=bool) for n in names}
        metrics = alignment_metrics(dict(outputs), present, {n: loaded.items[n] for n in names}, target.numpy())
        metrics["n"] = len(loaded)
        return metrics, None


register_task(AlignmentTask())
