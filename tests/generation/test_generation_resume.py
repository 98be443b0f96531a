"""A GAN run (two optimisers, an averaged generator, per-epoch sample grids) killed with
SIGKILL mid-epoch resumes and ends like an uninterrupted one."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image

from kill import cli, env, kill_during_epoch_2, result

CONFIG = {
    "seed": 1, "problem_type": "generation", "label": "label",
    "image": {"preprocess": {"size": 8, "grayscale": True, "augment": False}},
    "generate": {"target": "image", "model": "gan", "latent_dim": 4, "width": 8},
    "training": {"max_epochs": 3, "batch_size": 2, "patience": 10, "progress_bar": False, "precision": "32",
                 "load_threads": 1},
}


def test_gan_killed_mid_epoch_resumes_to_the_same_model(tmp_path: Path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        rows.append({"image": f"{i}.png", "label": "ab"[i % 2]})
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    common = ["fit", "--train", str(tmp_path / "train.csv"), "--config", str(tmp_path / "config.yaml")]
    model, partial = tmp_path / "m", tmp_path / "m.partial"
    kill_during_epoch_2(cli(*common, "--out", str(model)), partial)
    resumed = subprocess.run(cli(*common, "--out", str(model), "--resume"), capture_output=True, text=True,
                             env=env(), timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from the checkpoint of epoch 1" in resumed.stderr
    whole = subprocess.run(cli(*common, "--out", str(tmp_path / "whole")), capture_output=True, text=True,
                           env=env(), timeout=300)
    assert whole.returncode == 0, whole.stderr[-3000:]
    metrics_resumed, history_resumed = result(model)
    metrics_whole, history_whole = result(tmp_path / "whole")
    assert metrics_resumed == metrics_whole
    pd.testing.assert_frame_equal(history_resumed, history_whole)
    assert (model / "model.safetensors").read_bytes() == (tmp_path / "whole" / "model.safetensors").read_bytes()
    grids = [Image.open(m / "plots" / "samples_image.png") for m in (model, tmp_path / "whole")]
    assert np.array_equal(np.asarray(grids[0]), np.asarray(grids[1]))  # every epoch's grid, resumed too
