"""Adding a fusion is one file and one registry line: a fusion defined here, in the test, is
chosen by name in the config, trained, saved and loaded without any change to the library."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pytest
import torch
from pydantic import BaseModel, ConfigDict, Field
from synthetic import FAST
from torch import nn

from polymodal import ConfigError, Predictor
from polymodal.encoders import EncoderOutput
from polymodal.fusion import FUSIONS, FusionOutput, register_fusion


class MaxFusion(nn.Module):
    """Project every input to one width and take the element-wise max over present inputs."""

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        width: int = Field(16, ge=1)

    def __init__(self, input_dims: Mapping[str, int], width: int = 16):
        super().__init__()
        self.names = sorted(input_dims)
        self.proj = nn.ModuleDict({n: nn.Linear(input_dims[n], width) for n in self.names})
        self.out_dim = width

    def forward(self, outputs: Mapping[str, EncoderOutput], present: torch.Tensor) -> FusionOutput:
        parts = torch.stack([self.proj[n](outputs[n].pooled) for n in self.names], dim=1)  # [B, M, D]
        parts = parts.masked_fill(~present.unsqueeze(-1), torch.finfo(parts.dtype).min)
        fused = parts.amax(dim=1)  # [B, D]
        return FusionOutput(fused=torch.where(present.any(1, keepdim=True), fused, torch.zeros_like(fused)))


@pytest.fixture
def max_fusion():
    register_fusion("max_test")(MaxFusion)
    yield
    FUSIONS.pop("max_test", None)


def test_a_fusion_defined_in_a_test_trains_saves_and_loads(max_fusion, table, tmp_path):
    folder, frame = table
    config = {**FAST, "fusion": {"name": "max_test", "width": 12}}
    predictor = Predictor(label="label", config=config, verbose=False).fit(folder / "train.csv")
    assert isinstance(predictor.model_.fusion, MaxFusion) and predictor.model_.fusion.out_dim == 12
    predictor.save(tmp_path / "model")
    loaded = Predictor.load(tmp_path / "model", verbose=False)
    np.testing.assert_allclose(predictor.predict_proba(folder / "train.csv").to_numpy(),
                               loaded.predict_proba(folder / "train.csv").to_numpy(), atol=1e-6)


def test_a_new_fusion_gets_its_options_checked(max_fusion, table):
    folder, _ = table
    with pytest.raises(ConfigError, match="widht"):
        Predictor(label="label", config={**FAST, "fusion": {"name": "max_test", "widht": 3}},
                  verbose=False).fit(folder / "train.csv")
