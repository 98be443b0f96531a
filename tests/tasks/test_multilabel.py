"""Multi-label classification on real emoji keywords: label cells as lists and delimited text,
thresholds tuned on the tuning split, metrics, the CLI end to end, and the bad inputs."""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from polymodal import Predictor
from polymodal.config import load_config
from polymodal.datasets.emoji_tags import build_emoji_tags
from polymodal.errors import ConfigError, DataError
from polymodal.tasks import schema_of
from polymodal.tasks.label_sets import label_sets
from polymodal.tasks.multilabel import multilabel_metrics, tune_thresholds

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = {"label": "keywords", "columns": {"group": "ignore", "subgroup": "ignore"}, "seed": 0,
        "text": {"encoder": {"name": "gru"}},
        "image": {"preprocess": {"size": 16}, "encoder": {"name": "cnn", "channels": [8, 16]}},
        "training": {"max_epochs": 2, "batch_size": 32, "progress_bar": False, "precision": "32"}}


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "polymodal.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def emoji(data_dir, tmp_path_factory) -> dict[str, Path]:
    """A small copy of the emoji benchmark (the first emoji of each split, the real font and keywords)."""
    root = tmp_path_factory.mktemp("emoji-tags")
    (root / "data" / "emoji").mkdir(parents=True)
    splits = pd.read_csv(data_dir / "emoji" / "splits.csv", dtype=str)
    small = pd.concat([splits[splits.split == s].head(n) for s, n in (("train", 240), ("val", 60), ("test", 60))])
    small.to_csv(root / "data" / "emoji" / "splits.csv", index=False)
    for name in ("NotoColorEmoji.ttf", "cldr-annotations-en.xml"):
        (root / "data" / "emoji" / name).symlink_to(data_dir / "emoji" / name)
    return build_emoji_tags(root / "data", root / "work", min_count=3)


def test_the_emoji_keywords_are_lists_of_the_kept_keywords(emoji):
    train = pd.read_parquet(emoji["train"])
    assert list(train.columns) == ["image", "name", "keywords", "group", "subgroup"]
    counts = pd.Series([k for tags in train["keywords"] for k in tags]).value_counts()
    assert counts.min() >= 3 and "face" in counts.index
    assert (train["keywords"].map(len) == 0).any()  # emoji without a shared keyword stay, with none


def test_label_cells_are_read_as_sets():
    y = pd.Series([["b", "a", "a"], [], np.array(["c"]), None], name="tags")
    assert label_sets(y, "tags", None) == [("a", "b"), (), ("c",), None]
    text = pd.Series(["cat|dog", "", None, " dog | bird "], name="tags")
    assert label_sets(text, "tags", "|") == [("cat", "dog"), (), (), ("bird", "dog")]
    with pytest.raises(DataError, match=r"mixes lists of labels \(1 rows\) with single values \(1 rows"):
        label_sets(pd.Series([["a"], "b"]), "tags", None)
    with pytest.raises(DataError, match="label_delimiter"):
        label_sets(pd.Series(["a|b", "c"]), "tags", None)


def test_auto_finds_a_list_label_and_bad_labels_are_refused(emoji):
    frame = pd.read_parquet(emoji["train"])
    schema = schema_of(frame, load_config(FAST))
    assert schema.problem_type == "multilabel" and schema.reasons["keywords"].startswith("multilabel: ")
    holed = frame.assign(keywords=[None] + frame["keywords"].tolist()[1:])
    with pytest.raises(DataError, match=f"missing in 1 of {len(frame)} rows"):
        schema_of(holed, load_config(FAST))
    with pytest.raises(ConfigError, match="head.loss"):
        Predictor(config={**FAST, "head": {"loss": "mse"}}).fit(frame.head(60))
    with pytest.raises(ConfigError, match="threshold"):
        load_config({**FAST, "head": {"threshold": 1.5}})


def test_thresholds_are_tuned_per_label_for_f1():
    probs = np.array([[0.9, 0.2], [0.7, 0.35], [0.3, 0.1], [0.1, 0.3]], dtype=np.float32)
    target = np.array([[1, 1], [1, 1], [0, 0], [0, 0]], dtype=np.float32)
    # label a: any threshold in (0.3, 0.7] separates it (0.5 is the nearest 0.5); label b cannot be
    # separated (a negative at 0.3 above a positive at 0.2): t in (0.1, 0.2] has the best F1, 0.8
    assert tune_thresholds(probs, target) == [0.5, 0.2]
    assert tune_thresholds(probs, np.zeros_like(target)) == [0.5, 0.5]  # nothing to tune on
    metrics = multilabel_metrics(torch.tensor(probs), torch.tensor(probs >= 0.5), torch.tensor(target), ["a", "b"])
    assert metrics["f1_micro"] == pytest.approx(4 / 6)  # 2 hits, no false alarm, 2 misses (label b)
    assert metrics["per_label_f1"] == {"a": 1.0, "b": 0.0}
    assert metrics["map"] == pytest.approx((1.0 + (1 + 2 / 3) / 2) / 2)  # AP of b: hits at ranks 1 and 3


def test_fit_predict_save_load_on_real_emoji(emoji, tmp_path):
    work = emoji["train"].parent
    predictor = Predictor(config=FAST, data_root=work).fit(emoji["train"], tuning_data=emoji["val"])
    labels = predictor.labels_
    assert labels["problem_type"] == "multilabel" and len(labels["thresholds"]) == len(labels["classes"])
    metrics = predictor.evaluate(emoji["test"])
    for key in ("f1_micro", "f1_macro", "map", "subset_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    assert set(metrics["per_label_f1"]) <= set(labels["classes"])
    report = predictor.predict_report(emoji["test"])
    assert list(report.probabilities.columns) == [str(c) for c in labels["classes"]]
    probs = report.probabilities.to_numpy()
    chosen = [sorted(c for c, p, t in zip(labels["classes"], row, labels["thresholds"]) if p >= t) for row in probs]
    assert [sorted(p) for p in report.predictions] == chosen
    again = Predictor.load(predictor.save(tmp_path / "model"), data_root=work)
    assert again.labels_["thresholds"] == labels["thresholds"]
    np.testing.assert_allclose(again.predict_report(emoji["test"]).probabilities.to_numpy(), probs, atol=1e-6)


def test_cli_on_a_csv_with_delimited_labels(emoji, tmp_path):
    work = emoji["train"].parent
    for split in ("train", "test"):
        frame = pd.read_parquet(emoji[split])
        frame.assign(keywords=frame["keywords"].map("|".join)).to_csv(work / f"tags-{split}.csv", index=False)
    config = tmp_path / "multilabel.yaml"
    config.write_text(yaml.safe_dump({**FAST, "label_delimiter": "|"}))
    cli = functools.partial(_cli, work)

    fit = cli("fit", "--train", "tags-train.csv", "--config", str(config), "--out", str(tmp_path / "m"))
    assert fit.returncode == 0, fit.stderr
    assert "Labels: " in fit.stderr and "multilabel: " in fit.stderr
    evaluate = cli("evaluate", str(tmp_path / "m"), "--data", "tags-test.csv", "--json")
    assert evaluate.returncode == 0, evaluate.stderr
    metrics = json.loads(evaluate.stdout)
    assert {"f1_micro", "map", "per_label_f1"} <= set(metrics)
    predict = cli("predict", str(tmp_path / "m"), "--data", "tags-test.csv", "--out", str(tmp_path / "p.csv"))
    assert predict.returncode == 0, predict.stderr
    out = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)
    classes = json.loads((tmp_path / "m" / "labels.json").read_text())["classes"]
    assert [c for c in out.columns if c.startswith("proba_")] == [f"proba_{c}" for c in classes]
    predicted = [set(v.split("|")) - {""} for v in out["predicted_keywords"]]
    assert all(p <= set(classes) for p in predicted)


# --- several labels in one model (problem_type: multioutput) ---------------------------


def test_several_labels_in_one_model_through_the_cli(emoji, tmp_path):
    """group (classes), keywords (a set) and the number of keywords (a number), one trunk, a head each."""
    work = emoji["train"].parent
    for split in ("train", "test"):
        frame = pd.read_parquet(emoji[split])
        frame.assign(n_keywords=frame["keywords"].map(len).astype(float) + 0.5).to_parquet(work / f"mo-{split}.parquet")
    config = tmp_path / "several.yaml"
    config.write_text(yaml.safe_dump({**FAST, "label": None, "columns": {"subgroup": "ignore"},
                                      "head": {"loss_weights": {"group": 2.0}}}))
    cli = functools.partial(_cli, work)

    wrong = cli("fit", "--train", "mo-train.parquet", "--config", str(config), "--out", str(tmp_path / "w"),
                "--label", "group", "--label", "nope")
    assert wrong.returncode != 0 and "label column 'nope' not in the table" in wrong.stderr
    assert not (tmp_path / "w").exists()
    fit = cli("fit", "--train", "mo-train.parquet", "--config", str(config), "--out", str(tmp_path / "m"),
              "--label", "group", "--label", "keywords", "--label", "n_keywords")
    assert fit.returncode == 0, fit.stderr
    for line in ("group     label  classification", "keywords  label  multilabel", "n_keywords  label  regression"):
        assert " ".join(line.split()) in " ".join(fit.stderr.split())
    labels = json.loads((tmp_path / "m" / "labels.json").read_text())
    assert [t["column"] for t in labels["outputs"]] == ["group", "keywords", "n_keywords"]
    assert labels["loss_weights"] == [2.0, 1.0, 1.0]
    history = pd.read_csv(tmp_path / "m" / "history.csv")  # the mean of accuracy, micro-F1 and R², per epoch
    assert {"train_score", "val_score"} <= set(history.columns) and history["val_score"].le(1.0).all()
    evaluate = cli("evaluate", str(tmp_path / "m"), "--data", "mo-test.parquet", "--json")
    assert evaluate.returncode == 0, evaluate.stderr
    metrics = json.loads(evaluate.stdout)
    assert {"group.accuracy", "keywords.f1_micro", "keywords.map", "n_keywords.rmse"} <= set(metrics)
    parts = (metrics["group.accuracy"], metrics["keywords.f1_micro"], metrics["n_keywords.r2"])
    assert metrics["score"] == pytest.approx(np.mean(parts))
    predict = cli("predict", str(tmp_path / "m"), "--data", "mo-test.parquet", "--out", str(tmp_path / "p.csv"))
    assert predict.returncode == 0, predict.stderr
    out = pd.read_csv(tmp_path / "p.csv", keep_default_na=False)
    assert {"predicted_group", "predicted_keywords", "predicted_n_keywords"} <= set(out.columns)
    groups = labels["outputs"][0]["labels"]["classes"]
    assert set(out["predicted_group"]) <= set(groups)
    assert [c for c in out.columns if c.startswith("proba_group=")] == [f"proba_group={g}" for g in groups]
    assert pd.to_numeric(out["predicted_n_keywords"]).notna().all()


def test_several_labels_bad_settings(emoji):
    frame = pd.read_parquet(emoji["train"])
    base = {**FAST, "label": ["group", "subgroup"], "columns": {}}
    with pytest.raises(ConfigError, match="head.targets names \\['nope'\\], which are not labels"):
        schema_of(frame, load_config({**base, "head": {"targets": {"nope": "regression"}}}))
    with pytest.raises(ConfigError, match="head.targets.group: 'alignment' is not a task"):
        schema_of(frame, load_config({**base, "head": {"targets": {"group": "alignment"}}}))
    with pytest.raises(ConfigError, match="needs problem_type: auto or multioutput"):
        schema_of(frame, load_config({**base, "problem_type": "classification"}))
    with pytest.raises(ConfigError, match="head.loss_weights names \\['nope'\\]"):
        Predictor(config={**base, "columns": {"keywords": "ignore"}, "head": {"loss_weights": {"nope": 1.0}}},
                  data_root=emoji["train"].parent).fit(emoji["train"])
    with pytest.raises(DataError, match="label column 'nope' not in the table; columns are: "):
        schema_of(frame, load_config({**base, "label": ["group", "nope"]}))
    with pytest.raises(DataError, match="regression needs numbers"):
        schema_of(frame, load_config({**base, "head": {"targets": {"group": "regression"}}}))


def test_the_score_of_several_labels_is_the_mean_of_their_metrics():
    import torchmetrics

    from polymodal.tasks.mean_metric import MeanOfMetrics

    score = MeanOfMetrics({"a": torchmetrics.Accuracy(task="multiclass", num_classes=3), "b": torchmetrics.R2Score()})
    score.parts["a"].update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 1]))  # accuracy 0.5
    score.parts["b"].update(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 4.0]))
    score.update()
    r2 = 1 - 1 / np.var([1.0, 2.0, 4.0]) / 3
    assert score.values() == pytest.approx({"a": 0.5, "b": r2})
    assert float(score.compute()) == pytest.approx((0.5 + r2) / 2)
    score.reset()
    score.parts["a"].update(torch.tensor([1]), torch.tensor([1]))
    score.parts["b"].update(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]))
    score.update()
    assert float(score.compute()) == pytest.approx(1.0)  # nothing of the batch before the reset is left


def test_several_labels_early_stop_on_their_mean_score_and_a_monitor_not_logged_is_refused():
    from polymodal.tasks import get_task
    from polymodal.training.fit import resolve_monitor

    assert resolve_monitor("auto", get_task("multioutput")) == ("val_score", "max")
    assert resolve_monitor("val_loss", get_task("multioutput")) == ("val_loss", "min")
    assert resolve_monitor("auto", get_task("classification")) == ("val_loss", "min")
    assert resolve_monitor("val_f1_micro", get_task("multilabel")) == ("val_f1_micro", "max")
    with pytest.raises(ConfigError, match="val_score is not logged by a classification model; use val_loss or "
                                          "val_accuracy"):
        resolve_monitor("val_score", get_task("classification"))
