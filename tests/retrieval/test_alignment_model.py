"""Alignment models through the Predictor: fit, evaluate, embed, save/load, search, zero-shot."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from polymodal import Predictor
from polymodal.errors import ConfigError, DataError, ModelDirError
from polymodal.retrieval import Searcher, index_column, zero_shot

COLORS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220), "yellow": (230, 220, 40)}
TINY = {
    "seed": 0,
    "columns": {"caption": "text", "photo": "image"},
    "text": {"encoder": {"name": "gru", "embed_dim": 16, "hidden_size": 16}},
    "image": {"preprocess": {"size": 12, "augment": False}, "encoder": {"name": "cnn", "channels": [8, 16]}},
    "training": {"max_epochs": 8, "batch_size": 16, "learning_rate": 0.01, "progress_bar": False,
                 "precision": "32"},
}
ALIGN = {**TINY, "problem_type": "alignment", "label": "colour",
         "align": {"columns": ["caption", "photo"], "dim": 8, "match": "label"}}


def make_pairs(folder: Path, n: int = 48, seed: int = 0) -> pd.DataFrame:
    """Rows pairing a photo of one colour with a caption naming it (paths relative to folder)."""
    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    names, rows = sorted(COLORS), []
    for i in range(n):
        colour = names[i % len(names)]
        pixels = np.clip(np.array(COLORS[colour]) + rng.normal(0, 15, (12, 12, 3)), 0, 255)
        Image.fromarray(pixels.astype(np.uint8)).save(folder / "img" / f"{i:03d}.png")
        rows.append({"item": f"sku-{i:03d}", "photo": f"img/{i:03d}.png",
                     "caption": f"a {colour} thing number {i}", "colour": colour, "price": float(i)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Predictor, Path, Path]:
    folder = tmp_path_factory.mktemp("pairs")
    make_pairs(folder).to_csv(folder / "pairs.csv", index=False)
    table = str(folder / "pairs.csv")
    predictor = Predictor(config=ALIGN, verbose=False).fit(table, tuning_data=table)
    model_dir = predictor.save(folder / "model")
    return predictor, folder, model_dir


def test_fit_ignores_other_columns_and_evaluates_both_directions(fitted):
    predictor, folder, _ = fitted
    assert predictor.schema_.problem_type == "alignment" and predictor.model_.head is None
    assert sorted(predictor.preprocessors_) == ["caption", "photo"]  # price and item are not inputs
    metrics = predictor.evaluate(str(folder / "pairs.csv"))
    for direction in ("caption_to_photo", "photo_to_caption"):
        assert {f"{direction}_{m}" for m in ("recall@1", "recall@5", "recall@10", "median_rank", "mrr")} <= set(metrics)
        assert metrics[f"{direction}_queries"] == 48 and metrics[f"{direction}_gallery"] == 48
    assert metrics["caption_to_photo_recall@1"] > 0.5  # chance: 12 of 48 images show the colour


def test_embed_skips_absent_rows_and_survives_save_load(fitted):
    predictor, folder, model_dir = fitted
    frame = pd.read_csv(folder / "pairs.csv")[["photo", "caption"]].head(6)
    frame.loc[2, "caption"] = ""
    got = predictor.embed(frame.assign(photo=[str(folder / p) for p in frame["photo"]]), "caption")
    assert got.space == "aligned" and got.vectors.shape == (5, 8) and got.rows.tolist() == [0, 1, 3, 4, 5]
    assert np.allclose(np.linalg.norm(got.vectors, axis=1), 1.0, atol=1e-5)
    assert np.isnan(got.full()[2]).all()
    loaded = Predictor.load(model_dir)
    again = loaded.embed(frame[["caption"]], "caption")  # the other column is not needed
    assert np.allclose(again.vectors, got.vectors, atol=1e-6)
    with pytest.raises(ConfigError, match="alignment model"):
        loaded.predict(frame)
    with pytest.raises(DataError, match="not a text, image or audio input"):
        loaded.embed(frame, "price")


def test_config_mistakes_are_reported_before_training(tmp_path):
    make_pairs(tmp_path, n=12).to_csv(tmp_path / "t.csv", index=False)
    numeric = {**ALIGN, "align": {"columns": ["caption", "price"]}, "label": None}
    with pytest.raises(ConfigError, match="'price' is 'numeric'"):
        Predictor(config=numeric, verbose=False).fit(str(tmp_path / "t.csv"))
    missing = {**ALIGN, "align": {"columns": ["caption", "picture"]}}
    with pytest.raises(DataError, match="'picture'"):
        Predictor(config=missing, verbose=False).fit(str(tmp_path / "t.csv"))
    with pytest.raises(ConfigError, match="align: section"):
        Predictor(config={"problem_type": "alignment"}, verbose=False).fit(str(tmp_path / "t.csv"))
    with pytest.raises(ConfigError, match="unknown key"):
        Predictor(config={**ALIGN, "align": {"columns": ["caption", "photo"], "temprature": 0.1}})._resolve_config()


def test_alignment_loss_beside_a_classifier(tmp_path):
    make_pairs(tmp_path, n=32).to_csv(tmp_path / "t.csv", index=False)
    config = {**TINY, "label": "colour", "columns": {**TINY["columns"], "item": "ignore"},
              "training": {**TINY["training"], "max_epochs": 2}, "align": {"columns": ["caption", "photo"], "dim": 8, "weight": 0.5}}
    predictor = Predictor(config=config, verbose=False).fit(str(tmp_path / "t.csv"))
    assert predictor.model_.aligner is not None and predictor.model_.aligner.weight == 0.5
    assert len(predictor.predict(str(tmp_path / "t.csv"))) == 32
    assert predictor.embed(str(tmp_path / "t.csv"), "photo").space == "aligned"
    assert predictor.embed(str(tmp_path / "t.csv"), "caption").vectors.shape == (32, 8)


def test_zero_shot_scores_class_names(fitted):
    predictor, folder, _ = fitted
    out = zero_shot(predictor, str(folder / "pairs.csv"), "photo", ["red", "green", "blue", "yellow"],
                    template="a {} thing")
    assert list(out.columns) == ["predicted", "red", "green", "blue", "yellow"]
    assert np.allclose(out[["red", "green", "blue", "yellow"]].sum(axis=1), 1.0)
    truth = pd.read_csv(folder / "pairs.csv")["colour"]
    assert (out["predicted"] == truth).mean() >= 0.5  # chance: 0.25
    with pytest.raises(DataError, match="no \\{\\}"):
        zero_shot(predictor, str(folder / "pairs.csv"), "photo", ["red", "blue"], template="colour")


def test_index_and_search_across_modalities(fitted, tmp_path):
    predictor, folder, model_dir = fitted
    index = index_column(predictor, model_dir, str(folder / "pairs.csv"), "photo", id_column="item")
    index.save(tmp_path / "idx")
    searcher = Searcher.open(tmp_path / "idx")
    hits = searcher.search(text="a red thing", k=5)
    assert hits["rank"].tolist() == [1, 2, 3, 4, 5] and hits["score"].is_monotonic_decreasing
    # The same neighbours as a brute-force search over the model's own vectors.
    photos = predictor.embed(str(folder / "pairs.csv"), "photo").vectors
    query = predictor.embed(pd.DataFrame({"caption": ["a red thing"]}), "caption").vectors[0]
    best = np.argsort(-(photos @ query), kind="stable")[:5]
    assert hits["id"].tolist() == [f"sku-{i:03d}" for i in best]
    assert np.allclose(hits["score"], (photos @ query)[best], atol=1e-4)
    same = searcher.search(image=str(folder / "img" / "001.png"), k=3)
    assert same["id"].iloc[0] == "sku-001"
    with pytest.raises(DataError, match="not audio"):
        searcher.search(audio=str(folder / "img" / "001.png"))
    with pytest.raises(DataError, match="larger than the collection"):
        searcher.search(text="red", k=49)
    with pytest.raises(DataError, match="not found"):
        searcher.search(image=str(folder / "nope.png"))


def test_search_refuses_a_changed_or_missing_model(fitted, tmp_path):
    predictor, folder, model_dir = fitted
    copy = shutil.copytree(model_dir, tmp_path / "model")
    index_column(predictor, copy, str(folder / "pairs.csv"), "caption").save(tmp_path / "idx")
    moved = tmp_path / "moved"
    copy.rename(moved)
    with pytest.raises(ModelDirError, match="not there any more"):
        Searcher.open(tmp_path / "idx")
    assert len(Searcher.open(tmp_path / "idx", model_dir=moved).search(text="blue", k=2)) == 2
    # A different model version in the recorded place: its manifest differs.
    other = Predictor(config={**ALIGN, "seed": 1, "training": {**ALIGN["training"], "max_epochs": 1}},
                      verbose=False).fit(str(folder / "pairs.csv"))
    other.save(copy)
    with pytest.raises(ModelDirError, match="another version of the model"):
        Searcher.open(tmp_path / "idx")


def test_cli_embed_index_search_in_process(fitted, tmp_path):
    """The retrieval verbs on the fitted model (tests/e2e runs them as a user would, on real data)."""
    from typer.testing import CliRunner

    from polymodal.cli import app

    predictor, folder, model_dir = fitted
    runner = CliRunner()
    table = str(folder / "pairs.csv")
    result = runner.invoke(app, ["embed", str(model_dir), "--data", table, "--column", "photo",
                                 "--id-column", "item", "--out", str(tmp_path / "emb.parquet")])
    assert result.exit_code == 0, result.output
    vectors = pd.read_parquet(tmp_path / "emb.parquet")
    assert list(vectors.columns) == ["row", "id", "vector"] and len(vectors) == 48 and len(vectors["vector"][0]) == 8
    result = runner.invoke(app, ["index", str(model_dir), "--data", table, "--column", "photo",
                                 "--id-column", "item", "--out", str(tmp_path / "idx")])
    assert result.exit_code == 0 and "indexed 48 items" in result.output, result.output
    result = runner.invoke(app, ["search", str(tmp_path / "idx"), "--text", "a green thing", "-k", "3", "--json"])
    assert result.exit_code == 0, result.output
    assert pd.read_json(io.StringIO(result.stdout))["rank"].tolist() == [1, 2, 3]
    result = runner.invoke(app, ["search", str(tmp_path / "idx"), "--like", "sku-004", "--seen", "sku-008", "-k", "2"])
    assert result.exit_code == 0 and "sku-004" not in result.output and "sku-008" not in result.output
    for args, message in ((["--audio", table], "not audio"), (["--text", "x", "-k", "99"], "larger than"),
                          ([], "exactly one query")):
        result = runner.invoke(app, ["search", str(tmp_path / "idx"), *args])
        assert result.exit_code == 2 and message in result.output, result.output
