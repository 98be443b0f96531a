"""Every registered encoder and every registered fusion, exported to ONNX, predicts what PyTorch
predicts (max |difference of a probability| < 1e-4) on real files: PNG images, FSDD clips,
texts of many lengths, numbers and categories, with inputs absent from some rows.

The cases come from the registries: a newly registered fusion (or an encoder of a modality the
table has a column for) is exported and compared here as soon as it is registered.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from synthetic import TINY_FUSIONS, make_table

import polymodal.modalities  # noqa: F401  (registers every modality's encoders)
from polymodal import Predictor
from polymodal.encoders.base import ENCODERS
from polymodal.fusion import FUSIONS

pytest.importorskip("onnxruntime")
from polymodal.export import export_onnx  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

TOLERANCE = 1e-4
TRAINING = {"max_epochs": 1, "batch_size": 8, "progress_bar": False, "precision": "32"}
AUDIO = {"sample_rate": 8000, "max_seconds": 0.5, "n_mels": 16, "n_fft": 256, "hop_length": 160, "win_length": 200}
TINY_ENCODERS: dict[tuple[str, str], dict[str, Any]] = {  # small widths: each case trains in about a second
    ("text", "lstm"): {"embed_dim": 8, "hidden_size": 8},
    ("text", "gru"): {"embed_dim": 8, "hidden_size": 8},
    ("text", "transformer"): {"d_model": 8, "num_heads": 2, "ff_dim": 16},
    ("text", "hf"): {"config": {"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
                                "intermediate_size": 16}},
    ("image", "cnn"): {"channels": [4, 8]},
    ("image", "vit"): {"patch_size": 4, "hidden_size": 8, "num_layers": 1, "num_heads": 2, "intermediate_size": 16},
    ("audio", "cnn"): {"channels": [4, 8]},
    ("audio", "tdnn"): {"channels": [8, 8], "kernels": [3, 1], "dilations": [1, 1], "out_dim": 8},
    ("audio", "lstm"): {"hidden_size": 8, "num_layers": 1},
    ("audio", "gru"): {"hidden_size": 8, "num_layers": 1, "frontend": "conv", "frontend_channels": 8},
    ("tabular", "mlp"): {"hidden_size": 8},
}
FUSION_CASES = [(name, TINY_FUSIONS.get(name, {})) for name in sorted(FUSIONS)] + [
    ("attention", {**TINY_FUSIONS["attention"], "tokens": True}),
    ("cross_attention", {**TINY_FUSIONS["cross_attention"], "tokens": False}),
    ("late", {**TINY_FUSIONS["late"], "combine": "mean"}),
]
# The table's columns of each modality (tabular: all its numeric and categorical columns).
COLUMNS = {"text": ["caption"], "image": ["photo"], "audio": ["clip"], "tabular": ["size", "shop"]}
ROLES = {"caption": "text", "photo": "image", "clip": "audio", "size": "numeric", "shop": "categorical"}
BASE = {"text": {"encoder": {"name": "gru", **TINY_ENCODERS[("text", "gru")]}},
        "image": {"preprocess": {"size": 12}, "encoder": {"name": "cnn", **TINY_ENCODERS[("image", "cnn")]}},
        "tabular": {"encoder": {"name": "mlp", **TINY_ENCODERS[("tabular", "mlp")]}}}


@pytest.fixture(scope="module")
def frame(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """24 rows: a caption (1 to 14 words), a PNG, an FSDD clip (when ``$POLYMODAL_DATA`` is set),
    a number and a category; some rows lack the caption, the image or the clip."""
    folder = tmp_path_factory.mktemp("parity")
    table = make_table(folder, n=24)
    table["photo"] = [str(folder / p) for p in table.photo]
    table["caption"] = [f"{c} {'really ' * (i % 9)}".strip() for i, c in enumerate(table.caption)]
    fsdd = Path(os.environ.get("POLYMODAL_DATA", "/nonexistent")) / "fsdd"
    clips = sorted(fsdd.glob("*_jackson_*.wav"))[:24] if fsdd.is_dir() else []
    table["clip"] = [str(c) for c in clips] if len(clips) == len(table) else None
    table.loc[2::7, "caption"] = None
    table.loc[3::8, "photo"] = None
    table.loc[5::6, "clip"] = None
    return table


def _config(columns: list[str], sections: dict[str, Any], fusion: dict[str, Any], label: str = "label") -> dict:
    config = {"seed": 0, "label": label, "columns": {c: ROLES[c] for c in columns}, "fusion": fusion,
              "training": TRAINING, "audio": {"preprocess": AUDIO, "encoder": {"name": "cnn", "channels": [4, 8]}}}
    return {**config, **sections}


def worst_difference(config: dict, frame: pd.DataFrame, tmp_path: Path) -> float:
    """Train briefly, save, export, and compare the PyTorch and onnxruntime predictions on the whole
    table and on rows with short captions only (another token length than the whole table's)."""
    columns = [c for c in config["columns"]] + [config["label"]]
    table = frame[columns]
    directory = Predictor(config=config, verbose=False).fit(table).save(tmp_path / "model")
    export_onnx(Predictor.load(directory), tmp_path / "model.onnx", directory)
    torch_model = Predictor.load(directory)
    onnx_model = Predictor.load(directory, runtime="onnx", onnx=tmp_path / "model.onnx")
    assert onnx_model.fitted_.runtime is not None
    worst = 0.0
    for part in (table.drop(columns=config["label"]), table.iloc[[0, 1, 2, 9]].drop(columns=config["label"])):
        if torch_model.classes_ is None:
            want, got = torch_model.predict(part).to_numpy(float), onnx_model.predict(part).to_numpy(float)
        else:
            want, got = torch_model.predict_proba(part).to_numpy(), onnx_model.predict_proba(part).to_numpy()
        assert want.shape == got.shape and np.isfinite(got).all()
        worst = max(worst, float(np.abs(want - got).max()))
    return worst


@pytest.mark.parametrize("modality,name", sorted(ENCODERS), ids=[f"{m}-{n}" for m, n in sorted(ENCODERS)])
def test_every_encoder_predicts_through_onnx_what_it_predicts_in_torch(modality, name, frame, tmp_path):
    if modality not in COLUMNS:
        pytest.skip(f"the table has no {modality} column")
    if frame[COLUMNS[modality][0]].isna().all():
        pytest.skip("the FSDD clips need POLYMODAL_DATA")
    section = {"encoder": {"name": name, **TINY_ENCODERS.get((modality, name), {})}}
    if modality == "image":
        section["preprocess"] = {"size": 12}
    if modality == "audio":
        section["preprocess"] = AUDIO
    companion = "text" if modality == "tabular" else "tabular"  # a second input: absent rows still predict
    config = _config(COLUMNS[modality] + COLUMNS[companion], {companion: BASE[companion], modality: section},
                     {"name": "concat", "hidden": 8})
    assert worst_difference(config, frame, tmp_path) < TOLERANCE


@pytest.mark.parametrize("name,options", FUSION_CASES, ids=[n + "".join(f"-{k}={v}" for k, v in o.items()
                                                                        if k in ("tokens", "combine"))
                                                            for n, o in FUSION_CASES])
def test_every_fusion_predicts_through_onnx_what_it_predicts_in_torch(name, options, frame, tmp_path):
    config = _config(["caption", "photo", "size", "shop"], BASE, {"name": name, **options})
    assert worst_difference(config, frame, tmp_path) < TOLERANCE


def test_a_regression_model_gives_the_same_values(frame, tmp_path):
    config = _config(["caption", "photo", "shop"], BASE, {"name": "gated", "hidden": 8}, label="size")
    assert worst_difference(config, frame, tmp_path) < TOLERANCE
