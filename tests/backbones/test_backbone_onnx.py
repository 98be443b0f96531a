"""Every pretrained backbone family, frozen with its features cached (or fine-tuned), exports to
ONNX whole: the graph reads the backbone's own inputs, so ``Predictor.load(dir, runtime="onnx")``
predicts a raw table as PyTorch does (max |difference of a probability| < 1e-4), without the
feature store."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from tiny_models import FAMILIES, sentences, write_clips, write_images
from tiny_models import tiny_backbone  # noqa: F401  (a fixture)

from polymodal import Predictor

pytest.importorskip("onnxruntime")

FAST = {"max_epochs": 1, "batch_size": 8, "progress_bar": False, "precision": "32", "learning_rate": 3e-3}
CASES = [pytest.param(m, k, "frozen", id=f"{m}-{k}") for m, kinds in FAMILIES.items() for k in kinds]
CASES.append(pytest.param("text", "bert", "last_n", id="text-bert-tuned"))


@pytest.mark.parametrize("modality,kind,mode", CASES)
def test_a_backbone_model_predicts_through_onnx_what_it_predicts_in_torch(modality, kind, mode, tiny_backbone,
                                                                         tmp_path):
    n = 12
    values = {"text": lambda: sentences(n), "image": lambda: [str(tmp_path / p) for p in write_images(tmp_path, n)],
              "audio": lambda: [str(tmp_path / p) for p in write_clips(tmp_path, n)]}[modality]()
    frame = pd.DataFrame({"x": values, "label": ["pos" if i % 2 else "neg" for i in range(n)]})
    tuning = {"mode": mode, **({"last_n": 1} if mode == "last_n" else {})}
    config = {"columns": {"x": modality}, modality: {"backbone": str(tiny_backbone(kind)), "tuning": tuning},
              "training": {**FAST, "cache_dir": str(tmp_path / "cache")}}
    directory = Predictor(label="label", config=config, verbose=False).fit(frame).save(tmp_path / "model")
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)  # the graph holds the backbone: no features needed
    onnx_model = Predictor.load(directory, runtime="onnx")  # exported on load, into a temporary file
    table = frame.drop(columns="label")
    table.loc[3, "x"] = None
    parts = (table, table.iloc[[0, 3, 4]])  # other lengths of text and audio than the whole table's
    got = [onnx_model.predict_proba(part).to_numpy() for part in parts]
    assert not (tmp_path / "cache").exists()  # the feature store was neither read nor filled
    torch_model = Predictor.load(directory)
    for part, mine in zip(parts, got):
        worst = np.abs(torch_model.predict_proba(part).to_numpy() - mine).max()
        assert worst < 1e-4, (kind, worst)
