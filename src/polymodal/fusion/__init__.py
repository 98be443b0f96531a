"""Fusion modules: combine per-input encoder outputs into one vector."""
from polymodal.fusion import concat  # noqa: F401  (registers)
from polymodal.fusion.base import FUSIONS, FusionOutput, get_fusion, register_fusion

__all__ = ["FUSIONS", "FusionOutput", "get_fusion", "register_fusion"]
