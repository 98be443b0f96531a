"""Predictor.explain: ablation and integrated-gradients importance per input."""
import numpy as np
import pandas as pd
import pytest

from synthetic import FAST, make_table
from polymodal import Predictor


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("table")
    make_table(folder, n=60).to_csv(folder / "train.csv", index=False)
    config = {**FAST, "fusion": {"name": "weighted", "hidden": 16},
              "training": {**FAST["training"], "modality_dropout": 0.3}}
    return folder, Predictor(label="label", config=config, verbose=False).fit(folder / "train.csv")


def test_global_and_per_row_importance(fitted):
    folder, predictor = fitted
    importance = predictor.explain(folder / "train.csv", n_steps=16)
    summary, rows = importance.summary, importance.rows
    # The tabular input (size, a number; shop, a category) is explained a column at a time.
    assert list(summary.index) == ["caption", "photo", "size", "shop"]
    assert list(summary.columns) == ["modality", "model_input", "ablation", "ablation_metric_drop", "ig_mean_abs",
                                     "ig_share", "ig_mean", "fusion_weight"]
    assert summary["model_input"].tolist() == ["caption", "photo", "tabular", "tabular"]
    # the weighted fusion's mean weights, one per model input
    assert summary.drop_duplicates("model_input")["fusion_weight"].sum() == pytest.approx(1.0)
    assert {"ablation_size", "ablation_shop", "ig_size", "ig_shop", "weight_tabular"} <= set(rows.columns)
    assert summary["ig_share"].sum() == pytest.approx(1.0)
    assert len(rows) == 60 and set(rows["predicted"]) <= {"blue", "green", "red"}
    assert np.isfinite(rows.filter(like="ig_").to_numpy()).all()
    # Integrated gradients is complete: attributions sum to f(row) - f(baseline).
    assert importance.ig_convergence_delta < 1e-3 * max(1.0, rows.filter(like="ig_").abs().to_numpy().max())


def test_absent_inputs_have_no_importance_and_labels_are_optional(fitted):
    folder, predictor = fitted
    frame = pd.read_csv(folder / "train.csv").drop(columns=["label"])
    frame["photo"] = [str(folder / p) for p in frame.photo]
    frame.loc[[0, 5], "photo"] = None
    importance = predictor.explain(frame, n_steps=8)
    assert "ablation_metric_drop" not in importance.summary.columns
    assert importance.rows.loc[[0, 5], ["ablation_photo", "ig_photo"]].isna().all().all()
    assert importance.rows.drop(index=[0, 5])[["ablation_photo", "ig_photo"]].notna().all().all()
    assert (importance.rows.loc[[0, 5], "weight_photo"] == 0).all()  # an absent input gets no weight


def test_rows_with_an_unknown_label_are_counted_in_the_log(fitted, caplog):
    folder, predictor = fitted
    frame = pd.read_csv(folder / "train.csv")
    frame["photo"] = [str(folder / p) for p in frame.photo]
    frame.loc[[1, 2, 3], "label"] = "purple"  # a class the model never saw
    with caplog.at_level("WARNING", logger="polymodal"):
        importance = predictor.explain(frame, n_steps=4)
    assert len(importance.rows) == 57
    assert "3 of 60 rows left out of the explanation" in caplog.text


def test_a_tabular_column_ablation_is_the_change_with_its_cell_missing(fitted):
    """Ablating one tabular column = predicting with that cell empty, the other columns kept."""
    folder, predictor = fitted
    frame = pd.read_csv(folder / "train.csv").drop(columns=["label"]).head(20)
    frame["photo"] = [str(folder / p) for p in frame.photo]
    importance = predictor.explain(frame, n_steps=4)
    full = predictor.predict_proba(frame)
    predicted = full.to_numpy().argmax(axis=1)
    for column in ("size", "shop"):
        blank = predictor.predict_proba(frame.assign(**{column: None}))
        expected = full.to_numpy()[np.arange(20), predicted] - blank.to_numpy()[np.arange(20), predicted]
        assert np.allclose(importance.rows[f"ablation_{column}"], expected, atol=1e-5), column
    both = predictor.predict_proba(frame.assign(size=None, shop=None))  # the whole tabular input missing
    assert not np.allclose(both.to_numpy(), full.to_numpy(), atol=1e-4)
