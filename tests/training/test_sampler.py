"""The epoch sampler: an order fixed by (seed, epoch); with lengths, batches of similar length."""
from __future__ import annotations

import numpy as np

from polymodal.training.sampler import GROUP, EpochSampler, row_lengths


def test_grouped_batches_are_a_permutation_of_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, size=1000)
    sampler = EpochSampler(1000, seed=3, lengths=lengths, batch_size=16)
    order = list(sampler)
    assert sorted(order) == list(range(1000))
    full = np.array(order[: 1000 // 16 * 16]).reshape(-1, 16)
    spread = (lengths[full].max(axis=1) - lengths[full].min(axis=1)).mean()
    plain = np.array(list(EpochSampler(1000, seed=3))[: 1000 // 16 * 16]).reshape(-1, 16)
    assert spread < 0.25 * (lengths[plain].max(axis=1) - lengths[plain].min(axis=1)).mean()
    assert list(sampler) == order  # the same epoch: the same order
    sampler.set_epoch(1)
    assert list(sampler) != order
    starts = [b[0] for b in full[:GROUP]]
    assert not all(lengths[a] >= lengths[b] for a, b in zip(starts, starts[1:]))  # batches are shuffled


def test_row_lengths_sum_what_the_preprocessors_measure(tmp_path):
    import pandas as pd

    from polymodal.modalities.image.preprocess import ImagePreprocessor
    from polymodal.modalities.text.preprocess import TextPreprocessor

    frame = pd.DataFrame({"a": ["one two three", "", "a b c d e f g"], "b": ["x y", "z", "w"]})
    pres = {"a": TextPreprocessor("a", ["a"]).fit(frame, tmp_path), "b": TextPreprocessor("b", ["b"]).fit(frame, tmp_path),
            "img": ImagePreprocessor("img", ["img"])}
    items = {n: [pres[n].load(r, tmp_path) for r in frame.to_dict("records")] for n in ("a", "b")}
    items["img"] = [None] * 3
    lengths = row_lengths(items, pres)
    assert lengths == [pres["a"].length(items["a"][i]) + pres["b"].length(items["b"][i]) for i in range(3)]
    assert lengths[1] < min(lengths[0], lengths[2])  # an empty text and one word: the shortest row
    assert row_lengths({"img": items["img"]}, {"img": pres["img"]}) is None  # nothing measured
