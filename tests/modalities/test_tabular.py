"""TabularPreprocessor: scaling, missing values, vocabularies, bad cells, persistence."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from polymodal.modalities import get_modality
from polymodal.preprocessing import BadInput
from polymodal.modalities.tabular.preprocess import TabularPreprocessor
from polymodal.errors import ConfigError, NotFittedError

HERE = Path(".")


def _make(numeric, categorical, **options) -> TabularPreprocessor:
    return TabularPreprocessor("tabular", numeric + categorical, numeric=numeric, categorical=categorical, **options)


@pytest.fixture(scope="module")
def pairs(data_dir) -> pd.DataFrame:
    return pd.read_csv(data_dir / "av-digits" / "pairs.csv")


@pytest.fixture(scope="module")
def toy() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20.0, 30.0, np.inf, np.nan, 40.0, -np.inf],
            "income": ["1000", " 2000 ", None, "", "3000", "4000"],
            "city": ["paris", "rome", "paris", None, "oslo", "paris"],
            "code": [1.0, 2.0, np.nan, 2.0, 3.0, 1.0],  # ints with a gap, read as floats
        }
    )


@pytest.fixture(scope="module")
def fitted(toy) -> TabularPreprocessor:
    return _make(["age", "income"], ["city", "code"]).fit(toy, HERE)


def test_registered():
    assert get_modality("tabular").preprocessor is TabularPreprocessor


def test_fit_real_table(pairs):
    train = pairs[pairs["split"] == "train"]
    pre = _make(["digit_index"], ["speaker", "label"]).fit(train, HERE)
    assert pre.encoder_inputs() == {"n_numeric": 1, "cardinalities": [5, 11]}  # 4 train speakers
    assert pre.columns == ["digit_index", "speaker", "label"]
    test_row = pairs[pairs["split"] == "test"].iloc[0].to_dict()
    item = pre.load(test_row, HERE)
    assert item["categorical"][0] == 0  # test speakers are never seen in training
    assert item["categorical"][1] == pre.vocab_[1][str(test_row["label"])]
    expected = (test_row["digit_index"] - train["digit_index"].mean()) / train["digit_index"].std(ddof=0)
    assert item["numeric"][0] == pytest.approx(expected, rel=1e-5)


def test_scaling_ignores_inf_and_nan(fitted):
    assert fitted.mean_.tolist() == pytest.approx([30.0, 2500.0])
    assert fitted.std_[0] == pytest.approx(np.std([20.0, 30.0, 40.0]))


def test_load_dtypes_and_missing(fitted, toy):
    item = fitted.load(toy.iloc[2].to_dict(), HERE)  # age inf, income None, paris, code NaN
    assert item["numeric"].dtype == np.float32 and item["numeric_missing"].dtype == np.float32
    assert item["categorical"].dtype == np.int64
    assert item["numeric"].tolist() == [0.0, 0.0] and item["numeric_missing"].tolist() == [1.0, 1.0]
    assert item["categorical"].tolist() == [fitted.vocab_[0]["paris"], 0]


def test_vocabulary(fitted):
    assert fitted.vocab_[0] == {"paris": 1, "oslo": 2, "rome": 3}  # most frequent first, then by name
    assert fitted.vocab_[1] == {"1": 1, "2": 2, "3": 3}
    assert fitted.encoder_inputs() == {"n_numeric": 2, "cardinalities": [4, 4]}
    ids = fitted.load({"city": "berlin", "code": 2}, HERE)["categorical"]  # unknown; int 2 == 2.0
    assert ids.tolist() == [0, 2]


def test_min_count_and_max_categories(toy):
    assert _make([], ["city"], min_count=2).fit(toy, HERE).vocab_ == [{"paris": 1}]
    assert _make([], ["city"], max_categories=2).fit(toy, HERE).vocab_ == [{"paris": 1, "oslo": 2}]


def test_all_missing_row_is_none(fitted):
    assert fitted.load({"age": np.nan, "income": " ", "city": None}, HERE) is None
    assert fitted.load({}, HERE) is None


def test_collate_shapes(fitted, toy):
    items = [fitted.load(row, HERE) for row in toy.to_dict("records")[:3]] + [None]
    batch = fitted.collate(items)
    assert batch["numeric"].shape == (4, 2) and batch["numeric"].dtype == torch.float32
    assert batch["numeric_missing"].shape == (4, 2)
    assert batch["categorical"].shape == (4, 2) and batch["categorical"].dtype == torch.long
    assert batch["numeric_missing"][3].tolist() == [1.0, 1.0] and batch["categorical"][3].tolist() == [0, 0]


@pytest.mark.parametrize(("numeric", "categorical"), [([], ["city"]), (["age"], [])])
def test_empty_sides_have_zero_width(toy, numeric, categorical):
    pre = _make(numeric, categorical).fit(toy, HERE)
    batch = pre.collate([pre.load(toy.iloc[0].to_dict(), HERE), None])
    assert batch["numeric"].shape == (2, len(numeric))
    assert batch["numeric_missing"].shape == (2, len(numeric))
    assert batch["categorical"].shape == (2, len(categorical))


def test_non_number_is_bad_input(fitted):
    with pytest.raises(BadInput, match="column 'income': 'abc' is not a number"):
        fitted.load({"income": "abc"}, HERE)
    with pytest.raises(BadInput, match="column 'age'"):
        fitted.load({"age": [1, 2]}, HERE)


def test_huge_values_are_clipped_and_finite(fitted):
    item = fitted.load({"age": 1e308, "income": "-1e300"}, HERE)
    assert item["numeric"].tolist() == [10.0, -10.0]
    unclipped = _make(["age"], [], clip=None).fit(pd.DataFrame({"age": [0.0, 0.5]}), HERE)
    assert np.isfinite(unclipped.load({"age": 1e308}, HERE)["numeric"]).all()
    assert unclipped.load({"age": 10**400}, HERE) is None  # overflow → missing; nothing left


def test_save_load_from_same_outputs(fitted, toy, tmp_path):
    fitted.save(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    again = TabularPreprocessor.load_from(tmp_path)
    assert again.encoder_inputs() == fitted.encoder_inputs()
    rows = toy.to_dict("records") + [{"city": "berlin", "age": 31}]
    first = fitted.collate([fitted.load(r, HERE) for r in rows])
    second = again.collate([again.load(r, HERE) for r in rows])
    for key in first:
        assert torch.equal(first[key], second[key])


def test_augment_is_identity(fitted, toy):
    item = fitted.load(toy.iloc[0].to_dict(), HERE)
    assert fitted.augment(item, torch.Generator()) is item


def test_errors(toy):
    with pytest.raises(NotFittedError):
        _make(["age"], []).load({"age": 1}, HERE)
    with pytest.raises(ConfigError, match="both numeric and categorical"):
        TabularPreprocessor("tabular", ["a", "a"], numeric=["a"], categorical=["a"])
    with pytest.raises(ConfigError, match="must be exactly"):
        TabularPreprocessor("tabular", ["a", "b"], numeric=["a"], categorical=[])
    with pytest.raises(ConfigError, match="min_count"):
        _make(["age"], [], min_count=0)


_cells = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**500), max_value=10**500),
    st.booleans(),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=2),
    st.binary(max_size=5),
)


@settings(max_examples=200, deadline=None)
@given(age=_cells, income=_cells, city=_cells, code=_cells)
def test_any_cells_give_finite_items_or_bad_input(age, income, city, code):
    pre = _make(["age", "income"], ["city", "code"])
    pre.mean_, pre.std_ = np.array([30.0, 2500.0]), np.array([8.0, 1000.0])
    pre.vocab_ = [{"paris": 1}, {"1": 1}]
    try:
        item = pre.load({"age": age, "income": income, "city": city, "code": code}, HERE)
    except BadInput as exc:
        assert str(exc).startswith("column '")
        return
    if item is None:
        return
    assert np.isfinite(item["numeric"]).all() and item["numeric"].dtype == np.float32
    assert set(item["numeric_missing"].tolist()) <= {0.0, 1.0}
    assert ((item["categorical"] >= 0) & (item["categorical"] <= 1)).all()
    for value, flag in zip([age, income], item["numeric_missing"]):
        if isinstance(value, float) and not math.isfinite(value):
            assert flag == 1.0
