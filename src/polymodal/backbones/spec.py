"""``TowerSpec``: the plain facts about a built backbone tower that its encoder needs."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TowerSpec"]


@dataclass(frozen=True)
class TowerSpec:
    """Plain facts about a built tower that the encoder needs.

    Attributes:
        family: ``"hf"`` or a non-HF family name.
        model_type: e.g. ``"bert"``, ``"vit"``, ``"wav2vec2"``.
        out_dim: width D of its features.
        summary: it has a [CLS]-like first token or a pooled output of its own
            (``pooling: cls`` needs one).
    """

    family: str
    model_type: str
    out_dim: int
    summary: bool
