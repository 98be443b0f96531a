"""The registry of backbone families that are not transformers models; a leaf that imports none.

A family (e.g. ``backbones/efficientnet.py``) registers a ``BackboneFamily`` with
``register_family``; ``towers.py`` and the image backbone preprocessor look it up by the name
saved in a model directory's marker.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from torch import nn

from polymodal.backbones.spec import TowerSpec
from polymodal.errors import ConfigError

__all__ = ["BackboneFamily", "FAMILIES", "register_family", "get_family"]


@dataclass(frozen=True)
class BackboneFamily:
    """What a non-HF family provides.

    Attributes:
        name: the family name written in a model directory's marker.
        load: ``load(folder, *, weights)`` → the tower, with its packaged weights or random ones.
        spec: ``spec(folder)`` → its ``TowerSpec``.
        save_config: ``save_config(folder, directory)`` writes what ``load`` needs to rebuild it.
        image_processor: ``image_processor(**overrides)`` → the image processor it was trained
            with (used when its folder has no processor files).
    """

    name: str
    load: Callable[..., nn.Module]
    spec: Callable[[Path], TowerSpec]
    save_config: Callable[[Path, Path], None]
    image_processor: Callable[..., Any]


FAMILIES: dict[str, BackboneFamily] = {}


def register_family(family: BackboneFamily) -> BackboneFamily:
    FAMILIES[family.name] = family
    return family


def get_family(name: str, folder: Path | None = None) -> BackboneFamily:
    """The registered family ``name``; a model saved with a family this install lacks is refused."""
    if name not in FAMILIES:
        raise ConfigError(f"unknown backbone family {name!r} in {folder}; save the model again")
    return FAMILIES[name]
