"""What ONNX export refuses, by name and with the reason: models that predict nothing (alignment
only, generation) and encoders or fusions whose graph cannot be made or differs from PyTorch;
and the misuses of the runtime: a graph of another model, a changed graph, no onnxruntime."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from typing import Any, Mapping

import pytest
import torch
from pydantic import BaseModel, ConfigDict
from synthetic import FAST, make_table
from torch import nn

from polymodal import ConfigError, ModelDirError, Predictor
from polymodal.encoders import EncoderOutput, register_encoder
from polymodal.encoders.base import ENCODERS
from polymodal.errors import ExportError
from polymodal.fusion import FUSIONS, FusionOutput, register_fusion

pytest.importorskip("onnxruntime")
from polymodal.export import export_onnx, use_runtime  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

TRAINING = {**FAST["training"], "max_epochs": 1}


def _outside_torch(x: torch.Tensor) -> torch.Tensor:
    """``x + 1`` by a Python function on every value: a TorchScript trace does not see it (its graph
    returns ``x``), and torch.export cannot follow it."""
    return x.detach().clone().apply_(lambda v: v + 1.0)


class NumpyColourEncoder(nn.Module):
    """An image encoder that computes with a Python function: no exporter can follow it."""

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, *, in_channels: int, image_size: int, **options: Any) -> None:
        super().__init__()
        self.proj = nn.Linear(in_channels, 4)
        self.out_dim = 4

    def forward(self, batch: Mapping[str, torch.Tensor]) -> EncoderOutput:
        pooled = self.proj(_outside_torch(batch["pixel_values"].mean(dim=(2, 3))))  # [B, C] → [B, D]
        return EncoderOutput(tokens=pooled.unsqueeze(1), pooled=pooled,
                             mask=torch.ones((pooled.shape[0], 1), dtype=torch.bool))


class NumpySumFusion(nn.Module):
    """A fusion that shifts the summed vectors with a Python function."""

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, input_dims: Mapping[str, int]) -> None:
        super().__init__()
        self.names = sorted(input_dims)
        self.proj = nn.ModuleDict({n: nn.Linear(d, 4) for n, d in input_dims.items()})
        self.out_dim = 4

    def forward(self, outputs: Mapping[str, EncoderOutput], present: torch.Tensor) -> FusionOutput:
        parts = [self.proj[n](outputs[n].pooled) * present[:, m:m + 1] for m, n in enumerate(self.names)]
        return FusionOutput(fused=_outside_torch(torch.stack(parts).sum(0)))  # [B, D]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("refusals")
    make_table(folder, n=24).to_csv(folder / "train.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def saved(folder, tmp_path_factory):
    """A small text + image + tabular classifier's model directory."""
    config = {**FAST, "training": TRAINING}
    predictor = Predictor(label="label", config=config, verbose=False).fit(folder / "train.csv")
    return predictor.save(tmp_path_factory.mktemp("saved") / "model")


@pytest.fixture
def unexportable():
    register_encoder("image", "numpy_colour_test")(NumpyColourEncoder)
    register_fusion("numpy_sum_test")(NumpySumFusion)
    yield
    ENCODERS.pop(("image", "numpy_colour_test"), None)
    FUSIONS.pop("numpy_sum_test", None)


def _fit(folder, **config: Any) -> Predictor:
    return Predictor(label="label", config={**FAST, "training": TRAINING, **config}, verbose=False).fit(
        folder / "train.csv")


def test_an_encoder_that_does_not_export_is_refused_by_name(unexportable, folder, tmp_path):
    predictor = _fit(folder, image={"preprocess": {"size": 12}, "encoder": {"name": "numpy_colour_test"}})
    with pytest.raises(ExportError, match=r"input 'photo' \(image encoder 'numpy_colour_test'\): ") as caught:
        export_onnx(predictor, tmp_path / "model.onnx")
    assert "keep runtime='torch'" in str(caught.value)
    assert not (tmp_path / "model.onnx").exists() and not (tmp_path / "model.onnx.json").exists()


def test_a_fusion_that_does_not_export_is_refused_by_name(unexportable, folder, tmp_path):
    predictor = _fit(folder, fusion={"name": "numpy_sum_test"})
    with pytest.raises(ExportError, match=r"fusion 'numpy_sum_test' \(with its ClassificationHead\): "):
        export_onnx(predictor, tmp_path / "model.onnx")


def test_two_encoders_that_need_different_exporters_are_named(folder, tmp_path):
    """The TorchScript exporter traces nn.MultiheadAttention's sequence length as a constant; the
    torch.export one refuses the packed sequences of recurrent encoders."""
    frame = make_table(tmp_path, n=24)
    frame["note"] = [f"note {i} " + "more " * (i % 4) for i in range(len(frame))]
    frame["photo"] = [str(tmp_path / p) for p in frame.photo]
    transformer = {"name": "transformer", "d_model": 8, "num_heads": 2, "ff_dim": 16}
    config = {**FAST, "training": TRAINING, "text": {"encoder": {"name": "gru"}}, "columns": {"note": "text"},
              "column_overrides": {"note": {"encoder": transformer}}}
    predictor = Predictor(label="label", config=config, verbose=False).fit(frame)
    with pytest.raises(ExportError, match=r"input 'caption' \(text encoder 'gru'\) exports only with torchscript, "
                                          r"input 'note' \(text encoder 'transformer'\) only with torch\.export"):
        export_onnx(predictor, tmp_path / "model.onnx")


def test_models_that_predict_nothing_are_refused(folder, tmp_path):
    aligned = Predictor(config={**FAST, "problem_type": "alignment", "training": TRAINING,
                                "align": {"columns": ["caption", "photo"], "dim": 8}}, verbose=False)
    aligned.fit(folder / "train.csv")
    with pytest.raises(ExportError, match="alignment model"):
        export_onnx(aligned, tmp_path / "model.onnx")
    # a generation model is told apart by its label encoding (training one takes a while)
    classifier = _fit(folder)
    generator = dataclasses.replace(classifier.fitted_, labels={**classifier.labels_, "targets": ["photo"]})
    with pytest.raises(ExportError, match="generation model"):
        export_onnx(generator, tmp_path / "model.onnx")


def test_bad_paths_and_settings_are_clear_errors(saved, folder, tmp_path):
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match=r"an \.onnx file; got .*table\.csv"):
        export_onnx(Predictor.load(saved), tmp_path / "table.csv", saved)
    assert (tmp_path / "table.csv").read_text() == "a,b\n1,2\n"
    with pytest.raises(ModelDirError, match="inside the model directory"):
        export_onnx(Predictor.load(saved), saved / "model.onnx", saved)
    (tmp_path / "folder.onnx").mkdir()
    with pytest.raises(ModelDirError, match="existing folder"):
        export_onnx(Predictor.load(saved), tmp_path / "folder.onnx", saved)
    with pytest.raises(ConfigError, match="The 'runtime' parameter must be one of torch, onnx. Got 'tensorrt'"):
        Predictor.load(saved, runtime="tensorrt")
    with pytest.raises(ConfigError, match="only runtime='onnx' runs"):
        Predictor.load(saved, onnx=tmp_path / "model.onnx")
    with pytest.raises(ModelDirError, match="not found; export it again: polymodal export"):
        Predictor.load(saved, runtime="onnx", onnx=tmp_path / "missing.onnx")
    Predictor.load(saved).predict(folder / "train.csv")  # nothing above touched the directory


def test_a_graph_of_another_or_a_changed_model_is_refused(saved, folder, tmp_path):
    export_onnx(Predictor.load(saved), tmp_path / "model.onnx", saved)
    other = _fit(folder, seed=1).save(tmp_path / "other")
    with pytest.raises(ModelDirError, match="was not exported from the model directory"):
        Predictor.load(other, runtime="onnx", onnx=tmp_path / "model.onnx")
    description = tmp_path / "model.onnx.json"
    kept = description.read_text()
    description.write_text("{not json")
    with pytest.raises(ModelDirError, match="model.onnx.json is damaged"):
        Predictor.load(saved, runtime="onnx", onnx=tmp_path / "model.onnx")
    description.write_text(kept)
    graph = (tmp_path / "model.onnx").read_bytes()
    (tmp_path / "model.onnx").write_bytes(graph[:-1] + bytes([graph[-1] ^ 1]))
    with pytest.raises(ModelDirError, match="changed since it was exported"):
        Predictor.load(saved, runtime="onnx", onnx=tmp_path / "model.onnx")
    description.unlink()
    with pytest.raises(ModelDirError, match="has no description model.onnx.json"):
        Predictor.load(saved, runtime="onnx", onnx=tmp_path / "model.onnx")


def test_without_onnxruntime_the_error_names_the_extra(saved, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'polymodal\[onnx\]'"):
        use_runtime(Predictor.load(saved).fitted_, saved, "onnx")


def test_the_library_and_the_cli_import_no_onnx_package():
    code = ("import sys, polymodal.cli, polymodal.export, polymodal.predictor; "
            "print(sorted(m for m in ('onnx', 'onnxruntime', 'onnxscript') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().replace("'", '"')) == []
