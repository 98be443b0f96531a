"""Recall@K, median rank and MRR, and the distinct-gallery rule of alignment metrics."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from polymodal.tasks.ranking import alignment_metrics, rank_of_first_match, retrieval_metrics


def test_rank_counts_wrong_items_at_or_above_the_best_correct_one():
    scores = np.array([[0.9, 0.5, 0.1],    # correct item 0 is first
                       [0.9, 0.5, 0.1],    # correct item 2 is third
                       [0.5, 0.5, 0.5]])   # a tie counts against the query
    ranks = rank_of_first_match(scores, [np.array([0]), np.array([2]), np.array([1])])
    assert ranks.tolist() == [1, 3, 3]
    assert rank_of_first_match(scores[:2], [np.array([1, 2])] * 2).tolist() == [2, 2]


def test_retrieval_metrics_values():
    got = retrieval_metrics(np.array([1, 2, 6, 20]))
    assert got == pytest.approx({"recall@1": 0.25, "recall@5": 0.5, "recall@10": 0.75,
                                 "median_rank": 4.0, "mrr": (1 + 1 / 2 + 1 / 6 + 1 / 20) / 4})


def test_alignment_metrics_both_directions_with_a_distinct_gallery():
    e = np.eye(3, dtype=np.float32)
    # Rows 0 and 1 show the same picture; captions differ. Row 2 has no caption.
    vectors = {"caption": e[[0, 0, 2]], "photo": e[[0, 0, 1]]}
    present = {"caption": np.array([True, True, False]), "photo": np.array([True, True, True])}
    items = {"caption": ["a", "b", None], "photo": [torch.zeros(2), torch.zeros(2), torch.ones(2)]}
    out = alignment_metrics(vectors, present, items, groups=np.arange(3))
    assert out["caption_to_photo_gallery"] == 2  # the shared picture counts once
    assert out["caption_to_photo_queries"] == 2
    assert out["caption_to_photo_recall@1"] == 1.0
    # photo -> caption: row 2's photo has no caption to find, so it is no query
    assert out["photo_to_caption_queries"] == 2 and out["photo_to_caption_gallery"] == 2
    assert out["photo_to_caption_recall@1"] == 0.0  # the two captions embed alike: ties count against
    assert out["photo_to_caption_median_rank"] == 2.0


def test_label_groups_count_any_image_of_the_class():
    e = np.eye(2, dtype=np.float32)
    vectors = {"audio": e[[0, 0, 1]], "image": e[[0, 0, 1]]}  # two different images of class 0 embed alike
    present = {n: np.ones(3, dtype=bool) for n in vectors}
    items = {"audio": ["x", "y", "z"], "image": ["p", "q", "r"]}
    by_row = alignment_metrics(vectors, present, items, groups=np.arange(3))
    by_class = alignment_metrics(vectors, present, items, groups=np.array([0, 0, 1]))
    assert by_row["audio_to_image_recall@1"] == pytest.approx(1 / 3)  # only its own row's image counts
    assert by_class["audio_to_image_recall@1"] == 1.0
