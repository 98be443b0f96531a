"""What a user sees when an input is broken: the row, the column and the value, as plain text;
odd cells that decide a column's role; rows the metrics leave out; one-problem config errors."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthetic import FAST
from polymodal import Predictor
from polymodal.config import load_config
from polymodal.data.dataset import load_inputs
from polymodal.data.schema import Schema, infer_roles
from polymodal.errors import ConfigError, DataError
from polymodal.fusion.base import FUSIONS
from polymodal.modalities.tabular.preprocess import TabularPreprocessor


def _tabular(frame: pd.DataFrame) -> dict[str, TabularPreprocessor]:
    pre = TabularPreprocessor("tabular", ["num", "cat"], numeric=["num"], categorical=["cat"])
    return {"tabular": pre.fit(frame, Path("."))}


def test_a_bad_tabular_cell_names_its_row_column_and_value_in_plain_text():
    frame = pd.DataFrame({"num": [1.0, 2.0, "abc", 4.0, {"a": np.int64(1)}], "cat": list("xyxyx")},
                         index=[10, 11, 12, 13, 14])
    with pytest.raises(DataError) as info:
        load_inputs(frame, Path("."), _tabular(frame), what="train.csv")
    message = str(info.value)
    assert message.startswith("train.csv: input 'tabular' (columns num, cat): 2 of 5 values could not be read")
    assert "row 12: column 'num': 'abc' is not a number" in message
    assert "row 14: column 'num': {'a': 1} is not a number" in message
    assert "row values of" not in message and "np." not in message


def test_a_bad_one_column_cell_names_its_row_and_value():
    frame = pd.DataFrame({"num": [1.0, 2.0, [np.int64(7)]]}, index=["a", "b", "c"])
    pre = TabularPreprocessor("tabular", ["num"], numeric=["num"]).fit(frame, Path("."))
    with pytest.raises(DataError, match=r"column 'num': 1 of 3 values could not be read \(first: row c: \[7\]: "):
        load_inputs(frame, Path("."), {"tabular": pre}, what="t.csv")


def test_one_dict_in_a_number_column_keeps_it_numeric_and_the_cell_is_a_bad_input():
    values = [float(i) for i in range(39)] + [{"a": np.int64(1)}]
    frame = pd.DataFrame({"num": values, "cat": ["x", "y"] * 20, "label": ["p", "q"] * 20}, dtype=object)
    roles, reasons = infer_roles(frame, "label")
    assert roles["num"] == "numeric"
    assert "1 of 40 cells are not numbers (first: row 39: {'a': 1}): bad inputs under on_bad_input" in reasons["num"]
    with pytest.raises(DataError, match=r"row 39: column 'num': \{'a': 1\} is not a number"):
        load_inputs(frame, Path("."), _tabular(frame), what="train.csv")


def test_a_few_non_numbers_that_make_a_column_ignored_are_logged_and_described(caplog):
    ids = [str(i) for i in range(28)] + ["n/a", "unknown"]
    frame = pd.DataFrame({"amount": ids, "cat": ["x", "y"] * 15, "label": ["p", "q"] * 15})
    with caplog.at_level(logging.WARNING, logger="polymodal"):
        roles, reasons = infer_roles(frame, "label")
    assert roles["amount"] == "ignore"
    assert "2 of 30 cells are not numbers (first: row 28: 'n/a') (numeric needs 95%)" in reasons["amount"]
    assert "column 'amount' gets role ignore" in caplog.text and "columns: {amount: numeric}" in caplog.text
    described = Schema("label", "classification", roles, reasons).describe()
    assert "2 of 30 cells are not numbers" in described


def test_one_list_in_a_text_column_is_logged(caplog):
    frame = pd.DataFrame({"note": ["a long free sentence here"] * 5 + [[1, 2]], "label": list("pqpqpq")})
    with caplog.at_level(logging.WARNING, logger="polymodal"):
        roles, reasons = infer_roles(frame, "label")
    assert roles["note"] == "ignore" and "1 of 6 cells are lists, dicts or bytes (first: row 5: [1, 2])" in reasons["note"]
    assert "column 'note' gets role ignore" in caplog.text and "columns: {note: text}" in caplog.text


def test_tensor_fusion_counts_gradients_and_adamw_state_in_its_memory_bound():
    dims = {"a": 8, "b": 8, "c": 8}  # (15+1)^3 * 128 weights = 2 MiB; training them: 8 MiB
    with pytest.raises(ConfigError, match=r"2\.0 MiB\); training it needs 8\.0 MiB \(weights, gradients "
                                          r"and 2 AdamW states\), over max_mib=4"):
        FUSIONS["tensor"](input_dims=dims, proj_dim=15, hidden=128, max_mib=4)
    assert FUSIONS["tensor"](input_dims=dims, proj_dim=15, hidden=128, max_mib=9).out_dim == 128


def test_one_config_problem_reads_as_one_line():
    with pytest.raises(ConfigError) as info:
        load_config({"training": {"epochz": 3}})
    message = str(info.value)
    assert message.startswith("config: training.epochz") and "\n" not in message and "1 problem" not in message
    with pytest.raises(ConfigError, match="config has 2 problems:\n  - "):
        load_config({"training": {"epochz": 3, "max_epochs": -1}})


@pytest.fixture(scope="module")
def tabular_model():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"size": rng.normal(size=40), "shop": rng.choice(["n", "s"], 40),
                          "label": ["red", "blue"] * 20})
    return Predictor(label="label", config=FAST, verbose=False).fit(frame)


def test_evaluate_counts_rows_with_unknown_labels_and_rows_with_no_input(tabular_model, caplog):
    test = pd.DataFrame({"size": [0.1, None, 0.3, 0.2, 0.5, None], "shop": ["n", None, "s", "n", "s", "n"],
                         "label": ["red", "blue", "purple", "pink", None, "red"]})
    with caplog.at_level(logging.WARNING, logger="polymodal"):
        metrics = tabular_model.evaluate(test)
    assert metrics["n_unknown_label"] == 3 and metrics["n_no_input"] == 1 and metrics["n"] == 3
    assert "3 of 6 rows left out of the metrics" in caplog.text
    assert "1 of 3 rows have no input at all (first: row 1)" in caplog.text


def test_predict_warns_about_rows_with_no_input(tabular_model, caplog):
    test = pd.DataFrame({"size": [0.1, None, None], "shop": ["n", None, " "]}, index=[5, 6, 7])
    with caplog.at_level(logging.WARNING, logger="polymodal"):
        report = tabular_model.predict_report(test)
    assert "2 of 3 rows have no input at all (first: row 6); each gets the same prediction" in caplog.text
    assert "no input at all" in report.note
