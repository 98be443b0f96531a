"""Training rows streamed from a table file a chunk at a time: a fit whose memory does not
grow with the table.

The table (a ``data.chunks.ChunkedTable``) is cut into spans of ``SPAN_ROWS`` consecutive rows.
Each epoch visits the spans in an order drawn from (seed, epoch); the processes of a DDP run
and the workers of a loader each take every k-th span of that order. A span is read a chunk
at a time; each chunk is decoded (``FittedModel.load_inputs``), its rows of the split kept and
shuffled, and batches are cut from them (rows left over carry into the next chunk). Every
process and worker yields the same number of batches (``steps``), cycling over its spans when
they hold fewer rows, so the processes of a DDP run step together. Memory holds a few chunks.

``RowSplit`` assigns each row to training or tuning from its position alone, so every pass,
process and worker agrees without keeping a list of rows.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from polymodal.data.dataset import MultimodalDataset, Rows
from polymodal.data.tables import Table

__all__ = ["RowSplit", "StreamedBatches", "SPAN_ROWS"]

SPAN_ROWS = 65_536  # rows read in order; spans are shuffled per epoch
_BLOCK = 65_536  # rows per random block of RowSplit


class RowSplit:
    """A seeded split of row positions: a row is in the tuning split with probability ``fraction``.

    The draw for row ``r`` comes from block ``r // 65536``'s generator, seeded by (seed, block),
    so any range of rows is split the same way without reading the others.
    """

    def __init__(self, seed: int, fraction: float) -> None:
        self.seed, self.fraction = seed, fraction

    def tuning(self, positions: np.ndarray) -> np.ndarray:
        """Bool mask: which of ``positions`` (row numbers of the whole table) are tuning rows."""
        positions = np.asarray(positions, dtype=np.int64)
        mask = np.zeros(len(positions), dtype=bool)
        for block in np.unique(positions // _BLOCK):
            draws = np.random.default_rng([self.seed, int(block)]).random(_BLOCK)
            at = (positions // _BLOCK) == block
            mask[at] = draws[positions[at] % _BLOCK] < self.fraction
        return mask


class StreamedBatches(torch.utils.data.IterableDataset):
    """Batches (``Rows``, collated by the ``Collator``) of one split of a chunked table.

    Args:
        chunked: the ``ChunkedTable``.
        load: ``load(table) -> (LoadedInputs, targets)``: decodes a chunk (``Table``), with the
            model's bad-input policy; called in the loader's worker when there are workers.
        keep: ``keep(positions) -> mask``: the rows of this split among a chunk's positions.
        rows: rows in this split (counted by the first pass): sets ``steps``.
        batch_size, shuffle, augment, seed: as for the in-memory dataset.
        world: processes of the run (DDP); each yields ``steps`` batches.
    """

    def __init__(self, chunked: Any, load: Callable, keep: Callable[[np.ndarray], np.ndarray], rows: int,
                 preprocessors: Any, batch_size: int, shuffle: bool, seed: int, augment: Sequence[str] | bool = False,
                 world: int = 1, chunk_rows: int = 4096) -> None:
        self.chunked, self.load, self.keep = chunked, load, keep
        self.preprocessors, self.batch_size, self.shuffle, self.seed = preprocessors, batch_size, shuffle, seed
        self.augment, self.chunk_rows, self.epoch = augment, chunk_rows, 0
        self.rows = rows
        per_process = rows / (batch_size * world)
        # training drops the last partial batch (as the in-memory loader does); tuning keeps it
        self.steps = max(1, math.floor(per_process) if shuffle else math.ceil(per_process))
        self.spans = [(s, min(s + SPAN_ROWS, chunked.n_rows)) for s in range(0, chunked.n_rows, SPAN_ROWS)]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps

    def _mine(self) -> tuple[list[tuple[int, int]], int]:
        """This process's and worker's spans, in this epoch's order, and its number of batches."""
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        order = list(range(len(self.spans)))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.spans)).tolist()
        slot, slots = rank * workers + worker, world * workers
        mine = [self.spans[i] for i in order[slot::slots]] or [self.spans[order[slot % len(order)]]]
        steps = self.steps // workers + (1 if worker < self.steps % workers else 0)
        return mine, steps

    def __iter__(self) -> Iterator[Rows]:
        spans, steps = self._mine()
        pending: list = []  # (items, target, generators) rows not yet batched
        made, rounds = 0, 0
        while made < steps:
            got_any = False
            for start, stop in spans:
                for number, rows in enumerate(self._rows(start, stop, rounds)):
                    got_any = got_any or bool(rows)
                    pending.extend(rows)
                    while len(pending) >= self.batch_size and made < steps:
                        yield self._batch(pending[:self.batch_size])
                        del pending[:self.batch_size]
                        made += 1
                    if made >= steps:
                        return
            rounds += 1
            if not got_any:
                raise RuntimeError("the streamed table has no usable rows in this split")
            if not self.shuffle and pending:  # tuning: the last, partial batch
                yield self._batch(pending)
                return

    def _rows(self, start: int, stop: int, rounds: int) -> Iterator[list]:
        """Per chunk of ``[start, stop)``: its rows of this split, decoded, shuffled (training)."""
        for table in self.chunked.chunks(start, stop, self.chunk_rows):
            positions = np.asarray(table.frame.index, dtype=np.int64)
            mask = self.keep(positions)
            if not mask.any():
                yield []
                continue
            part = Table(table.frame[mask], table.base_dir, table.source)
            loaded, targets = self.load(part)
            # Augmentation draws per (seed, epoch, row): a seed per chunk (small enough for the
            # dataset's per-row arithmetic) keeps the chunks' rows apart.
            chunk_seed = int(np.random.default_rng([self.seed, int(positions[0]), rounds]).integers(0, 10_000))
            data = MultimodalDataset(loaded, self.preprocessors, targets, augment=self.augment, seed=chunk_seed)
            data.set_epoch(self.epoch)
            picks = list(range(len(data)))
            if self.shuffle:
                picks = np.random.default_rng([self.seed, self.epoch, int(positions[0]), rounds]) \
                    .permutation(len(data)).tolist()
            rows = data.__getitems__(picks) if picks else Rows()
            generators = getattr(rows, "generators", {})
            yield [(items, target, {n: g[j] for n, g in generators.items()})
                   for j, (items, target) in enumerate(rows)]

    @staticmethod
    def _batch(rows: list) -> Rows:
        batch = Rows((items, target) for items, target, _ in rows)
        names = rows[0][2].keys() if rows else ()
        batch.generators = {n: [gens[n] for _, _, gens in rows] for n in names}
        return batch
