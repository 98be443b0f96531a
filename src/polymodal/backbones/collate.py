"""Collate backbone items: stored features into ``cached_*`` tensors, and zero-padded stacks."""
from __future__ import annotations

import torch

from polymodal.backbones.feature_store import BackboneItem

__all__ = ["collate_features", "padded_stack"]


def collate_features(items: list[BackboneItem | None], with_tokens: bool) -> dict[str, torch.Tensor]:
    """Stored features → ``cached_pooled [B, D]``, ``cached_mask [B, T]`` (+ ``cached_tokens [B, T, D]``).

    Without tokens T = 1 and the mask says which rows are present.
    """
    rows = [i for i, item in enumerate(items) if item is not None]
    features = [items[i].features for i in rows]
    batch, width = len(items), features[0].pooled.shape[-1]
    pooled = torch.zeros((batch, width))  # [B, D]
    pooled[rows] = torch.stack([f.pooled for f in features]).float()  # [P, D] into the present rows
    if not with_tokens:
        mask = torch.zeros((batch, 1), dtype=torch.bool)  # [B, 1]
        mask[rows] = True
        return {"cached_pooled": pooled, "cached_mask": mask}
    sequences = [f.tokens for f in features]
    lengths = torch.tensor([s.shape[0] for s in sequences])  # [P]
    padded = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True).float()  # [P, T, D]
    width_t = max(1, padded.shape[1])
    tokens = torch.zeros((batch, width_t, width))  # [B, T, D]
    tokens[rows, : padded.shape[1]] = padded
    mask = torch.zeros((batch, width_t), dtype=torch.bool)  # [B, T]
    mask[rows] = torch.arange(width_t)[None, :] < lengths[:, None]
    return {"cached_pooled": pooled, "cached_mask": mask, "cached_tokens": tokens}


def padded_stack(values: list[torch.Tensor | None], empty_shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack tensors zero-padded to the largest size in every dim; ``(batch, lengths [B])``.

    ``lengths`` is each item's size along dim 0 (0 for absent items).
    """
    shapes = [tuple(v.shape) for v in values if v is not None] or [empty_shape]
    full = tuple(max(s[d] for s in shapes) for d in range(len(shapes[0])))
    out = torch.zeros((len(values), *full))  # [B, *full]
    lengths = torch.zeros(len(values), dtype=torch.long)  # [B]
    for i, value in enumerate(values):
        if value is not None:
            out[(i, *[slice(0, n) for n in value.shape])] = value.float()
            lengths[i] = value.shape[0]
    return out, lengths
