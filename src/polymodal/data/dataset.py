"""Rows → decoded items → batches.

Every deterministic step (decode, resample, tokenise, log-mel) runs once per row, up front,
in a thread pool; the dataset then serves cached items, and train-time augmentation is
drawn per row and applied to each collated batch. Unreadable inputs are counted and either reported together as
one ``DataError``, or skipped with the count and reasons logged: under
``on_bad_input: skip_row`` (alias ``skip``) the row is dropped, under ``skip_modality``
only that input is marked absent for the row.
"""
from __future__ import annotations

import contextlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from polymodal.preprocessing import BadInput, Preprocessor, plain, shown
from polymodal.data.paths import PathGuard
from polymodal.data.urls import UrlReader
from polymodal.data.skips import normalise_policy, skip_log_line
from polymodal.errors import DataError, PolymodalError

__all__ = ["LoadedInputs", "load_inputs", "MultimodalDataset", "Collator", "Rows"]

log = logging.getLogger("polymodal")


@dataclass
class LoadedInputs:
    """Decoded items of a table, one list per input, aligned with ``rows``.

    Attributes:
        items: input name -> list of items (None = absent for that row).
        rows: positions (0-based) in the original table of the rows kept.
        skipped: ``(row position, input name, reason)`` for every unusable input (its row
            dropped, or under ``skip_modality`` the input marked absent).
        index: the table's index label of each kept row (None: use ``rows``).
        unknown_label: rows left out before decoding because their label is missing or one
            the model was not trained on (``FittedModel.load_inputs(unknown="drop")``).
    """

    items: dict[str, list[Any]]
    rows: np.ndarray
    skipped: list[tuple[int, str, str]] = field(default_factory=list)
    index: pd.Index | None = None
    unknown_label: int = 0

    def row_label(self, i: int) -> Any:
        """The index label (plain Python) of kept row ``i``, for messages."""
        return plain(self.rows[i] if self.index is None else self.index[i])

    def __len__(self) -> int:
        return len(self.rows)


# Rows decoded per thread task: one task per row made the threads hand the GIL back and forth
# more than they decoded (32 rows of av-digits: 33 ms in 2 threads, 13 ms in one).
_ROWS_PER_TASK = 64


def _threads(requested: int) -> int:
    return requested if requested > 0 else max(1, min(8, os.cpu_count() or 1))


def load_inputs(
    frame: pd.DataFrame,
    base_dir: Path,
    preprocessors: Mapping[str, Preprocessor],
    on_bad_input: str = "error",
    threads: int = 0,
    what: str = "table",
    data_root: str | Path | None = None,
    allow_urls: bool = False,
) -> LoadedInputs:
    """Decode every input of every row of ``frame``.

    Args:
        on_bad_input: ``error``, ``skip_row`` (or ``skip``) or ``skip_modality``.
        data_root: when set, file paths must stay inside it (see ``data.paths``).
        allow_urls: read image and audio cells that are URLs (see ``data.urls``); when False
            such a cell is a bad input whose reason says how to allow them.

    Raises:
        DataError: when some inputs cannot be read and ``on_bad_input`` is ``"error"``;
            the message gives the count per column and the first few files with reasons.
    """
    records = frame.to_dict(orient="records")
    items: dict[str, list[Any]] = {}
    bad: dict[str, list[tuple[int, str]]] = {}
    policy = normalise_policy(on_bad_input)
    guard = PathGuard(base_dir, data_root) if data_root is not None else None
    urls = UrlReader(allow_urls)

    def one(pre: Preprocessor, i: int) -> Any:
        try:
            row = urls.resolve(pre, records[i])  # a URL is no path: read (or refused) before the guard
            row = row if guard is None else guard.confine(pre, row)
            return pre.load(row, base_dir)
        except BadInput as exc:
            return exc
        except PolymodalError:
            raise
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not take the whole table down
            log.debug("unexpected error reading row %d of %s", i, what, exc_info=True)
            return BadInput(f"unexpected {type(exc).__name__} while reading: {exc}")

    n_threads = min(_threads(threads), -(-len(records) // _ROWS_PER_TASK))
    with ThreadPoolExecutor(n_threads) if n_threads > 1 else contextlib.nullcontext() as pool:
        for name in sorted(preprocessors):
            pre = preprocessors[name]

            def chunk(start: int) -> list[Any]:
                return [one(pre, i) for i in range(start, min(start + _ROWS_PER_TASK, len(records)))]

            starts = range(0, len(records), _ROWS_PER_TASK)
            loaded = [x for part in (pool.map(chunk, starts) if pool is not None else map(chunk, starts)) for x in part]
            bad[name] = [(i, str(x)) for i, x in enumerate(loaded) if isinstance(x, BadInput)]
            items[name] = [None if isinstance(x, BadInput) else x for x in loaded]

    problems = {n: b for n, b in bad.items() if b}
    if problems and policy == "error":
        parts = []
        for name, entries in problems.items():
            columns = preprocessors[name].columns
            first = "; ".join(
                f"{_cell(frame.index[i], records[i], columns)}: {reason}" for i, reason in entries[:3]
            )
            where = (f"column '{columns[0]}'" if len(columns) == 1
                     else f"input '{name}' (columns {', '.join(columns)})")
            parts.append(
                f"{where}: {len(entries):,} of {len(records):,} values could not be read (first: {first})"
            )
        raise DataError(
            f"{what}: " + "; ".join(parts) + ". Fix or drop them, or set on_bad_input: skip_row "
            "(drop those rows) or skip_modality (treat those inputs as missing) in the config."
        )
    dropped = [] if policy == "skip_modality" else sorted({i for b in problems.values() for i, _ in b})
    skipped = [(i, n, r) for n, entries in problems.items() for i, r in entries]
    keep = np.setdiff1d(np.arange(len(records)), np.asarray(dropped, dtype=int))
    if skipped:
        labelled = [(plain(frame.index[i]), n, r) for i, n, r in skipped]  # rows as the table names them
        log.warning(skip_log_line(what, labelled, len(records), len(keep), policy))
    if dropped:
        items = {n: [v[i] for i in keep] for n, v in items.items()}
    return LoadedInputs(items=items, rows=keep, skipped=skipped, index=frame.index[keep])


def _cell(label: Any, record: Mapping[str, Any], columns: Sequence[str]) -> str:
    """``row <index label>``, and the cell's value when the input reads one column (an input
    of several columns names the column and value in its reason)."""
    row = f"row {plain(label)}"
    if len(columns) > 1:
        return row
    value = record.get(columns[0])
    text = value if isinstance(value, str) else shown(value)
    return f"{row}: {text if len(text) <= 80 else text[:77] + '...'}"


class Rows(list):
    """A batch's ``(items, target)`` rows with their augmentation still to apply.

    ``generators``: input name -> one ``torch.Generator`` per row (None: not augmented, e.g.
    absent); the ``Collator`` augments the collated batch with them.
    """

    generators: dict[str, list[torch.Generator | None]]


class MultimodalDataset(torch.utils.data.Dataset):
    """Serves ``(items, target)`` per row, augmenting on the fly when ``augment`` is set.

    Augmentation randomness is seeded per (seed, epoch, row, input), so a run is repeatable
    whatever the number of loader workers. A loader fetches whole batches (``__getitems__``):
    their augmentation is left to the ``Collator``, which applies it to the collated tensors
    in one call per input (``augment_batch``) where the preprocessor has one.
    """

    def __init__(self, loaded: LoadedInputs, preprocessors: Mapping[str, Preprocessor],
                 targets: torch.Tensor | None = None, augment: bool | Collection[str] = False, seed: int = 0):
        self.loaded = loaded
        self.preprocessors = preprocessors
        self.names = sorted(preprocessors)
        self.targets = targets
        # True: every input; a collection: only those inputs (generation keeps its targets as they are)
        self.augmented = set(self.names) if augment is True else set(augment or ())
        self.augment = bool(self.augmented)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.loaded)

    def _generator(self, index: int, name: str) -> torch.Generator:
        row = (self.seed * 1_000_003 + self.epoch) * 10_000_019 + index
        return torch.Generator().manual_seed(row * 64 + self.names.index(name))

    def _row(self, index: int) -> tuple[dict[str, Any], Any]:
        items = {n: self.loaded.items[n][index] for n in self.names}
        return items, None if self.targets is None else self.targets[index]

    def __getitem__(self, index: int) -> tuple[dict[str, Any], Any]:
        items, target = self._row(index)
        if self.augment:
            items = {n: (v if v is None or n not in self.augmented
                         else self.preprocessors[n].augment(v, self._generator(index, n)))
                     for n, v in items.items()}
        return items, target

    def __getitems__(self, indices: list[int]) -> list[tuple[dict[str, Any], Any]]:
        rows = Rows(self._row(i) for i in indices)
        rows.generators = {n: [None if row[0][n] is None else self._generator(i, n) for i, row in zip(indices, rows)]
                           for n in sorted(self.augmented)} if self.augment else {}
        return rows


class Collator:
    """Turns a list of ``(items, target)`` into a batch.

    Batch: ``inputs`` {name: batch tensors}, ``present`` Bool[B, M] (inputs in sorted name
    order), ``target`` [B] or None.
    """

    def __init__(self, preprocessors: Mapping[str, Preprocessor]):
        self.preprocessors = preprocessors
        self.names = sorted(preprocessors)

    def __call__(self, rows: list[tuple[dict[str, Any], Any]]) -> dict[str, Any]:
        generators = getattr(rows, "generators", {})  # Rows: augmentation still to apply
        present = torch.tensor([[r[0][n] is not None for n in self.names] for r in rows],
                               dtype=torch.bool)  # [B, M]
        inputs = {n: self._collate(n, [r[0][n] for r in rows], generators.get(n)) for n in self.names}
        targets = [r[1] for r in rows]
        target = None if targets[0] is None else torch.stack([torch.as_tensor(t) for t in targets])
        return {"inputs": inputs, "present": present, "target": target}

    def _collate(self, name: str, items: list[Any], generators: list[torch.Generator | None] | None) -> Any:
        pre = self.preprocessors[name]
        if generators is None:
            return pre.collate(items)
        if hasattr(pre, "augment_batch"):
            return pre.augment_batch(pre.collate(items), generators)
        return pre.collate([it if g is None else pre.augment(it, g) for it, g in zip(items, generators)])
