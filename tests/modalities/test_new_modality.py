"""Adding a modality is one folder: a modality defined here, in the test, is fitted, saved,
loaded and used for prediction without any change to the library.

The example (a "vector" modality: each cell a space-separated list of numbers, such as a
precomputed embedding) is the one `docs/architecture.md` walks through.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from polymodal import ConfigError, Predictor
from polymodal.encoders import EncoderOutput, register_encoder
from polymodal.encoders.base import ENCODERS
from polymodal.modalities import Modality, get_modality, register_modality
from polymodal.modalities.base import unregister_modality
from polymodal.options import parse_options
from polymodal.preprocessing import BadInput, read_state, write_state


class VectorPreprocessor:
    """Cells like ``"0.5 -1 2"``: a fixed-length float vector per row."""

    modality: ClassVar[str] = "vector"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        scale: float = Field(1.0, gt=0)

    def __init__(self, name: str, columns: list[str], **options: Any) -> None:
        self.name, self.columns = name, list(columns)
        self.options = parse_options(self.Options, options, f"vector input '{name}'")
        self.dim_: int | None = None

    def fit(self, frame: pd.DataFrame, base_dir: Path) -> "VectorPreprocessor":
        first = next(v for v in frame[self.columns[0]] if isinstance(v, str) and v.strip())
        self.dim_ = len(first.split())
        return self

    def load(self, row: Mapping[str, Any], base_dir: Path) -> np.ndarray | None:
        value = row.get(self.columns[0])
        if not isinstance(value, str) or not value.strip():
            return None
        numbers = value.split()
        if len(numbers) != self.dim_:
            raise BadInput(f"expected {self.dim_} numbers, got {len(numbers)}")
        return np.asarray([float(n) for n in numbers], dtype=np.float32) * self.options.scale

    def augment(self, item: np.ndarray, generator: torch.Generator) -> np.ndarray:
        return item

    def collate(self, items: list[np.ndarray | None]) -> dict[str, torch.Tensor]:
        values = torch.zeros((len(items), self.dim_))  # [B, F]
        for i, item in enumerate(items):
            if item is not None:
                values[i] = torch.from_numpy(item)
        return {"values": values}

    def encoder_inputs(self) -> dict[str, Any]:
        return {"dim": self.dim_}

    def save(self, directory: Path) -> None:
        write_state(directory, {"name": self.name, "columns": self.columns, "dim": self.dim_,
                                "options": self.options.model_dump()})

    @classmethod
    def load_from(cls, directory: Path) -> "VectorPreprocessor":
        state = read_state(directory)
        self = cls(state["name"], state["columns"], **state["options"])
        self.dim_ = state["dim"]
        return self


class LinearVectorEncoder(nn.Module):
    """One linear layer: ``values [B, F]`` → ``pooled [B, D]`` (a one-token sequence)."""

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        width: int = Field(8, gt=0)

    def __init__(self, *, dim: int, **options: Any) -> None:
        super().__init__()
        self.options = self.Options(**options)
        self.linear = nn.Linear(dim, self.options.width)
        self.out_dim = self.options.width

    def forward(self, batch: Mapping[str, torch.Tensor]) -> EncoderOutput:
        pooled = torch.relu(self.linear(batch["values"]))  # [B, D]
        mask = torch.ones((pooled.shape[0], 1), dtype=torch.bool, device=pooled.device)  # [B, 1]
        return EncoderOutput(tokens=pooled.unsqueeze(1), pooled=pooled, mask=mask)


@pytest.fixture
def vector_modality():
    register_encoder("vector", "linear")(LinearVectorEncoder)
    register_modality(Modality(name="vector", roles=("vector",), preprocessor=VectorPreprocessor,
                               default_encoder="linear"))
    yield get_modality("vector")
    unregister_modality("vector")
    ENCODERS.pop(("vector", "linear"), None)


def _table(n: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    vectors = rng.normal(size=(n, 4)) + label[:, None] * 2.0  # the class moves the vector
    return pd.DataFrame({"embedding": [" ".join(f"{v:.4f}" for v in row) for row in vectors],
                         "label": np.where(label == 1, "yes", "no")})


CONFIG = {"columns": {"embedding": "vector"}, "vector": {"encoder": {"width": 6}, "preprocess": {"scale": 0.5}},
          "training": {"max_epochs": 8, "batch_size": 16, "progress_bar": False, "learning_rate": 0.01}}


def test_a_modality_defined_in_a_test_fits_saves_loads_and_predicts(vector_modality, tmp_path):
    train, test = _table(seed=0), _table(seed=1)
    predictor = Predictor(label="label", config=CONFIG, verbose=False).fit(train)
    assert predictor.schema_.roles["embedding"] == "vector"
    assert isinstance(predictor.preprocessors_["embedding"], VectorPreprocessor)
    assert predictor.model_.encoders["embedding"].out_dim == 6  # the section's encoder options
    predictor.save(tmp_path / "model")

    loaded = Predictor.load(tmp_path / "model", verbose=False)
    assert loaded.config_.section("vector").encoder == {"width": 6}
    before, after = predictor.predict_proba(test), loaded.predict_proba(test)
    np.testing.assert_allclose(before.to_numpy(), after.to_numpy(), atol=1e-6)
    accuracy = float((loaded.predict(test) == test["label"]).mean())
    assert accuracy > 0.8  # the classes are two points apart: the encoder learned from the vectors


def test_a_new_modality_gets_its_options_checked(vector_modality):
    with pytest.raises(ConfigError, match=r"vector\.encoder\.widht"):
        Predictor(label="label", config={**CONFIG, "vector": {"encoder": {"widht": 3}}}, verbose=False).fit(_table())


def test_a_bad_cell_of_a_new_modality_is_reported_with_its_row(vector_modality):
    train = _table()
    train.loc[5, "embedding"] = "1 2"  # two numbers, not four
    with pytest.raises(Exception, match="expected 4 numbers, got 2"):
        Predictor(label="label", config=CONFIG, verbose=False).fit(train)
