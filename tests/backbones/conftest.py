"""Fixtures for the pretrained-backbone tests: tiny model folders, built once per session."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from tiny_models import build


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Callable[[str], Path]:
    """``tiny_backbone("vit")`` → a folder holding a tiny random ViT and its processor."""
    built: dict[str, Path] = {}

    def make(kind: str) -> Path:
        if kind not in built:
            from polymodal.backbones import quiet_transformers

            folder = tmp_path_factory.mktemp(f"tiny-{kind}")
            with quiet_transformers():
                build(kind, folder)
            built[kind] = folder
        return built[kind]

    return make
