"""Fusion modules: combine per-input encoder outputs into one vector.

``concat`` (early), ``weighted``, ``gated`` (GMU), ``attention``, ``cross_attention``,
``tensor`` (TFN), ``low_rank`` (LMF) and ``late`` (a head per input); choose one with
``fusion: {name: ...}`` in the config.
"""
from polymodal.fusion import (  # noqa: F401  (registers)
    attention,
    concat,
    cross_attention,
    gated,
    late,
    low_rank,
    tensor,
    weighted,
)
from polymodal.fusion.base import (
    FUSIONS,
    FusionOutput,
    check_fusion_inputs,
    fusion_option_problems,
    get_fusion,
    register_fusion,
)

__all__ = [
    "FUSIONS", "FusionOutput", "get_fusion", "register_fusion", "check_fusion_inputs", "fusion_option_problems",
]
