"""Builders for columns with a ``backbone:``: their preprocessor and encoder from the config.

``polymodal.builders`` calls these for a section whose ``backbone`` is set; they turn the
config's strings into plain arguments (cache mode, precision, tuning numbers).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from polymodal.config import ModalityConfig, TrainingConfig
from polymodal.backbones.preprocessor import BackbonePreprocessor, get_backbone_preprocessor
from polymodal.encoders.pretrained import PretrainedEncoder, build_pretrained_encoder

__all__ = ["backbone_preprocessor", "load_backbone_preprocessor", "backbone_encoder", "cache_mode"]


def cache_mode(modality: str, section: ModalityConfig) -> str:
    """What the feature cache keeps for this column: ``tokens``, ``pooled`` or ``off``.

    Only frozen backbones are cached. ``auto`` keeps tokens for text (short sequences) and
    only pooled vectors for images and audio (hundreds of positions each).
    """
    tuning = section.tuning
    if tuning.mode != "frozen" or tuning.cache == "off":
        return "off"
    if tuning.cache == "auto":
        return "tokens" if modality == "text" else "pooled"
    return tuning.cache


def _runtime(modality: str, section: ModalityConfig, training: TrainingConfig) -> dict[str, Any]:
    from polymodal.training.fit import resolve_precision

    return {"cache": cache_mode(modality, section), "cache_dir": training.cache_dir,
            "precision": resolve_precision(training.precision, training.accelerator)}


def backbone_preprocessor(name: str, columns: list[str], modality: str, section: ModalityConfig,
                          training: TrainingConfig) -> BackbonePreprocessor:
    """The unfitted preprocessor of a column with ``section.backbone`` set."""
    cls = get_backbone_preprocessor(modality)
    return cls(name, columns, backbone=section.backbone, pooling=section.tuning.pooling,
               **_runtime(modality, section, training), **section.preprocess)


def load_backbone_preprocessor(directory: Path, modality: str, section: ModalityConfig,
                               training: TrainingConfig) -> BackbonePreprocessor:
    """A fitted backbone preprocessor from a model directory, with this run's cache settings."""
    pre = get_backbone_preprocessor(modality).load_from(directory)
    pre.configure(**_runtime(modality, section, training))
    return pre


def backbone_encoder(pre: BackbonePreprocessor, section: ModalityConfig) -> PretrainedEncoder:
    """The encoder of a fitted backbone preprocessor's column."""
    tuning: Mapping[str, Any] = section.tuning.model_dump()
    return build_pretrained_encoder(pre.encoder_inputs(), tuning)
