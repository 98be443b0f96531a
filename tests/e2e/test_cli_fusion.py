"""The fusion, missing-input, robustness and explain commands as the README runs them."""
from __future__ import annotations

import pandas as pd
import pytest
import yaml

from synthetic import make_table
from test_cli import FAST_YAML, run


@pytest.mark.slow
def test_fit_with_modality_dropout_then_robustness_explain_and_partial_predict(tmp_path):
    make_table(tmp_path, n=45).to_csv(tmp_path / "train.csv", index=False)
    config = {**FAST_YAML, "fusion": {"name": "attention", "d_model": 16, "num_heads": 2, "ff_dim": 32},
              "training": {**FAST_YAML["training"], "modality_dropout": 0.3}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    model = tmp_path / "model"
    result = run("fit", "--train", str(tmp_path / "train.csv"), "--label", "label", "--config",
                 str(tmp_path / "config.yaml"), "--out", str(model))
    assert result.returncode == 0, result.stderr

    reports = tmp_path / "reports"
    result = run("evaluate", str(model), "--data", str(tmp_path / "train.csv"), "--robustness", "--report-dir", str(reports))
    assert result.returncode == 0, result.stderr
    assert "removed" in result.stdout and "token dropout" in result.stdout
    assert (reports / "robustness.png").is_file() and len(pd.read_csv(reports / "robustness.csv")) == 16

    result = run("explain", str(model), "--data", str(tmp_path / "train.csv"), "--report-dir", str(reports), "--steps", "8")
    assert result.returncode == 0, result.stderr
    assert "ig_share" in result.stdout and (reports / "importance.png").is_file()
    assert len(pd.read_csv(reports / "importance_rows.csv")) == 45

    new = pd.read_csv(tmp_path / "train.csv").drop(columns=["label", "caption"]).head(5)
    new.loc[1, "photo"] = None
    new.to_csv(tmp_path / "new.csv", index=False)
    result = run("predict", str(model), "--data", str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.csv"))
    assert result.returncode == 0, result.stderr
    assert "'caption' not in the table; treated as absent" in result.stderr
    predictions = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)
    assert predictions["absent_inputs"].tolist() == ["caption", "caption;photo", "caption", "caption", "caption"]
    assert (predictions["predicted_label"] != "").all()
