"""The CLI as the README runs it, on real files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from synthetic import make_table


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "polymodal.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)


FAST_YAML = {
    "text": {"encoder": {"name": "gru"}},
    "image": {"preprocess": {"size": 12}, "encoder": {"name": "cnn", "channels": [8, 16]}},
    "training": {"max_epochs": 3, "batch_size": 16, "progress_bar": False},
}


def test_bad_input_is_one_line_and_exit_code_2(tmp_path):
    make_table(tmp_path, n=30).to_csv(tmp_path / "train.csv", index=False)
    result = run("fit", "--train", str(tmp_path / "train.csv"), "--label", "nope", "--out", str(tmp_path / "m"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: label column 'nope' not in the table")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "m").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {max_epochs: -1, epochz: 3}\n")
    result = run("fit", "--train", str(tmp_path / "train.csv"), "--label", "label",
                 "--config", str(bad), "--out", str(tmp_path / "m"))
    assert result.returncode == 2 and "2 problems" in result.stderr and "epochz" in result.stderr
    result = run("evaluate", str(tmp_path / "absent"), "--data", str(tmp_path / "train.csv"))
    assert result.returncode == 2 and "not found" in result.stderr


@pytest.mark.slow
def test_class_folder_with_metadata_fit_evaluate_predict(data_dir, tmp_path):
    """The seed's example: class subfolders of images + metadata.csv with a text per image."""
    from polymodal.datasets.fashion_mnist import make_fashion_folder

    train = make_fashion_folder(data_dir, tmp_path / "train", per_class=40, split="train", seed=0)
    test = make_fashion_folder(data_dir, tmp_path / "test", per_class=15, split="test", seed=1)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "text": {"encoder": {"name": "gru"}},
        "image": {"preprocess": {"size": 28}, "encoder": {"name": "cnn", "channels": [16, 32]}},
        "training": {"max_epochs": 8, "progress_bar": False},
    }))
    model = tmp_path / "model"
    result = run("fit", "--train", str(train), "--label", "label", "--config", str(config), "--out", str(model))
    assert result.returncode == 0, result.stderr
    assert "image" in result.stderr and "description" in result.stderr  # the column roles were printed
    assert (model / "plots" / "curves.png").stat().st_size > 10_000
    assert (model / "plots" / "confusion_matrix.png").is_file()

    result = run("evaluate", str(model), "--data", str(test), "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["n"] == 150 and metrics["accuracy"] > 0.6, metrics

    # A new image + text pair, as a user would predict it.
    meta = pd.read_csv(test / "metadata.csv").iloc[:1]
    new = pd.DataFrame({"image": [str(test / meta.file_name[0])], "description": [meta.description[0]]})
    new.to_csv(tmp_path / "new.csv", index=False)
    result = run("predict", str(model), "--data", str(tmp_path / "new.csv"), "--out", str(tmp_path / "pred.csv"))
    assert result.returncode == 0, result.stderr
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert len(pred) == 1 and "predicted_label" in pred
    assert len([c for c in pred.columns if c.startswith("proba_")]) == 10
    assert abs(pred.filter(like="proba_").sum(axis=1).iloc[0] - 1) < 1e-4

    # --shard I/N: the parts of N jobs concatenate into the whole table's predictions
    whole = tmp_path / "whole.csv"
    assert run("predict", str(model), "--data", str(test), "--out", str(whole)).returncode == 0
    parts = []
    for i in range(3):
        part = tmp_path / f"part{i}.csv"
        result = run("predict", str(model), "--data", str(test), "--out", str(part), "--shard", f"{i}/3")
        assert result.returncode == 0 and "wrote 50 predictions" in result.stdout, result.stderr
        parts.append(pd.read_csv(part))
    # Batches of 50 and of 150 rows sum in different orders: float32 noise of a few 1e-6 (seen 1.5e-6)
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), pd.read_csv(whole), atol=1e-5)
    bad = run("predict", str(model), "--data", str(test), "--out", str(tmp_path / "x.csv"), "--shard", "3/3")
    assert bad.returncode == 2 and "0 <= I < N" in bad.stderr and not (tmp_path / "x.csv").exists()


@pytest.mark.slow
def test_demo_reaches_target_on_unseen_speakers(data_dir, tmp_path):
    result = run("demo", "--data-dir", str(data_dir), "--out", str(tmp_path / "demo"),
                 "--work-dir", str(tmp_path / "work"))
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert metrics["test"]["n"] == 1000
    assert metrics["test"]["accuracy"] >= 0.985, metrics["test"]
    assert (tmp_path / "demo" / "plots" / "confusion_matrix_test.png").is_file()
    assert "accuracy" in result.stdout
