"""Every fusion trains inside a Predictor, saves, loads and predicts the same."""
import pandas as pd
import pytest

from synthetic import FAST, make_table
from polymodal import Predictor
from polymodal.fusion import FUSIONS


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("table")
    make_table(folder, n=30).to_csv(folder / "train.csv", index=False)
    return folder


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_fit_save_load_predict(name, folder, tmp_path):
    config = {**FAST, "fusion": {"name": name}, "training": {**FAST["training"], "max_epochs": 1, "modality_dropout": 0.2}}
    predictor = Predictor(label="label", config=config, verbose=False).fit(folder / "train.csv")
    loaded = Predictor.load(predictor.save(tmp_path / "model"))
    frame = pd.read_csv(folder / "train.csv").drop(columns=["label"])
    frame["photo"] = [str(folder / p) for p in frame.photo]
    frame.loc[::3, "caption"] = None  # some rows without text
    pd.testing.assert_frame_equal(predictor.predict_proba(frame), loaded.predict_proba(frame))
