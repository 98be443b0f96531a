"""The robustness report: each input removed, and noised at increasing levels."""
import pandas as pd
import pytest

from synthetic import FAST, make_table
from polymodal import Predictor
from polymodal.reports import plot_robustness, robustness_report


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("table")
    make_table(folder, n=60).to_csv(folder / "train.csv", index=False)
    config = {**FAST, "fusion": {"name": "late", "hidden": 16}}
    return folder, Predictor(label="label", config=config, verbose=False).fit(folder / "train.csv")


def test_report_rows_and_values(fitted, tmp_path):
    folder, predictor = fitted
    report = robustness_report(predictor, folder / "train.csv", levels={"image": [0.1, 0.5], "text": [0.5]})
    assert list(report.columns) == ["input", "modality", "condition", "noise", "level", "severity", "metric", "value", "n"]
    clean = report[report.condition == "clean"]
    assert clean.value.iloc[0] == pytest.approx(predictor.evaluate(folder / "train.csv")["accuracy"])
    assert set(report[report.condition == "removed"].input) == {"caption", "photo", "tabular"}
    assert report[(report.input == "photo") & (report.condition == "noise")].level.tolist() == [0.1, 0.5]
    assert report[(report.input == "tabular") & (report.condition == "noise")].shape[0] == 4  # default levels
    assert "not perturbed" not in set(report.condition)  # every plain input is noised
    # Removing a column from the table is the same as the report's "removed".
    frame = pd.read_csv(folder / "train.csv").drop(columns=["caption"])
    frame["photo"] = [str(folder / p) for p in frame.photo]
    removed = report[(report.input == "caption") & (report.condition == "removed")].value.iloc[0]
    assert removed == pytest.approx(predictor.evaluate(frame)["accuracy"])
    again = robustness_report(predictor, folder / "train.csv", levels={"image": [0.1, 0.5], "text": [0.5]})
    pd.testing.assert_frame_equal(report, again)  # seeded noise: a report repeats
    assert plot_robustness(report, tmp_path / "r.png").stat().st_size > 1000


def test_rows_with_an_unknown_label_are_counted_in_the_log(fitted, caplog):
    folder, predictor = fitted
    frame = pd.read_csv(folder / "train.csv")
    frame["photo"] = [str(folder / p) for p in frame.photo]
    frame.loc[[0, 4], "label"] = None  # no label: nothing to score against
    with caplog.at_level("WARNING", logger="polymodal"):
        report = robustness_report(predictor, frame, levels={"image": [0.5], "text": [0.5]})
    assert set(report["n"]) == {58}
    assert "2 of 60 rows left out of the robustness report" in caplog.text
