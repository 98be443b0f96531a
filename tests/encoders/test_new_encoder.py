"""Adding an encoder is one file and one registry line: an image encoder defined here, in the
test, is chosen by name in the config, trained, saved and loaded without changing the library."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pytest
import torch
from pydantic import BaseModel, ConfigDict, Field
from synthetic import FAST
from torch import nn

from polymodal import ConfigError, Predictor
from polymodal.encoders import EncoderOutput, register_encoder
from polymodal.encoders.base import ENCODERS


class MeanColourEncoder(nn.Module):
    """The mean of each channel, projected: ``pixel_values [B, C, H, W]`` → ``pooled [B, D]``."""

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        width: int = Field(8, ge=1)

    def __init__(self, *, in_channels: int, image_size: int, **options: Any) -> None:
        super().__init__()
        self.options = self.Options(**options)
        self.proj = nn.Linear(in_channels, self.options.width)
        self.out_dim = self.options.width

    def forward(self, batch: Mapping[str, torch.Tensor]) -> EncoderOutput:
        pooled = self.proj(batch["pixel_values"].mean(dim=(2, 3)))  # [B, C] → [B, D]
        mask = torch.ones((pooled.shape[0], 1), dtype=torch.bool, device=pooled.device)  # [B, 1]
        return EncoderOutput(tokens=pooled.unsqueeze(1), pooled=pooled, mask=mask)


@pytest.fixture
def mean_colour():
    register_encoder("image", "mean_colour_test")(MeanColourEncoder)
    yield
    ENCODERS.pop(("image", "mean_colour_test"), None)


def test_an_encoder_defined_in_a_test_trains_saves_and_loads(mean_colour, table, tmp_path):
    folder, _ = table
    config = {**FAST, "image": {"preprocess": {"size": 12}, "encoder": {"name": "mean_colour_test", "width": 5}}}
    predictor = Predictor(label="label", config=config, verbose=False).fit(folder / "train.csv")
    assert isinstance(predictor.model_.encoders["photo"], MeanColourEncoder)
    assert predictor.model_.encoders["photo"].out_dim == 5
    predictor.save(tmp_path / "model")
    loaded = Predictor.load(tmp_path / "model", verbose=False)
    np.testing.assert_allclose(predictor.predict_proba(folder / "train.csv").to_numpy(),
                               loaded.predict_proba(folder / "train.csv").to_numpy(), atol=1e-6)


def test_a_new_encoder_gets_its_options_checked(mean_colour):
    from polymodal.config import load_config

    with pytest.raises(ConfigError, match=r"image\.encoder\.widht"):
        load_config({"image": {"encoder": {"name": "mean_colour_test", "widht": 3}}})
