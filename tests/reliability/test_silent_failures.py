"""Inputs that used to train a broken model with exit code 0 (issue 12, defects 1-4).

Each goes through the CLI as a user runs it and must end in exit code 2 with one ``error:``
line naming the column or option and the fix, no traceback, and no model directory.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from synthetic import FAST, make_table

pytestmark = pytest.mark.usefixtures("one_thread")


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "polymodal.cli", *args], capture_output=True,
                          text=True, env=env, timeout=600)


def fit(tmp_path: Path, frame: pd.DataFrame, config: dict | str, label: str = "label") -> subprocess.CompletedProcess:
    frame.to_csv(tmp_path / "train.csv", index=False)
    path = tmp_path / "config.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return run("fit", "--train", str(tmp_path / "train.csv"), "--label", label,
               "--config", str(path), "--out", str(tmp_path / "model"))


def refused(result: subprocess.CompletedProcess, tmp_path: Path, *words: str) -> str:
    """The one ``error:`` line of a refused fit, which left nothing behind."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    for word in words:
        assert word in errors[0], errors[0]
    assert not (tmp_path / "model").exists()
    assert not (tmp_path / "model.partial").exists()
    return errors[0]


# ------------------------------------------------------------------ 1. infinite regression label


def test_infinite_regression_label_is_refused(tmp_path):
    frame = make_table(tmp_path, n=30)
    frame.loc[[4, 9], "size"] = [math.inf, -math.inf]
    line = refused(fit(tmp_path, frame, FAST, label="size"), tmp_path,
                   "'size'", "infinite", "2 of 30 rows", "rows 4, 9", "finite")
    assert "Drop those rows" in line


def test_infinite_labels_at_evaluation_are_unusable_rows():
    from polymodal.tasks import get_task

    task = get_task("regression")
    frame = pd.DataFrame({"y": [1.0, math.inf, None, 2.5]})
    values = task.encode_target(frame, SimpleNamespace(label="y"), {}, None, "test data", "drop")
    assert task.known(values).tolist() == [True, False, False, True]
    with pytest.raises(Exception, match=r"2 missing, non-numeric or infinite values \(rows 1, 2\)"):
        task.encode_target(frame, SimpleNamespace(label="y"), {}, None, "tuning data", "error")


# ------------------------------------------------------------------ 2. infinite learning rate


def test_infinite_learning_rate_is_refused(tmp_path):
    config = yaml.safe_dump({k: v for k, v in FAST.items() if k != "training"})
    config += "training: {max_epochs: 2, progress_bar: false, learning_rate: .inf}\n"
    refused(fit(tmp_path, make_table(tmp_path, n=30), config), tmp_path, "learning_rate")


# ------------------------------------------------------------------ 3. a diverging run


def test_diverging_run_is_refused_and_leaves_nothing(tmp_path):
    config = {**FAST, "training": {**FAST["training"], "learning_rate": 1e6, "max_epochs": 3}}
    line = refused(fit(tmp_path, make_table(tmp_path, n=40), config), tmp_path,
                   "diverged", "learning_rate (now 1e+06)", "gradient_clip", "no model was saved")
    assert "epoch" in line


def test_nonfinite_weights_are_never_returned():
    from polymodal.errors import PolymodalError, TrainingError
    from polymodal.training.callbacks import FiniteLoss, divergence_hint, nonfinite_weights

    assert issubclass(TrainingError, PolymodalError) and issubclass(TrainingError, RuntimeError)
    layer = torch.nn.Linear(2, 2)
    assert nonfinite_weights(layer) == []
    with torch.no_grad():
        layer.bias[0] = math.nan
    assert nonfinite_weights(layer) == ["bias"]
    hint = divergence_hint(0.01, 0.0, "bf16")
    assert "0.01" in hint and "gradient_clip: 1.0" in hint and "precision: 32" in hint
    trainer = SimpleNamespace(current_epoch=1, global_step=7)
    FiniteLoss(hint).on_train_batch_end(trainer, None, {"loss": torch.tensor(0.5)}, None, 0)
    with pytest.raises(TrainingError, match=r"became inf at epoch 2, step 7 \(batch 3\)"):
        FiniteLoss(hint).on_train_batch_end(trainer, None, {"loss": torch.tensor(math.inf)}, None, 2)


# ------------------------------------------------------------------ 4. hf encoders from a folder


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    from backbones.tiny_models import build
    from polymodal.backbones import quiet_transformers

    folder = tmp_path_factory.mktemp("tiny-bert")
    with quiet_transformers():
        build("bert", folder)
    return folder


def _text_table(folder: Path, n: int = 24) -> pd.DataFrame:
    from backbones.tiny_models import sentences

    rng = np.random.default_rng(0)
    return pd.DataFrame({"review": sentences(n), "label": rng.choice(["pos", "neg"], n)})


def _dir_embeddings(folder: Path) -> torch.Tensor:
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(folder)).embeddings.word_embeddings.weight.detach()


def _fresh_encoder(folder: Path, text: dict) -> torch.nn.Module:
    """The text encoder as ``fit`` builds it, before any training."""
    from polymodal.builders import build_model, build_preprocessors
    from polymodal.config import load_config
    from polymodal.tasks import get_task, schema_of

    frame = _text_table(folder)
    config = load_config({"label": "label", "text": text, "training": {"max_epochs": 1}})
    schema = schema_of(frame, config)
    pres = build_preprocessors(config, schema)
    for pre in pres.values():
        pre.fit(frame, folder)
    model = build_model(config, schema, pres, get_task(schema.problem_type).fit_labels(frame, schema, config))
    return model.encoders["review"]


@pytest.mark.parametrize("encoder", [{"name": "hf", "path": "DIR"}, {"name": "hf"}])
def test_hf_encoder_starts_from_the_folders_weights(tiny_bert, encoder):
    encoder = {k: (str(tiny_bert) if v == "DIR" else v) for k, v in encoder.items()}
    preprocess = {"pretrained": str(tiny_bert), "max_length": 24}
    built = _fresh_encoder(tiny_bert, {"preprocess": preprocess, "encoder": encoder})
    assert built.out_dim == 16  # the tiny model's hidden size, not a fresh 128-wide BERT
    assert torch.equal(built.model.embeddings.word_embeddings.weight.detach(), _dir_embeddings(tiny_bert))


@pytest.mark.parametrize("encoder", [{"name": "hf", "path": "DIR"}, {"name": "hf"}])
def test_hf_encoder_from_a_folder_trains_through_the_cli(tmp_path, tiny_bert, encoder):
    encoder = {k: (str(tiny_bert) if v == "DIR" else v) for k, v in encoder.items()}
    config = {"text": {"preprocess": {"pretrained": str(tiny_bert), "max_length": 24}, "encoder": encoder},
              "training": {"max_epochs": 1, "batch_size": 8, "progress_bar": False, "precision": "32"}}
    result = fit(tmp_path, _text_table(tmp_path), config)
    assert result.returncode == 0, result.stderr[-3000:]
    from polymodal import Predictor

    model = Predictor.load(tmp_path / "model").model_.encoders["review"]
    assert model.out_dim == 16
