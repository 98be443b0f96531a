"""``polymodal export`` as the docs run it, then the graph through ``Predictor.load(...,
runtime="onnx")`` and ``polymodal serve --runtime onnx``: the same predictions as PyTorch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic import FAST, make_table

from polymodal import Predictor

pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.usefixtures("one_thread")


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "polymodal.cli", *args], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A text + image + tabular classifier's model directory, and a table to predict (some rows
    without their caption or photo)."""
    folder = tmp_path_factory.mktemp("cli")
    frame = make_table(folder, n=30)
    frame["photo"] = [str(folder / p) for p in frame.photo]
    config = {**FAST, "training": {**FAST["training"], "max_epochs": 2}}
    directory = Predictor(label="label", config=config, verbose=False).fit(frame).save(folder / "model")
    test = frame.drop(columns="label")
    test.loc[::4, "caption"] = None
    test.loc[1::5, "photo"] = None
    return directory, test


def test_export_then_load_with_the_onnx_runtime_predicts_as_torch(saved, tmp_path):
    directory, test = saved
    out = tmp_path / "exported" / "model.onnx"
    result = run("export", str(directory), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out}") and "present: bool[batch, 3]" in result.stdout
    assert "probabilities: float32[batch, 3]" in result.stdout and "Warning" not in result.stderr
    description = json.loads((tmp_path / "exported" / "model.onnx.json").read_text())
    inputs = {e["name"]: e for e in description["inputs"]}
    assert inputs["caption.input_ids"]["shape"] == ["batch", "caption.tokens"]
    assert inputs["caption.input_ids"]["dtype"] == "int64" and inputs["caption.input_ids"]["modality"] == "text"
    assert inputs["photo.pixel_values"]["shape"] == ["batch", 3, 12, 12]
    assert inputs["tabular.numeric"]["columns"] == ["size", "shop"]
    assert inputs["present"]["inputs"] == ["caption", "photo", "tabular"]
    assert description["outputs"] == [{"name": "probabilities", "dtype": "float32", "shape": ["batch", 3],
                                       "classes": ["blue", "green", "red"]}]

    torch_model = Predictor.load(directory)
    onnx_model = Predictor.load(directory, runtime="onnx", onnx=out)
    pd.testing.assert_series_equal(onnx_model.predict(test), torch_model.predict(test))
    np.testing.assert_allclose(onnx_model.predict_proba(test).to_numpy(), torch_model.predict_proba(test).to_numpy(),
                               atol=1e-4, rtol=0)
    assert onnx_model.predict_report(test).absent.equals(torch_model.predict_report(test).absent)
    labelled = test.assign(label=["blue", "green", "red"] * 10)
    want, got = torch_model.evaluate(labelled), onnx_model.evaluate(labelled)
    assert got["accuracy"] == want["accuracy"] and abs(got["log_loss"] - want["log_loss"]) < 1e-4
    exported_on_load = Predictor.load(directory, runtime="onnx")  # no graph given: exported into a temporary file
    pd.testing.assert_series_equal(exported_on_load.predict(test), torch_model.predict(test))


def test_export_errors_are_one_line_and_exit_code_2(saved, tmp_path):
    directory, _ = saved
    result = run("export", str(tmp_path / "absent"), "--out", str(tmp_path / "model.onnx"))
    assert result.returncode == 2 and result.stderr.startswith("error: model directory") and "not found" in result.stderr
    (tmp_path / "notes.txt").write_text("keep me")
    result = run("export", str(directory), "--out", str(tmp_path / "notes.txt"))
    assert result.returncode == 2 and "an .onnx file" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_the_service_runs_the_graph(saved):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from polymodal.serving import ServeSettings, create_app

    directory, test = saved
    app = create_app(ServeSettings(models=[directory], runtime="onnx", batching=False))
    rows = [{"caption": "a red thing seen 3 times", "size": 2.1, "shop": "north"}, {"size": 0.2}]
    with TestClient(app) as client:
        answer = client.post(f"/v1/models/{directory.name}/predict", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    expected = Predictor.load(directory).predict_proba(pd.DataFrame(rows))
    for row, (_, want) in zip(answer.json()["predictions"], expected.iterrows()):
        assert max(abs(row["probabilities"][c] - want[c]) for c in want.index) < 1e-4
