"""Recommendation from an index alone: "more like this" for one item, and a user profile.

Both read the stored item vectors back from the index, so they need no model: a profile is
the mean of the liked items' unit vectors, scaled to unit length (the direction those items
share), and the items nearest to it that the user has not liked or seen are recommended.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from polymodal.errors import DataError
from polymodal.retrieval.index import VectorIndex
from polymodal.retrieval.search import results_frame

__all__ = ["more_like_this", "recommend"]


def more_like_this(index: VectorIndex, item_id: Any, k: int = 10) -> pd.DataFrame:
    """The ``k`` items most similar to ``item_id`` (itself left out).

    Returns:
        ``rank, id, score`` rows, best first.

    Raises:
        DataError: unknown id, or ``k`` not below the collection size.
    """
    return recommend(index, [item_id], k=k)


def recommend(index: VectorIndex, liked: Sequence[Any], seen: Iterable[Any] = (), k: int = 10) -> pd.DataFrame:
    """Items for a user who liked ``liked``, leaving out everything liked or ``seen``.

    Args:
        liked: ids of the items the user liked (at least one; all must be in the index).
        seen: ids already shown to the user; ids not in the index are ignored.
        k: how many items to return.

    Returns:
        ``rank, id, score`` rows (cosine similarity to the profile), best first; fewer than
        ``k`` only when the collection has fewer unseen items.

    Raises:
        DataError: no liked item, a liked id not in the index, a bad ``k``, or nothing left
            to recommend.
    """
    liked = list(liked)
    if not liked:
        raise DataError("recommend needs at least one liked item id")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise DataError(f"k must be a positive whole number, got {k!r}")
    if k > len(index):
        raise DataError(f"k={k} is larger than the collection ({len(index):,} items); pass k <= {len(index):,}")
    exclude = {str(i) for i in liked} | {str(i) for i in seen}
    exclude_stored = sum(str(i) in exclude for i in index.ids)
    available = len(index) - exclude_stored
    if available <= 0:
        raise DataError(f"nothing to recommend: all {len(index):,} items of the index are liked or seen")
    profile = np.stack([index.vector(i) for i in liked]).mean(axis=0)  # [D]
    norm = float(np.linalg.norm(profile))
    if norm < 1e-6:  # liked items pointing in opposite directions cancel out
        raise DataError("the liked items have no common direction (their vectors cancel out); "
                        "recommend from fewer or more similar items")
    # Ask for enough neighbours that k remain after dropping the excluded ones.
    want = min(len(index), k + exclude_stored)
    scores, positions = index.search((profile / norm)[None, :], want)
    return results_frame(index, scores[0], positions[0], exclude=exclude, k=k)
