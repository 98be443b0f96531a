"""on_bad_input = error | skip_row | skip_modality (and the old 'skip'): everywhere, counted, explained."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from synthetic import FAST, make_table
from polymodal import Predictor
from polymodal.config import load_config
from polymodal.errors import DataError


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("policy")
    make_table(folder, n=45).to_csv(folder / "train.csv", index=False)
    predictor = Predictor(label="label", config=FAST, verbose=False).fit(folder / "train.csv")
    return folder, predictor


def _broken(folder, n_bad=2):
    """The training table with the first ``n_bad`` images broken (zero bytes / not a PNG)."""
    frame = pd.read_csv(folder / "train.csv").iloc[:9].copy()
    (folder / "broken").mkdir(exist_ok=True)
    (folder / "broken" / "zero.png").write_bytes(b"")
    (folder / "broken" / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    frame.loc[0, "photo"] = "broken/zero.png"
    if n_bad > 1:
        frame.loc[4, "photo"] = "broken/junk.png"
    return frame


def test_skip_is_an_alias_of_skip_row():
    assert load_config({"on_bad_input": "skip"}).on_bad_input == "skip_row"
    assert load_config({"on_bad_input": "skip_modality"}).on_bad_input == "skip_modality"


def test_error_lists_the_rows_and_both_ways_out(model):
    folder, predictor = model
    with pytest.raises(DataError) as info:
        predictor.predict(_table(folder), on_bad_input="error")
    message = str(info.value)
    assert "column 'photo': 2 of 9" in message and "broken/zero.png: zero-byte file" in message
    assert "skip_row" in message and "skip_modality" in message


def _table(folder):
    from polymodal.data.tables import Table

    return Table(_broken(folder), folder, "broken.csv")


def test_skip_row_drops_rows_and_says_why(model, caplog):
    folder, predictor = model
    with caplog.at_level(logging.WARNING, logger="polymodal"):
        report = predictor.predict_report(_table(folder), on_bad_input="skip_row")
    prediction = report.predictions
    assert prediction.isna().tolist() == [True, False, False, False, True, False, False, False, False]
    assert report.skipped.to_dict("records") == [
        {"row": 0, "input": "photo", "reason": "zero-byte file"},
        {"row": 4, "input": "photo", "reason": report.skipped.reason[1]}]
    assert report.skipped.reason[1].startswith("cannot decode image")
    assert ("broken.csv: skipped 2 of 9 rows (on_bad_input: skip_row); unreadable: photo (2); "
            "first: row 0 photo: zero-byte file; row 4 photo: cannot decode image") in caplog.text


def test_skip_modality_predicts_like_an_absent_input(model, caplog):
    folder, predictor = model
    with caplog.at_level(logging.WARNING, logger="polymodal"):
        report = predictor.predict_report(_table(folder), on_bad_input="skip_modality")
    proba = report.probabilities
    assert not proba.isna().any().any()  # every row predicted
    assert len(report.skipped) == 2
    assert "marked 2 unreadable input(s) absent in 9 rows (on_bad_input: skip_modality); unreadable: photo (2)" in caplog.text
    # An unreadable image counts exactly as a missing one.
    emptied = _broken(folder)
    emptied.loc[[0, 4], "photo"] = None
    from polymodal.data.tables import Table

    expected = predictor.predict_proba(Table(emptied, folder, "emptied"))
    pd.testing.assert_frame_equal(proba, expected)


def test_fit_reports_skips_in_metrics_json(tmp_path):
    frame = make_table(tmp_path, n=45)
    (tmp_path / "img" / "003.png").write_bytes(b"")
    (tmp_path / "img" / "007.png").write_bytes(b"GIF89a broken")
    frame.to_csv(tmp_path / "train.csv", index=False)
    for policy, dropped in (("skip_row", 2), ("skip_modality", 0)):
        predictor = Predictor(label="label", config={**FAST, "on_bad_input": policy}, verbose=False)
        predictor.fit(tmp_path / "train.csv")
        out = predictor.save(tmp_path / policy)
        skipped = json.loads((out / "metrics.json").read_text())["fit"]["skipped"]
        both = [skipped["training"], skipped["tuning"]]
        assert sum(s["inputs_skipped"] for s in both) == 2
        assert sum(s["rows_dropped"] for s in both) == dropped
        assert {s["policy"] for s in both} == {policy}
        reasons = {r for s in both for r in s["by_reason"]}
        assert "zero-byte file" in reasons and any(r.startswith("cannot decode image") for r in reasons)
        assert all(item["input"] == "photo" for s in both for item in s["first"])
        assert predictor.fit_info_["train_rows"] + predictor.fit_info_["tuning_rows"] == 45 - dropped


def test_evaluate_counts_skipped_inputs(model):
    folder, predictor = model
    frame = _broken(folder)
    frame["label"] = pd.read_csv(folder / "train.csv").label.iloc[:9]
    frame.loc[8, "label"] = "purple"  # unseen label: left out of the metrics
    from polymodal.data.tables import Table

    metrics = predictor.evaluate(Table(frame, folder, "labelled"), on_bad_input="skip_modality")
    assert metrics["n"] == 8 and metrics["skipped_inputs"] == 2 and metrics["skipped_rows"] == 2


def test_cli_predict_writes_the_reason_per_row(model, tmp_path):
    folder, predictor = model
    predictor.save(tmp_path / "model")
    frame = _broken(folder)
    frame["photo"] = [str(folder / p) for p in frame.photo]
    frame.to_csv(tmp_path / "new.csv", index=False)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-m", "polymodal.cli", "predict", str(tmp_path / "model"), "--data",
         str(tmp_path / "new.csv"), "--out", str(tmp_path / "pred.csv"), "--on-bad-input", "skip_modality"],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "2 rows predicted without an unreadable input" in result.stdout
    pred = pd.read_csv(tmp_path / "pred.csv", keep_default_na=False)
    assert pred.skipped_reason[0] == "photo: zero-byte file"
    assert pred.skipped_reason[4].startswith("photo: cannot decode image")
    assert (pred.skipped_reason[[1, 2, 3, 5, 6, 7, 8]] == "").all()
    assert np.isfinite(pred.filter(like="proba_").to_numpy(dtype=float)).all()
    bad = subprocess.run(
        [sys.executable, "-m", "polymodal.cli", "predict", str(tmp_path / "model"), "--data",
         str(tmp_path / "new.csv"), "--out", str(tmp_path / "p2.csv"), "--on-bad-input", "ignore"],
        capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and "on_bad_input" in bad.stderr and "Traceback" not in bad.stderr
