"""The Python API on a small synthetic table (image + text + numbers + a category)."""
import json

import numpy as np
import pandas as pd
import pytest

from synthetic import FAST, make_table
from polymodal import Predictor
from polymodal.errors import ConfigError, DataError, ModelDirError, NotFittedError


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("table")
    frame = make_table(folder, n=60)
    frame.to_csv(folder / "train.csv", index=False)
    predictor = Predictor(label="label", config=FAST, verbose=False).fit(folder / "train.csv")
    return folder, predictor


def test_fit_learns_and_reports(fitted):
    folder, predictor = fitted
    assert predictor.schema_.roles == {"photo": "image", "caption": "text", "size": "numeric",
                                       "shop": "categorical"}
    assert predictor.classes_ == ["blue", "green", "red"]
    assert set(predictor.history_.columns) >= {"epoch", "train_loss", "val_loss", "val_accuracy"}
    metrics = predictor.evaluate(folder / "train.csv")
    assert metrics["accuracy"] > 0.6  # three easy classes, three epochs
    assert metrics["n"] == 60


def test_predict_and_proba_align_with_rows(fitted):
    folder, predictor = fitted
    # A DataFrame without the label, with absolute paths (no base folder to resolve against).
    frame = pd.read_csv(folder / "train.csv").drop(columns=["label"]).iloc[:7]
    frame["photo"] = [str(folder / p) for p in frame.photo]
    proba = predictor.predict_proba(frame)
    assert proba.shape == (7, 3) and np.allclose(proba.sum(axis=1), 1.0)
    labels = predictor.predict(folder / "train.csv")
    assert len(labels) == 60 and set(labels) <= {"blue", "green", "red"}
    assert list(proba.columns) == ["blue", "green", "red"]


def test_save_load_gives_identical_predictions(fitted, tmp_path):
    folder, predictor = fitted
    out = predictor.save(tmp_path / "model")
    for name in ("config.yaml", "model.safetensors", "metrics.json", "history.csv", "labels.json",
                 "schema.json", "plots/curves.png", "plots/confusion_matrix.png", "manifest.json"):
        assert (out / name).is_file(), name
    loaded = Predictor.load(out)
    a = predictor.predict_proba(folder / "train.csv")
    b = loaded.predict_proba(folder / "train.csv")
    pd.testing.assert_frame_equal(a, b)
    assert not any(p.name.startswith(".model.tmp") for p in tmp_path.iterdir())


def test_tampered_or_partial_model_dir_is_refused(fitted, tmp_path):
    _, predictor = fitted
    out = predictor.save(tmp_path / "model")
    (out / "labels.json").write_text(json.dumps({"classes": ["x"]}))
    with pytest.raises(ModelDirError, match="changed since save: labels.json"):
        Predictor.load(out)
    (out / "manifest.json").unlink()
    with pytest.raises(ModelDirError, match="not a polymodal model directory"):
        Predictor.load(out)


def test_failed_save_leaves_previous_directory_intact(fitted, tmp_path, monkeypatch):
    _, predictor = fitted
    out = predictor.save(tmp_path / "model")
    before = sorted(p.name for p in out.rglob("*"))
    import polymodal.reports as reports

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(reports, "plot_curves", boom)
    with pytest.raises(RuntimeError):
        predictor.save(out)
    assert sorted(p.name for p in out.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    Predictor.load(out)


def test_predict_before_fit():
    with pytest.raises(NotFittedError, match="not fitted"):
        Predictor(label="y").predict(pd.DataFrame({"a": [1]}))


def test_missing_label_and_single_class(table):
    folder, frame = table
    with pytest.raises(DataError, match="'target' not in the table"):
        Predictor(label="target", config=FAST, verbose=False).fit(folder / "train.csv")
    frame.assign(label="red").to_csv(folder / "one.csv", index=False)
    with pytest.raises(DataError, match="single class"):
        Predictor(label="label", config=FAST, verbose=False).fit(folder / "one.csv")
    with pytest.raises(ConfigError, match="no label column"):
        Predictor(config=FAST).fit(folder / "train.csv")


def test_unknown_column_in_config(table):
    folder, _ = table
    with pytest.raises(ConfigError, match="nope"):
        Predictor(label="label", config={**FAST, "columns": {"nope": "text"}}, verbose=False).fit(folder / "train.csv")


def test_corrupt_image_errors_or_is_skipped_and_counted(table, tmp_path):
    folder, frame = table
    (folder / "img" / "005.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    (folder / "img" / "011.png").write_bytes(b"")
    with pytest.raises(DataError) as info:
        Predictor(label="label", config=FAST, verbose=False).fit(folder / "train.csv")
    message = str(info.value)
    assert "column 'photo': 2 of" in message and "img/005.png" in message and "on_bad_input" in message
    predictor = Predictor(label="label", config={**FAST, "on_bad_input": "skip"}, verbose=False)
    predictor.fit(folder / "train.csv")
    skipped = predictor.fit_info_["skipped_rows"]
    assert skipped["training"] + skipped["tuning"] == 2
    out = predictor.save(tmp_path / "m")
    assert json.loads((out / "metrics.json").read_text())["fit"]["skipped_rows"] == skipped
    prediction = predictor.predict(folder / "train.csv")
    assert prediction.isna().sum() == 2 and len(prediction) == 60
    assert predictor.evaluate(folder / "train.csv")["skipped_rows"] == 2


def test_regression_on_a_numeric_label(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": 3 * x[:, 0] - x[:, 1] + 0.5 + rng.normal(0, 0.1, 80)})
    config = {**FAST, "training": {**FAST["training"], "max_epochs": 30, "learning_rate": 0.01}}
    predictor = Predictor(label="y", config=config, verbose=False).fit(frame)
    assert predictor.schema_.problem_type == "regression"
    metrics = predictor.evaluate(frame)
    assert metrics["r2"] > 0.8, metrics
    with pytest.raises(ConfigError, match="predict_proba"):
        predictor.predict_proba(frame)


def test_unseen_labels_at_evaluation_are_left_out(fitted):
    folder, predictor = fitted
    frame = pd.read_csv(folder / "train.csv")
    frame.loc[:4, "label"] = "purple"
    frame["photo"] = [str(folder / p) for p in frame.photo]
    metrics = predictor.evaluate(frame)
    assert metrics["n"] == 55


def test_missing_input_column_at_predict_is_an_absent_input(fitted):
    folder, predictor = fitted
    frame = pd.read_csv(folder / "train.csv").drop(columns=["caption"])
    frame["photo"] = [str(folder / p) for p in frame.photo]
    frame.loc[2, "photo"] = None  # an empty cell: that row has no image either
    report = predictor.predict_report(frame)
    assert report.predictions.notna().all()
    absent = report.absent
    assert absent[2] == "caption;photo" and set(absent.drop(2)) == {"caption"}
    pd.testing.assert_series_equal(predictor.predict(frame), report.predictions)
    assert not hasattr(predictor, "absent_") and not hasattr(predictor, "skipped_")  # predict mutates nothing
    with pytest.raises(DataError, match="none of the model's input columns"):
        predictor.predict(pd.DataFrame({"other": [1, 2]}))


def test_rows_lacking_an_input_warn_when_the_model_never_trained_without_one(fitted, caplog):
    folder, predictor = fitted
    frame = pd.read_csv(folder / "train.csv").head(8)
    frame["photo"] = [str(folder / p) for p in frame.photo]
    complete = frame.copy()
    frame.loc[[1, 3], "photo"] = None
    assert predictor.fit_info_["rows_lacking_inputs"] == 0 and predictor.config_.training.modality_dropout == 0
    with caplog.at_level("WARNING", logger="polymodal"):
        predictor.predict(complete)
        assert "never trained without one" not in caplog.text
        predictor.predict(frame)
    assert "2 rows lack an input, and this model never trained without one" in caplog.text
    assert "training.modality_dropout: 0.3" in caplog.text
    caplog.clear()
    robust = Predictor.load(predictor.save(folder / "robust-copy"))
    robust.fitted_.config.training.modality_dropout = 0.3  # as if trained with dropout: no warning
    with caplog.at_level("WARNING", logger="polymodal"):
        robust.predict(frame)
    assert "never trained without one" not in caplog.text


def test_fit_is_repeatable(table):
    folder, _ = table
    a = Predictor(label="label", config=FAST, verbose=False).fit(folder / "train.csv")
    b = Predictor(label="label", config=FAST, verbose=False).fit(folder / "train.csv")
    pd.testing.assert_frame_equal(a.predict_proba(folder / "train.csv"), b.predict_proba(folder / "train.csv"))
