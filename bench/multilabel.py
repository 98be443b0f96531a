"""Multi-label benchmark: the CLDR keywords of each emoji from its image and name.

    POLYMODAL_DATA=../shared/data .venv/bin/python bench/multilabel.py

Keywords of ``emoji/cldr-annotations-en.xml`` that at least 10 training emoji share are the
labels (``polymodal.datasets.emoji_tags``); train / val / test are the benchmark's splits (val
is the tuning split: early stopping and each label's threshold). It prints micro-F1 and mean
average precision on the test emoji for polymodal with its default settings (``problem_type:
auto`` finds the list-valued label) and for a one-vs-rest logistic regression on the same
inputs (the image's 32×32 pixels and the name's TF-IDF; its thresholds tuned on val the same
way), each with its wall time.
"""
from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from polymodal import Predictor
from polymodal.datasets.emoji_tags import build_emoji_tags
from polymodal.tasks.multilabel import multilabel_metrics, tune_thresholds

CONFIG = {"label": "keywords", "columns": {"group": "ignore", "subgroup": "ignore"},
          "training": {"progress_bar": False}}


def _pixels(frame: pd.DataFrame, root: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(root / p).convert("RGB").resize((32, 32)), dtype=np.float32).ravel() / 255
                     for p in frame["image"]])


def baseline(tables: dict[str, pd.DataFrame], root: Path, classes: list[str]) -> dict:
    """One-vs-rest logistic regression on pixels + TF-IDF of the name (thresholds tuned on val)."""
    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=1).fit(tables["train"]["name"])
    features = {s: sparse.hstack([sparse.csr_matrix(_pixels(f, root)), tfidf.transform(f["name"])]).tocsr()
                for s, f in tables.items()}
    binarizer = MultiLabelBinarizer(classes=classes)
    target = {s: binarizer.fit_transform(f["keywords"]) for s, f in tables.items()}
    model = OneVsRestClassifier(LogisticRegression(C=4.0, max_iter=2000), n_jobs=1)
    model.fit(features["train"], target["train"])
    probs = {s: model.predict_proba(features[s]) for s in ("val", "test")}
    thresholds = tune_thresholds(probs["val"], target["val"].astype(np.float32))
    test = torch.tensor(probs["test"], dtype=torch.float32)
    decided = test >= torch.tensor(thresholds)
    return multilabel_metrics(test, decided, torch.tensor(target["test"], dtype=torch.float32), classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache" / "polymodal" / "emoji")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.getLogger("polymodal").setLevel(logging.WARNING)
    paths = build_emoji_tags(os.environ.get("POLYMODAL_DATA"), args.work_dir)
    tables = {s: pd.read_parquet(p) for s, p in paths.items()}
    for split, frame in tables.items():
        print(f"{split}: {len(frame):,} emoji, {frame['keywords'].map(len).mean():.2f} keywords each, "
              f"{int((frame['keywords'].map(len) == 0).sum()):,} with none")

    start = time.perf_counter()
    predictor = Predictor(config={**CONFIG, "seed": args.seed}, data_root=args.work_dir)
    predictor.fit(paths["train"], tuning_data=paths["val"])
    metrics = predictor.evaluate(paths["test"])
    seconds = time.perf_counter() - start
    classes = predictor.labels_["classes"]
    print(f"labels: {len(classes)} keywords; polymodal trained {predictor.fit_info_['epochs']} epochs")
    print(f"polymodal (default)          micro-F1 {metrics['f1_micro']:.4f}  mAP {metrics['map']:.4f}  "
          f"macro-F1 {metrics['f1_macro']:.4f}  ({seconds:.1f}s)")

    start = time.perf_counter()
    base = baseline(tables, args.work_dir, classes)
    print(f"one-vs-rest logistic (pixels + TF-IDF)  micro-F1 {base['f1_micro']:.4f}  mAP {base['map']:.4f}  "
          f"macro-F1 {base['f1_macro']:.4f}  ({time.perf_counter() - start:.1f}s)")


if __name__ == "__main__":
    main()
