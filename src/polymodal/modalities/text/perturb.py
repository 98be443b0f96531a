"""Text noise for the robustness report: token dropout, each non-special token replaced with
probability p by the tokenizer's unknown token (a backbone's: its unknown, else its mask token).

The plain preprocessor's own train-time token dropout is used, at the report's level. Noisy
backbone items carry no store key, so their features are computed, never cached; a frozen
cached column's texts are tokenised again first (its loaded items hold only features).
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np
import torch

from polymodal.backbones.feature_store import BackboneItem
from polymodal.modalities.base import Noise, noise_generator
from polymodal.modalities.text.backbone import BackboneTextPreprocessor

__all__ = ["NOISE"]


def _applies(pre: Any) -> str | None:
    if isinstance(pre, BackboneTextPreprocessor) and pre.dropout_ids()[0] is None:
        return f"backbone {pre.backbone!r}: its tokenizer has no unknown or mask token to drop tokens to"
    return None


def _perturb(pre: Any, items: list, level: float, seed: int, reload: Callable[[Any], list]) -> list:
    if isinstance(pre, BackboneTextPreprocessor):
        return _noisy_backbone_items(pre, items, level, seed, reload)
    noisy = copy.copy(pre)  # the preprocessor's own train-time token dropout, at this level
    noisy.options = pre.options.model_copy(update={"token_dropout": level})
    return [None if item is None else noisy.augment(item, noise_generator(seed, i, level))
            for i, item in enumerate(items)]


def _noisy_backbone_items(pre: BackboneTextPreprocessor, items: list, level: float, seed: int,
                          reload: Callable[[Any], list]) -> list:
    if any(item is not None and item.value is None for item in items):
        items = reload(pre.without_store())  # cached features only: tokenise the texts again
    unk, specials = pre.dropout_ids()
    special = torch.tensor(specials, dtype=torch.long)
    out = []
    for i, item in enumerate(items):
        if item is None:
            out.append(None)
            continue
        ids = torch.from_numpy(np.asarray(item.value, dtype=np.int64))  # [T]
        drop = torch.rand(ids.shape, generator=noise_generator(seed, i, level)) < level
        drop &= ~torch.isin(ids, special)
        value = ids.masked_fill(drop, unk).numpy().astype(np.int32)
        out.append(BackboneItem(value=value, truncated=item.truncated))
    return out


NOISE = Noise(meaning="token dropout probability", levels=(0.1, 0.25, 0.5, 0.75), perturb=_perturb,
              applies=_applies)
