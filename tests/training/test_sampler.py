"""The epoch sampler: an order fixed by (seed, epoch); with lengths, batches of similar length."""
from __future__ import annotations

import numpy as np

from polymodal.training.sampler import GROUP, EpochSampler, text_lengths


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


def test_text_lengths_count_tokens_of_text_inputs_only():
    class Pre:
        def __init__(self, modality):
            self.modality = modality

    class Item:
        def __init__(self, value):
            self.value = value

    items = {"a": [np.arange(3), None, np.arange(5)], "b": [Item([1, 2]), Item(None), Item([1])],
             "img": [np.zeros((1, 4, 4))] * 3}
    pres = {"a": Pre("text"), "b": Pre("text"), "img": Pre("image")}
    assert text_lengths(items, pres) == [5, 0, 6]
    assert text_lengths({"img": items["img"]}, {"img": pres["img"]}) is None
