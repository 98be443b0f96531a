"""Ranking metrics of an alignment model: Recall@K, median rank and MRR, both directions.

The alignment task's scores (``tasks.alignment``); retrieval re-exports them.

For each ordered pair of aligned inputs (a → b), every row with input ``a`` is a query; the
gallery is the distinct items of input ``b`` (a picture used by ten rows is one gallery item,
so duplicates never crowd the ranking). A gallery item is a correct answer when some row
holding it is in the query's match group (the same row, or under ``align.match: label`` any
row with the same label). A query's rank is 1 + the number of wrong items scored at least as
high as its best correct one (ties count against it), so a constant model gets no credit.
"""
from __future__ import annotations

import hashlib
import itertools
from typing import Any, Mapping, Sequence

import numpy as np
import torch

__all__ = ["rank_of_first_match", "retrieval_metrics", "alignment_metrics"]

KS = (1, 5, 10)


def rank_of_first_match(scores: np.ndarray, correct: Sequence[np.ndarray]) -> np.ndarray:
    """Rank (1 = first) of each query's best correct item.

    Args:
        scores: ``[Q, G]`` similarity of each query to each gallery item.
        correct: per query, the indices of its correct gallery items (at least one each).

    Returns:
        ``[Q]`` int64 ranks.
    """
    ranks = np.empty(len(correct), dtype=np.int64)
    for i, good in enumerate(correct):
        row = scores[i]
        best = row[good].max()
        at_least = int((row >= best).sum())  # correct items at the top count once, below
        ranks[i] = 1 + at_least - int((row[good] >= best).sum())
    return ranks


def retrieval_metrics(ranks: np.ndarray, ks: Sequence[int] = KS) -> dict[str, float]:
    """``recall@k`` for each k, ``median_rank`` and ``mrr`` of ``ranks [Q]``."""
    ranks = np.asarray(ranks)
    out = {f"recall@{k}": float((ranks <= k).mean()) for k in ks}
    out["median_rank"] = float(np.median(ranks))
    out["mrr"] = float((1.0 / ranks).mean())
    return out


def alignment_metrics(vectors: Mapping[str, np.ndarray], present: Mapping[str, np.ndarray],
                      items: Mapping[str, Sequence[Any]], groups: np.ndarray,
                      ks: Sequence[int] = KS) -> dict[str, Any]:
    """Metrics for every ordered pair of inputs, keyed ``<a>_to_<b>_<metric>``.

    Args:
        vectors: input name -> ``[N, E]`` unit vectors of the N rows.
        present: input name -> ``[N]`` bool.
        items: input name -> the N decoded items (to find distinct gallery items).
        groups: ``[N]`` match group of each row.
    """
    out: dict[str, Any] = {}
    for a, b in itertools.permutations(sorted(vectors), 2):
        gallery_rows: dict[str, list[int]] = {}  # distinct item -> rows holding it
        for r in np.flatnonzero(present[b]):
            gallery_rows.setdefault(_item_key(items[b][r], r), []).append(int(r))
        first = [rows[0] for rows in gallery_rows.values()]
        by_group: dict[int, list[int]] = {}
        for j, rows in enumerate(gallery_rows.values()):
            for g in {int(groups[r]) for r in rows}:
                by_group.setdefault(g, []).append(j)
        queries = [int(r) for r in np.flatnonzero(present[a]) if int(groups[r]) in by_group]
        if not queries or not first:
            continue
        scores = vectors[a][queries] @ vectors[b][first].T  # [Q, G]
        correct = [np.asarray(by_group[int(groups[r])]) for r in queries]
        metrics = retrieval_metrics(rank_of_first_match(scores, correct), ks)
        for key, value in metrics.items():
            out[f"{a}_to_{b}_{key}"] = value
        out[f"{a}_to_{b}_queries"] = len(queries)
        out[f"{a}_to_{b}_gallery"] = len(first)
    return out


def _item_key(item: Any, row: int) -> str:
    """A key equal for equal decoded inputs (same text, same pixels); unknown kinds: the row."""
    key = getattr(item, "key", None)
    if isinstance(key, str):
        return key
    value = getattr(item, "value", item)
    digest = hashlib.sha1()
    if not _feed(digest, value):
        return f"row:{row}"
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
        return True
    if isinstance(value, (str, bytes)):
        digest.update(value.encode() if isinstance(value, str) else value)
        return True
    if isinstance(value, Mapping):
        return all(_feed(digest, str(k)) and _feed(digest, value[k]) for k in sorted(value))
    if isinstance(value, (list, tuple)):
        return all(_feed(digest, v) for v in value)
    if isinstance(value, (int, float, bool)):
        digest.update(repr(value).encode())
        return True
    return False
