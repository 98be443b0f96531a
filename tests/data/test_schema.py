"""Tests of the schema: role inference (data/schema.py), the tasks' label checks
(``polymodal.tasks.infer_schema``), overrides, describe, round trip."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polymodal.data.schema import Schema
from polymodal.modalities import input_roles
from polymodal.errors import ConfigError, DataError, PolymodalError
from polymodal.tasks import get_task, infer_schema, task_names

N = 200


def _mixed_frame(n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    words = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "again"]
    return pd.DataFrame(
        {
            "id": [f"row-{i:05d}" for i in range(n)],
            "review": [" ".join(rng.choice(words, size=int(rng.integers(4, 12)))) for _ in range(n)],
            "photo": [f"img/{i}.png" if i % 50 else f"img/{i}.JPG" for i in range(n)],
            "clip": [f"audio/{i}.wav" if i % 20 else None for i in range(n)],
            "price": rng.normal(10, 2, n),
            "rooms": rng.integers(1, 6, n),
            "colour": rng.choice(["red", "green", "blue"], n),
            "zip": [str(int(v)) for v in rng.integers(10000, 99999, n)],
            "sold": rng.random(n) > 0.5,
            "empty": [np.nan] * n,
            "blank": [" "] * n,
            "score": rng.normal(0, 1, n),
            "kind": rng.choice(["cat", "dog"], n),
        }
    )


def test_mixed_frame_roles_and_regression_label() -> None:
    schema = infer_schema(_mixed_frame(), label="score")
    assert schema.problem_type == "regression"
    assert schema.roles == {
        "id": "ignore",
        "review": "text",
        "photo": "image",
        "clip": "audio",
        "price": "numeric",
        "rooms": "numeric",
        "colour": "categorical",
        "zip": "numeric",
        "sold": "categorical",
        "empty": "ignore",
        "blank": "ignore",
        "kind": "categorical",
    }
    assert schema.reasons["photo"] == f"paths ending .png, .jpg ({N}/{N})"
    assert schema.reasons["clip"] == f"paths ending .wav ({N - 10}/{N - 10})"
    assert "unique id-like values" in schema.reasons["id"]
    assert schema.reasons["empty"] == "all values missing" == schema.reasons["blank"]
    assert "numbers stored as text" in schema.reasons["zip"]
    assert schema.reasons["score"].startswith("regression: numbers from")


def test_string_label_is_classification() -> None:
    schema = infer_schema(_mixed_frame(), label="kind")
    assert schema.problem_type == "classification"
    assert schema.reasons["kind"] == "classification: 2 classes"
    assert "score" in schema.roles and "kind" not in schema.roles


def test_integer_valued_float_label_is_classification() -> None:
    frame = pd.DataFrame({"x": range(10), "y": [0.0, 1.0] * 5})
    assert infer_schema(frame, "y").problem_type == "classification"


def test_integer_label_is_classification_with_a_hint() -> None:
    frame = pd.DataFrame({"x": range(10), "y": [1, 2, 3, 4, 5] * 2})
    schema = infer_schema(frame, "y")
    assert schema.problem_type == "classification"
    assert "problem_type='regression'" in schema.reasons["y"]
    assert infer_schema(frame, "y", problem_type="regression").problem_type == "regression"


def test_few_distinct_values_in_a_small_table_are_text() -> None:
    # 3 distinct values in 20 rows exceed max(2, 5% of rows): the rule calls them text
    frame = pd.DataFrame({"c": ["red", "green", "blue", "red"] * 5, "y": ["a", "b"] * 10})
    assert infer_schema(frame, "y").roles["c"] == "text"


def test_short_unique_values_below_twenty_rows_are_not_an_id() -> None:
    frame = pd.DataFrame({"c": [f"u{i}" for i in range(19)], "y": ["a", "b"] * 9 + ["a"]})
    assert infer_schema(frame, "y").roles["c"] == "text"


def test_object_columns_of_python_values() -> None:
    frame = pd.DataFrame(
        {
            "nums": pd.Series([1, 2.5, None, 4], dtype=object),
            "flags": pd.Series([True, False, None, True], dtype=object),
            "tags": pd.Series([["a"], ["b", "c"], [], None], dtype=object),
            "when": pd.to_datetime(["2024-01-01"] * 4),
            "cat": pd.Categorical(["a", "b", "a", "b"]),
            "y": ["p", "q", "p", "q"],
        }
    )
    schema = infer_schema(frame, "y")
    assert schema.roles == {
        "nums": "numeric",
        "flags": "categorical",
        "tags": "ignore",
        "when": "ignore",
        "cat": "categorical",
    }
    assert "not supported" in schema.reasons["tags"] and "not supported" in schema.reasons["when"]


def test_overrides_set_roles() -> None:
    schema = infer_schema(_mixed_frame(), "kind", overrides={"id": "text", "rooms": "categorical"})
    assert schema.roles["id"] == "text" and schema.roles["rooms"] == "categorical"
    assert schema.reasons["id"] == "set in overrides"
    assert schema.inputs("categorical") == ["rooms", "colour", "sold"]
    assert schema.inputs("image") == ["photo"]


# --- errors ---------------------------------------------------------------------------


def test_label_not_in_table() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": [3, 4], "c": ["x", "y"]})
    with pytest.raises(DataError, match=r"label column 'x' not in the table; columns are: a, b, c \(pass --label\)"):
        infer_schema(frame, "x")


def test_overrides_report_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        infer_schema(_mixed_frame(), "kind", overrides={"nope": "text", "photo": "picture", "kind": "text"})
    message = str(info.value)
    assert "columns not in the table: nope; columns are: id, review" in message
    assert "'photo': 'picture'" in message and "valid roles are: text, image, audio" in message
    assert "label column 'kind'" in message


def test_label_with_a_single_class() -> None:
    frame = pd.DataFrame({"x": range(7), "y": ["cat"] * 7})
    message = "label 'y' has a single class 'cat' in 7 rows; a classifier needs at least two"
    with pytest.raises(DataError, match=message):
        infer_schema(frame, "y")


def test_missing_labels_are_counted() -> None:
    frame = pd.DataFrame({"x": range(6), "y": ["a", None, "b", " ", np.nan, "a"]})
    with pytest.raises(DataError, match="label 'y' is missing in 3 of 6 rows.*[Dd]rop those rows or fill"):
        infer_schema(frame, "y")


def test_regression_label_must_be_numeric() -> None:
    frame = pd.DataFrame({"x": range(4), "y": ["a", "b", "a", "c"]})
    with pytest.raises(DataError, match="label 'y' is not numeric .*'a', 'b', 'c'.*problem_type='classification'"):
        infer_schema(frame, "y", problem_type="regression")


def test_constant_regression_label() -> None:
    frame = pd.DataFrame({"x": range(4), "y": [2.5] * 4})
    with pytest.raises(DataError, match="label 'y' is 2.5 in all 4 rows"):
        infer_schema(frame, "y", problem_type="regression")


def test_a_list_label_is_multilabel_and_refused_as_classes() -> None:
    frame = pd.DataFrame({"x": range(2), "y": [["a"], ["b"]]})
    assert infer_schema(frame, "y").problem_type == "multilabel"
    with pytest.raises(DataError, match="label 'y' holds lists.*problem_type: multilabel"):
        infer_schema(frame, "y", problem_type="classification")
    with pytest.raises(ConfigError, match="multioutput predicts several labels"):
        infer_schema(frame, "y", problem_type="multioutput")


def test_no_input_columns_left() -> None:
    frame = pd.DataFrame({"id": [f"k{i}" for i in range(30)], "e": [None] * 30, "y": ["a", "b"] * 15})
    with pytest.raises(DataError, match="no input columns.*id: unique id-like.*e: all values missing.*overrides"):
        infer_schema(frame, "y")
    with pytest.raises(DataError, match="only the label column"):
        infer_schema(frame[["y"]], "y")


def test_unknown_problem_type() -> None:
    with pytest.raises(ConfigError, match="problem_type 'multiclass' .*classification, multilabel, multioutput, regression"):
        infer_schema(_mixed_frame(), "kind", problem_type="multiclass")


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ([1, 2], "expected a pandas DataFrame, got list"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "duplicate column names: a"),
        (pd.DataFrame({"y": []}), "no rows"),
        (pd.DataFrame(np.zeros((2, 2))), "column names must be text"),
    ],
)
def test_bad_frames(frame: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        infer_schema(frame, "y")  # type: ignore[arg-type]


# --- the Schema object ----------------------------------------------------------------


def test_describe_lists_every_column_aligned() -> None:
    schema = infer_schema(_mixed_frame(), "score")
    text = schema.describe()
    lines = text.splitlines()
    assert lines[0].split() == ["column", "role", "why"]
    assert lines[1].split()[:2] == ["score", "label"]
    for column, role in schema.roles.items():
        assert any(line.split()[:2] == [column, role] for line in lines), column
    role_at = lines[0].index("role")
    assert all(line[role_at - 2 : role_at] == "  " and line[role_at] != " " for line in lines)
    assert f"paths ending .png, .jpg ({N}/{N})" in text


def test_dict_round_trip_through_json() -> None:
    schema = infer_schema(_mixed_frame(), "kind")
    again = Schema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert again == schema
    assert list(again.roles) == list(schema.roles)


def test_from_dict_rejects_bad_input() -> None:
    data = infer_schema(_mixed_frame(), "kind").to_dict()
    with pytest.raises(ConfigError, match="must have keys"):
        Schema.from_dict({**data, "extra": 1})
    with pytest.raises(ConfigError, match="unknown roles .*'photo': 'pixels'"):
        Schema.from_dict({**data, "roles": {**data["roles"], "photo": "pixels"}})
    with pytest.raises(ConfigError, match="problem_type 'ranking' is not known"):
        get_task(Schema.from_dict({**data, "problem_type": "ranking"}).problem_type)


def test_inputs_rejects_unknown_role() -> None:
    schema = Schema(label="y", problem_type="classification", roles={"a": "text"})
    with pytest.raises(ConfigError, match="unknown role 'texts'"):
        schema.inputs("texts")
    with pytest.raises(ConfigError, match="label 'y' also has an input role"):
        Schema(label="y", problem_type="classification", roles={"y": "text"})


# --- property -------------------------------------------------------------------------

_cells = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["a.png", "B.WAV", "x y z", "", " ", "1e3", "nan", "id-1"]),
    st.lists(st.integers(), max_size=2),
)
_columns = st.one_of(
    st.lists(_cells, min_size=1, max_size=25).map(lambda v: pd.Series(v, dtype=object)),
    st.lists(st.floats(allow_nan=True), min_size=1, max_size=25).map(pd.Series),
    st.lists(st.integers(-5, 5), min_size=1, max_size=25).map(pd.Series),
    st.lists(st.booleans(), min_size=1, max_size=25).map(pd.Series),
    st.lists(st.sampled_from(["cat", "dog", "a b c d", "p.jpg"]), min_size=1, max_size=25).map(pd.Series),
)


@st.composite
def _frames(draw: st.DrawFn) -> tuple[pd.DataFrame, str, dict[str, str] | None, str]:
    columns = draw(st.lists(_columns, min_size=1, max_size=5))
    n = min(len(c) for c in columns)
    frame = pd.DataFrame({f"c{i}": c.iloc[:n].reset_index(drop=True) for i, c in enumerate(columns)})
    names = [*frame.columns, "missing"]
    label = "missing" if draw(st.integers(0, 9)) == 0 else draw(st.sampled_from(list(frame.columns)))
    roles = st.sampled_from([*input_roles(), "bogus"])
    overrides = draw(st.none() | st.dictionaries(st.sampled_from(names), roles, max_size=2))
    problem_type = draw(st.sampled_from(["auto", *task_names(), "bogus"]))
    return frame, label, overrides, problem_type


@settings(
    max_examples=100, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(_frames())
def test_infer_schema_raises_only_polymodal_errors(case: tuple) -> None:
    frame, label, overrides, problem_type = case
    try:
        schema = infer_schema(frame, label, overrides=overrides, problem_type=problem_type)
    except PolymodalError:
        return
    assert list(schema.roles) == [c for c in frame.columns if c != label]
    assert Schema.from_dict(json.loads(json.dumps(schema.to_dict()))) == schema
    assert all(column in schema.describe() for column in frame.columns)
