"""Scores of a generation model, measured by a reference classifier of the generated column.

- ``conditional_accuracy``: the share of samples (one per test row, made from the row's
  conditions, the target hidden) that the reference classifier labels as the row's class;
- ``cas`` (classification accuracy score, Ravuri & Vinyals 2019): a classifier of the
  reference's architecture trained only on samples (one per training row), scored on the
  real test rows;
- ``frechet_distance``: between the reference's fused features of the real test targets and
  of the samples (as FID does with Inception features);
- VAEs: the test ``elbo`` (nats per row), ``nll``, ``kl`` and ``mse``.

The reference is a fitted classifier that reads the target column (one the user names), or
one trained here on the real training table (``reference_config``).
"""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import linalg

from polymodal.config import load_config
from polymodal.data import Collator, MultimodalDataset
from polymodal.data.tables import Table
from polymodal.errors import ConfigError, DataError
from polymodal.fitted import as_fitted
from polymodal.generation.sample import generate
from polymodal.pipeline import fit

__all__ = ["evaluate_generation", "reference_config", "features", "frechet_distance"]

log = logging.getLogger("polymodal")


def reference_config(fitted: Any) -> dict[str, Any]:
    """A classifier of the generated column → the label, with the generation model's
    preprocessing of that column and its modality's default encoder."""
    labels = fitted.labels
    if not labels.get("label"):
        raise ConfigError("scoring samples needs the class of each row: fit the generation model with label:")
    target = labels["targets"][0] if len(labels["targets"]) == 1 else None
    config = fitted.config.model_dump(mode="json")
    keep = {"seed": config["seed"], "on_bad_input": config["on_bad_input"]}
    sections = {m: {"preprocess": config[m]["preprocess"]} for m in config
                if isinstance(config.get(m), dict) and "preprocess" in config[m]}
    return {"label": labels["label"], "problem_type": "classification", **keep, **sections,
            "columns": {t: fitted.schema.roles[t] for t in ([target] if target else labels["targets"])},
            "training": {"max_epochs": 10, "progress_bar": False, "precision": config["training"]["precision"]}}


def _classifier(config: dict[str, Any], target: str, table: pd.DataFrame, base: Path, what: str) -> Any:
    """A classifier of ``config`` fitted on ``table``'s target column and label (quietly)."""
    config = {**config, "columns": {target: config.get("columns", {}).get(target, "image")}}
    frame = table[[target, config["label"]]]
    return fit(load_config(config), Table(frame, base, what), say=log.debug)


def features(reference: Any, table: Any) -> np.ndarray:
    """``[N, D]`` the reference classifier's fused features of a table's rows."""
    loaded, _ = reference.load_inputs(reference.read_table(table))
    model = reference.model.eval()
    loader = torch.utils.data.DataLoader(MultimodalDataset(loaded, reference.preprocessors), batch_size=256,
                                         collate_fn=Collator(reference.preprocessors))
    out = []
    with torch.no_grad():
        for batch in loader:
            encoded = model.encode(batch["inputs"], batch["present"])
            out.append(model.fusion(encoded, batch["present"]).fused.float())
    return torch.cat(out).numpy().astype(np.float64)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``|mu_a - mu_b|² + tr(S_a + S_b - 2 (S_a S_b)^½)`` between two ``[N, D]`` feature sets."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(s_a @ s_b)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a + s_b - 2.0 * np.real(root)))


def evaluate_generation(fitted: Any, test: Any, reference: Any = None, train: Any = None, target: str | None = None,
                        seed: int = 0, cas: bool = True, cas_rows: int | None = None) -> dict[str, Any]:
    """Every score of the module docstring on a labelled test table.

    Args:
        reference: a fitted classifier of the target column (``FittedModel`` or Predictor);
            None: one is trained on ``train``.
        train: the real training table: the reference's data when none is given, and the
            conditions CAS generates its training samples from (``cas_rows`` of them at most).
        target: the generated column (a multimodal VAE: which one; the others are its source).

    Raises:
        ConfigError: no label in the model, no reference and no training table.
    """
    started = time.perf_counter()
    label = fitted.labels.get("label")
    if not label:
        raise ConfigError("scoring samples needs the class of each row: fit the generation model with label:")
    if reference is None and train is None:
        raise ConfigError("scoring samples needs a reference classifier of the generated column: name one "
                          "(--reference DIR) or give the real training table (--train TABLE) to train it on")
    test_table = fitted.read_table(test, fill_absent=False)
    if label not in test_table.frame.columns:
        raise DataError(f"{test_table.source}: no label column {label!r}; the samples are scored against it")
    frame = test_table.frame.reset_index(drop=True)
    metrics: dict[str, Any] = {}
    made_target = target or (fitted.labels["targets"][0] if len(fitted.labels["targets"]) == 1 else None)
    if made_target is None:
        raise ConfigError(f"name the column to score (target=...); this model generates {fitted.labels['targets']}")
    if made_target in frame.columns and fitted.labels["model"] != "gan":
        metrics.update(fitted.evaluate(test_table).metrics)  # the test ELBO (VAEs)
    train_table = fitted.read_table(train, fill_absent=False) if train is not None else None
    with tempfile.TemporaryDirectory(prefix="polymodal-samples-") as tmp:
        work = Path(tmp)
        if reference is None:
            log.info("Training the reference classifier of %r on %s", made_target, train_table.source)
            reference = _classifier(reference_config(fitted), made_target, train_table.frame, train_table.base_dir,
                                    f"{train_table.source} (reference classifier)")
        reference = as_fitted(reference)
        made = generate(fitted, test_table, n=1, seed=seed, target=made_target, out=work / "test", keep_arrays=False)
        truth = frame[label].iloc[made.table["row"].to_numpy()].to_numpy()
        generated = pd.DataFrame({made_target: [str(work / "test" / p) for p in made.table[made_target]],
                                  label: truth})
        predicted = reference.predict(generated).predictions.astype(str).to_numpy()
        metrics["conditional_accuracy"] = float(np.mean(predicted == truth.astype(str)))
        real = frame.loc[frame[made_target].notna(), [made_target, label]] if made_target in frame.columns else None
        if real is not None and len(real):
            real_table = Table(real, test_table.base_dir, test_table.source)
            metrics["reference_accuracy_real"] = reference.evaluate(real_table).metrics["accuracy"]
            metrics["frechet_distance"] = frechet_distance(features(reference, real_table), features(reference, generated))
        if cas and train_table is not None and real is not None and len(real):
            rows = train_table.frame.reset_index(drop=True)
            if cas_rows is not None and len(rows) > cas_rows:
                rows = rows.sample(cas_rows, random_state=seed).reset_index(drop=True)
            cond = Table(rows, train_table.base_dir, f"{train_table.source} (CAS conditions)")
            fake = generate(fitted, cond, n=1, seed=seed + 1, target=made_target, out=work / "cas", keep_arrays=False)
            fake_table = pd.DataFrame({made_target: [str(work / "cas" / p) for p in fake.table[made_target]],
                                       label: rows[label].iloc[fake.table["row"].to_numpy()].to_numpy()})
            config = {**reference.config.model_dump(mode="json"), "label": label}
            cas_model = _classifier(config, made_target, fake_table, work, "generated samples (CAS)")
            metrics["cas"] = cas_model.evaluate(Table(real, test_table.base_dir, test_table.source)).metrics["accuracy"]
            metrics["cas_train_rows"] = len(fake_table)
    metrics["n_scored"] = len(generated)
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    return metrics
