"""Rows whose label the model never saw (or with no label) are left out of `polymodal evaluate`'s
metrics, and the user is told once, with the count: the warning used to be printed twice, by
the classification task and by the evaluation."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from synthetic import FAST
from polymodal import Predictor
from polymodal.errors import DataError
from polymodal.tasks import get_task

pytestmark = pytest.mark.usefixtures("one_thread")


def test_evaluate_warns_once_about_rows_with_unknown_labels(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"size": rng.normal(size=40), "shop": rng.choice(["n", "s"], 40),
                          "label": ["red", "blue"] * 20})
    Predictor(label="label", config=FAST, verbose=False).fit(frame).save(tmp_path / "model")
    test = frame.iloc[:8].copy()
    test.loc[[1, 2, 3], "label"] = ["purple", "pink", "purple"]
    test.loc[4, "label"] = None
    test.to_csv(tmp_path / "test.csv", index=False)
    result = subprocess.run(
        [sys.executable, "-m", "polymodal.cli", "evaluate", str(tmp_path / "model"), "--data", str(tmp_path / "test.csv")],
        capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"},
        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    about = [line for line in result.stderr.splitlines() if "trained on" in line or "left out" in line]
    assert about == [f"{tmp_path / 'test.csv'}: 4 of 8 rows left out of the metrics: their label is missing "
                     "or one the model was not trained on"], result.stderr
    metrics = dict(line.split() for line in result.stdout.splitlines())
    assert metrics["n"] == "4" and metrics["n_unknown_label"] == "4"


def test_unknown_labels_where_they_are_an_error_name_the_classes_and_count_missing_ones():
    task = get_task("classification")
    frame = pd.DataFrame({"y": ["red", "pink", None, "blue", "pink"]})
    labels = {"classes": ["blue", "red"]}
    schema = type("S", (), {"label": "y"})()
    with pytest.raises(DataError) as caught:
        task.encode_target(frame, schema, labels, None, "tuning data", "error")
    assert str(caught.value) == ("tuning data: 2 row(s) have label values the model was not trained on (pink) "
                                 "and 1 row(s) have no label; known classes: blue, red. Drop those rows or add "
                                 "them to the training data")
    assert task.encode_target(frame, schema, labels, None, "test data", "drop").tolist() == [1, -1, -1, 0, -1]
