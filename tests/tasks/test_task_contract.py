"""Contract tests over the task registry: every registered task builds, trains a step, scores,
predicts and survives save → load; and a task defined here, in the test, plugs in."""
from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from polymodal.builders import build_model, build_preprocessors
from polymodal.config import load_config
from polymodal.data import Collator, MultimodalDataset, Table
from polymodal.errors import ConfigError
from polymodal.fitted import FittedModel
from polymodal.generation import GenerativeModel
from polymodal.modeldir import load_model, save_model
from polymodal.tasks import Task, get_task, register_task, schema_of, task_names, unregister_task
from polymodal.tasks.base import check_scalar_label

N = 24
WORDS = ["red", "green", "blue"]


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    kind = [WORDS[i % 3] for i in range(N)]
    return pd.DataFrame({
        "note": [f"a {k} thing number {i}" for i, k in enumerate(kind)],
        "title": [f"{k} item" for k in kind],
        "size": rng.normal(size=N),
        "kind": kind,
        "price": rng.normal(10, 2, N),
        "picture": [str(_pictures() / f"{i % 3}.png") for i in range(N)],  # one 8×8 picture per kind
    })


@functools.lru_cache(maxsize=1)
def _pictures() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="polymodal-task-contract-"))
    for k in range(3):
        Image.fromarray(np.full((8, 8), 60 * (k + 1), dtype=np.uint8)).save(folder / f"{k}.png")
    return folder


_TINY = {"seed": 0, "text": {"encoder": {"name": "gru"}},
         "training": {"max_epochs": 1, "batch_size": 8, "progress_bar": False, "precision": "32"}}

# One example config per registered task; a new task adds its own (the test below insists).
EXAMPLES: dict[str, dict[str, Any]] = {
    "classification": {**_TINY, "label": "kind", "columns": {"title": "ignore", "picture": "ignore"}},
    "multilabel": {**_TINY, "label": "title", "label_delimiter": " ", "columns": {"picture": "ignore"}},
    "multioutput": {**_TINY, "label": ["kind", "price"], "columns": {"title": "ignore", "picture": "ignore"},
                    "head": {"loss_weights": {"price": 0.5}}},
    "regression": {**_TINY, "label": "price", "columns": {"title": "ignore", "picture": "ignore"}},
    "alignment": {**_TINY, "problem_type": "alignment", "label": "kind",
                  "align": {"columns": ["note", "title"], "dim": 4, "match": "label"}},
    "generation": {**_TINY, "problem_type": "generation", "label": "kind",
                   "image": {"preprocess": {"size": 8, "grayscale": True}},
                   "generate": {"target": "picture", "model": "vae", "latent_dim": 4, "width": 4}},
}


def test_every_registered_task_has_an_example():
    assert set(task_names()) <= set(EXAMPLES), "add an example config for the new task to EXAMPLES"


def _fitted(name: str, config: Any = None) -> tuple[FittedModel, Table]:
    torch.manual_seed(0)
    config = config or load_config(EXAMPLES[name])
    table = Table(_frame(), ".", "tiny")
    schema = schema_of(table.frame, config)
    task = get_task(schema.problem_type)
    labels = task.fit_labels(table.frame, schema, config)
    assert json.loads(json.dumps(labels)) == labels  # labels.json round-trips
    fitted = FittedModel(config, schema, labels, build_preprocessors(config, schema))
    for pre in fitted.preprocessors.values():
        pre.fit(table.frame, table.base_dir)
    fitted.model = build_model(config, schema, fitted.preprocessors, labels)
    return fitted, table


@pytest.mark.parametrize("name", task_names())
def test_task_contract(name, tmp_path):
    fitted, table = _fitted(name)
    task = fitted.task
    assert fitted.schema.problem_type == name == task.name
    loaded, target = fitted.load_inputs(table, labelled=True)
    assert len(loaded) == N and target.shape[0] == N
    monitor, mode = task.monitor("val_loss")
    assert monitor.startswith("val_") and mode in ("min", "max")

    # one training step: a finite loss whose gradients reach the encoders
    model = fitted.model.train()
    batch = next(iter(torch.utils.data.DataLoader(MultimodalDataset(loaded, fitted.preprocessors, target),
                                                  batch_size=8, collate_fn=Collator(fitted.preprocessors))))
    if isinstance(model, GenerativeModel):  # a model of the task's own: its losses
        output, loss = None, model.loss(batch, 1.0)[0]
    elif model.aligner is None:
        output, _ = model(batch)
        loss = model.head.loss(output, batch["target"])
    else:
        output, aligned = model.forward_aligned(batch)
        loss = model.aligner.loss(aligned, batch["target"] if task.targets_are_groups else None)
        if output is not None:
            loss = loss + model.head.loss(output, batch["target"])
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.encoders.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)

    metrics, confusion = fitted.score(loaded, target)
    assert metrics["n"] == N and all(np.isfinite(v) for v in metrics.values() if isinstance(v, float))
    if task.metric_name is not None:
        assert task.metric_name in metrics
    assert task.has_head == (model.head is not None)
    if task.has_head:
        report = fitted.predict(table)
        assert len(report.predictions) == N and np.asarray(report.predictions.notna()).all()
        assert (report.probabilities is None) == (task.probabilities(fitted.forward(loaded)) is None)
    else:
        with pytest.raises(ConfigError, match="no label to predict|makes samples, not predictions"):
            fitted.predict(table)

    # save → load: the same outputs
    again = load_model(save_model(fitted, tmp_path / "model"))
    a, b = fitted.forward(loaded), again.forward(again.load_inputs(table, labelled=True)[0])
    if isinstance(a, dict):
        assert sorted(a) == sorted(b) and all(np.allclose(a[k], b[k], atol=1e-6) for k in a)
    else:
        torch.testing.assert_close(a, b)


# --- a task defined here: is the label above the training median? ---------------------


class _AboveMedian(Task):
    name = "above_median_test"
    metric_name = "accuracy"
    summary = ("accuracy",)

    def check_label(self, y: pd.Series, label: str) -> str:
        check_scalar_label(y, label)
        return f"above_median: numbers around {float(y.median()):g}"

    def fit_labels(self, frame, schema, config):
        return {"problem_type": self.name, "median": float(frame[schema.label].median()), "classes": [0, 1]}

    def encode_target(self, frame, schema, labels, config, what, unknown):
        return (frame[schema.label].to_numpy(dtype=float) > labels["median"]).astype(np.int64)

    def build_head(self, in_dim, labels, config):
        from polymodal.heads import get_head

        return get_head("classification")(in_dim, 2, hidden=config.hidden, dropout=config.dropout)

    def training_metric(self, labels):
        import torchmetrics

        return torchmetrics.Accuracy(task="binary")

    def update_metric(self, metric, head, output, target):
        metric(output.detach().argmax(dim=-1), target)

    def read_out(self, head, output):
        return head.probabilities(output)

    def concat(self, parts, labels):
        return torch.cat(parts) if parts else torch.zeros((0, 2))

    def predictions(self, outputs, labels):
        return outputs.argmax(dim=1).numpy().astype(bool)

    def score(self, outputs, target, labels, loaded):
        return {"accuracy": float((outputs.argmax(1) == target).float().mean()), "n": len(target)}, None


@pytest.fixture()
def extra_task():
    task = register_task(_AboveMedian())
    yield task
    unregister_task(task.name)


def test_a_task_registered_by_a_test_builds_encodes_and_fits(extra_task, tmp_path):
    from polymodal.pipeline import fit

    config = load_config({**_TINY, "label": "price", "columns": {"title": "ignore"},
                          "problem_type": extra_task.name})  # a registered task is a problem_type
    fitted, table = _fitted(extra_task.name, config)
    assert fitted.schema.reasons["price"].startswith("above_median")
    _, target = fitted.load_inputs(table, labelled=True)
    assert target.tolist() == (table.frame.price > table.frame.price.median()).astype(int).tolist()
    assert fitted.model.head(torch.randn(3, fitted.model.fusion.out_dim)).shape == (3, 2)

    trained = fit(config, _frame(), say=lambda message: None)
    assert trained.task is extra_task and "accuracy" in trained.metrics
    assert trained.predict(_frame()).predictions.dtype == object
    assert {"val_loss", "val_accuracy"} <= set(trained.history.columns)

    # saved and loaded like any model: the task's name is all the directory records of it
    again = load_model(save_model(trained, tmp_path / "extra"))
    assert again.task is extra_task
    torch.testing.assert_close(again.forward(again.load_inputs(table)[0]), trained.forward(trained.load_inputs(table)[0]))
