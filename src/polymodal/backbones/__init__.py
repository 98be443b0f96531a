"""Pretrained backbones: resolve a name to a local model folder, build its module.

``resolve_backbone`` turns ``backbone:`` (alias, folder, hub id) into a ``BackboneSource``;
``load_tower`` builds the module for one modality and ``save_tower_config`` writes what a model
directory needs to rebuild it offline.
"""
from polymodal.backbones.resolve import (
    ALIASES,
    BackboneSource,
    modalities_of,
    register_alias,
    resolve_backbone,
    weights_fingerprint,
)
from polymodal.backbones.towers import (
    TowerSpec,
    load_tower,
    quiet_transformers,
    save_tower_config,
    save_tower_weights,
    text_limit,
    tower_config,
    tower_spec,
)
from polymodal.backbones import efficientnet  # noqa: E402,F401  (registers the efficientnet_lite0 family)

__all__ = [
    "ALIASES", "BackboneSource", "modalities_of", "register_alias", "resolve_backbone",
    "weights_fingerprint", "TowerSpec", "load_tower", "quiet_transformers", "save_tower_config",
    "save_tower_weights", "text_limit", "tower_config", "tower_spec",
]
