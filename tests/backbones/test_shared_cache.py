"""Processes that share a feature cache compute each frozen feature once: the one that comes
first computes under a lock on the store, the others wait and read what it stored (the
processes of a DDP run started by torchrun all reach the cache at the same moment)."""
from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

import pandas as pd
from tiny_models import sentences
from tiny_models import tiny_backbone  # noqa: F401  (a fixture)

from polymodal.backbones.feature_cache import prepare_backbone_inputs
from polymodal.builders import build_model, build_preprocessors
from polymodal.config import load_config
from polymodal.fitted import FittedModel, as_table
from polymodal.tasks import get_task, schema_of


def _prepare(config, path: Path) -> dict:
    """What one process of a run does before training: fit, load, build, then the features."""
    table = as_table(path)
    schema = schema_of(table.frame, config)
    labels = get_task(schema.problem_type).fit_labels(table.frame, schema, config)
    fitted = FittedModel(config, schema, labels, build_preprocessors(config, schema))
    for pre in fitted.preprocessors.values():
        pre.fit(table.frame, table.base_dir)
    loaded, _ = fitted.load_inputs(table, labelled=True)
    model = build_model(config, schema, fitted.preprocessors, labels)
    return prepare_backbone_inputs(model, fitted.preprocessors, loaded, config.training)


def test_concurrent_runs_compute_each_feature_once(tiny_backbone, tmp_path, caplog):
    source = tmp_path / "bert"
    shutil.copytree(tiny_backbone("bert"), source)
    pd.DataFrame({"x": sentences(40), "label": ["pos", "neg"] * 20}).to_csv(tmp_path / "train.csv", index=False)
    config = load_config({"label": "label", "columns": {"x": "text"}, "text": {"backbone": str(source)},
                          "training": {"precision": "32", "cache_dir": str(tmp_path / "cache")}})
    start, stats, errors = threading.Barrier(3), [], []

    def one_process() -> None:
        try:
            start.wait()
            stats.append(_prepare(config, tmp_path / "train.csv")["x"])
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=one_process) for _ in range(3)]
    with caplog.at_level(logging.INFO, logger="polymodal"):
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
    assert not errors, errors
    computed = [line for line in caplog.text.splitlines() if "computing frozen" in line]
    assert len(computed) == 1, computed
    assert sorted(s["misses"] for s in stats) == [0, 0, 40]
    assert all(s["hits"] + s["misses"] == 40 for s in stats)
