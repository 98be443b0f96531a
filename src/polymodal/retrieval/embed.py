"""Vectors for one column of a table, from a fitted model, in batches.

A column of an alignment model (or of a model trained with an ``align:`` section) is
embedded in the shared space: its encoder, then its projection, scaled to unit length,
so that columns of different modalities can be compared. Any other input column gets its
encoder's pooled vector, scaled to unit length (comparable only with the same column).
Rows whose input is absent (empty cell) or unreadable (under ``on_bad_input: skip*``)
get no vector; ``Embeddings.rows`` says which rows have one.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from polymodal.data import Collator, MultimodalDataset, load_inputs
from polymodal.data.dataset import LoadedInputs
from polymodal.data.tables import Table
from polymodal.encoders.presence import encode_present
from polymodal.errors import DataError
from polymodal.fitted import as_fitted
from polymodal.modalities.base import get_modality

__all__ = ["Embeddings", "embedding_space", "embed_column", "embed_table", "embed_loaded", "query_table",
           "progress_bar"]

log = logging.getLogger("polymodal")

_CHUNK_ROWS = 4096  # rows decoded at a time: bounded memory for large tables


@dataclass
class Embeddings:
    """Unit vectors for the rows of a table that have the input.

    Attributes:
        vectors: ``[n, E]`` float32, one per row in ``rows``.
        rows: ``[n]`` positions (0-based) in the table of the rows that have a vector.
        column: the column embedded.
        space: ``"aligned"`` (the shared space of an aligner) or ``"encoder"``.
        n_rows: rows in the table.
    """

    vectors: np.ndarray
    rows: np.ndarray
    column: str
    space: str
    n_rows: int

    def full(self) -> np.ndarray:
        """``[n_rows, E]`` with NaN rows where the table's row has no vector."""
        out = np.full((self.n_rows, self.vectors.shape[1]), np.nan, dtype=np.float32)
        out[self.rows] = self.vectors
        return out


def embedding_space(model: Any, name: str) -> str:
    """``"aligned"`` when the model's aligner projects input ``name``, else ``"encoder"``."""
    aligner = getattr(model, "aligner", None)
    return "aligned" if aligner is not None and name in aligner.names else "encoder"


@torch.no_grad()
def _vectors(model: Any, name: str, inputs: Mapping[str, torch.Tensor], present: torch.Tensor) -> torch.Tensor:
    """``[B, E]`` unit vectors of input ``name`` (zeros where ``present [B]`` is False)."""
    pooled = encode_present(model.encoders[name], inputs, present).pooled  # [B, D]
    if embedding_space(model, name) == "aligned":
        return model.aligner.project(name, pooled)  # [B, E]
    return F.normalize(pooled.float(), dim=-1)  # [B, D]


@torch.no_grad()
def embed_loaded(model: Any, preprocessors: Mapping[str, Any], loaded: LoadedInputs,
                 names: list[str], batch_size: int = 256) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Vectors of several inputs of already-loaded rows.

    Returns:
        ``vectors`` name -> ``[N, E]`` float32 (zeros where absent) and ``present`` name ->
        ``[N]`` bool, for the N loaded rows.
    """
    model.eval()
    dataset = MultimodalDataset(loaded, preprocessors)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=Collator(preprocessors))
    order = sorted(preprocessors)
    parts: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for batch in loader:
        for n in names:
            parts[n].append(_vectors(model, n, batch["inputs"][n], batch["present"][:, order.index(n)]))
    vectors = {n: torch.cat(parts[n]).numpy().astype(np.float32) if parts[n] else
               np.zeros((0, 1), dtype=np.float32) for n in names}
    present = {n: np.array([it is not None for it in loaded.items[n]], dtype=bool) for n in names}
    return vectors, present


def embed_column(fitted: Any, data: Any, column: str, *, batch_size: int = 256, progress: bool = False,
                 on_bad_input: str | None = None) -> Embeddings:
    """Vectors for ``column`` of a table (path, DataFrame or ``Table``), with a fitted model.

    Args:
        fitted: a ``FittedModel`` (or a fitted ``Predictor``).
        on_bad_input: the policy for unreadable inputs; None = the model's config.
    """
    fitted = as_fitted(fitted)
    training = fitted.config.training
    return embed_table(fitted.model, fitted.preprocessors, fitted.read_table(data, fill_absent=False), column,
                       on_bad_input=fitted.policy(on_bad_input), threads=training.load_threads,
                       data_root=fitted.data_root, training=training, batch_size=batch_size, progress=progress)


def embed_table(model: Any, preprocessors: Mapping[str, Any], table: Table, column: str, *,
                on_bad_input: str = "error", threads: int = 0, data_root: Any = None,
                training: Any = None, batch_size: int = 256, progress: bool = False) -> Embeddings:
    """Vectors for ``column`` of every row of ``table`` that has it.

    Only that column's input is decoded (the table needs no other column), a chunk of rows
    at a time; frozen pretrained encoders reuse the feature cache.

    Args:
        model: a fitted ``MultimodalModel``.
        preprocessors: its fitted preprocessors (input name -> preprocessor).
        on_bad_input: the policy for unreadable inputs (``error`` raises a ``DataError``).
        training: the ``TrainingConfig`` (for the feature cache's precision).
        progress: draw a progress bar on stderr.

    Raises:
        DataError: ``column`` is not an input of the model or not in the table; unreadable
            inputs under ``on_bad_input: error``.
    """
    from polymodal.backbones.feature_cache import prepare_backbone_inputs

    name = _input_of(preprocessors, column)
    if column not in table.frame.columns:
        raise DataError(f"{table.source}: no column {column!r} to embed; columns present: "
                        f"{', '.join(map(str, table.frame.columns))}")
    one = {name: preprocessors[name]}
    frame, n = table.frame, len(table.frame)
    vectors, rows = [], []
    with progress_bar(progress, n, f"embedding {column}") as advance:
        for start in range(0, n, _CHUNK_ROWS):
            chunk = frame.iloc[start:start + _CHUNK_ROWS]
            loaded = load_inputs(chunk, table.base_dir, one, on_bad_input, threads, str(table.source),
                                 data_root=data_root)
            prepare_backbone_inputs(model, one, loaded, training, str(table.source))
            have = np.array([it is not None for it in loaded.items[name]], dtype=bool)
            kept = LoadedInputs({name: [it for it, h in zip(loaded.items[name], have) if h]},
                                loaded.rows[have])
            if len(kept):
                got, _ = embed_loaded(model, one, kept, [name], batch_size)
                vectors.append(got[name])
                rows.append(kept.rows + start)
            advance(len(chunk))
    width = _width(model, name)
    skipped = n - sum(len(r) for r in rows)
    if skipped:
        log.info("%s: %d of %d rows have no usable %r (empty or skipped); they get no vector",
                 table.source, skipped, n, column)
    return Embeddings(
        vectors=np.concatenate(vectors) if vectors else np.zeros((0, width), dtype=np.float32),
        rows=np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, dtype=np.int64),
        column=column, space=embedding_space(model, name), n_rows=n,
    )


def _input_of(preprocessors: Mapping[str, Any], column: str) -> str:
    for name, pre in preprocessors.items():
        if get_modality(pre.modality).one_column and list(pre.columns) == [column]:
            return name
    columns = sorted(c for p in preprocessors.values() if get_modality(p.modality).one_column
                     for c in p.columns)
    raise DataError(f"column {column!r} is not a text, image or audio input of this model; it can "
                    f"embed: {', '.join(map(repr, columns)) or 'no column'}")


def _width(model: Any, name: str) -> int:
    if embedding_space(model, name) == "aligned":
        return int(model.aligner.dim)
    return int(model.encoders[name].out_dim)


@contextlib.contextmanager
def progress_bar(show: bool, total: int, what: str) -> Iterator[Any]:
    """A rich progress bar on stderr (rows done of ``total``); yields ``advance(n)``."""
    if not show:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


def query_table(column: str, value: str, base_dir: Path | None = None) -> Table:
    """A one-row table holding a query (a text, or a file path) in ``column``."""
    import pandas as pd

    return Table(pd.DataFrame({column: [value]}), Path(base_dir or Path.cwd()), "query")
