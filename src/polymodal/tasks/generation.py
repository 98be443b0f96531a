"""Generation: make a column (an image, a sound) from the row's other columns.

The schema holds the generated columns (``generate.target``, or ``generate.columns`` for a
multimodal VAE) and the conditioning ones (``generate.conditions``; by default every other
column the schema can read, the label too); the rest is ignored. ``label:`` is optional: the
class each row shows, which the evaluation's reference classifier checks the samples
against (and a condition unless ``conditions`` leaves it out). The batch target is the
row's class index (0 without a label). The model and its training come from
``polymodal.generation``.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from polymodal.data.schema import Schema, infer_role, is_missing
from polymodal.errors import ConfigError, DataError
from polymodal.modalities.base import modality_of_role
from polymodal.tasks.base import Task, register_task
from polymodal.tasks.classification import json_scalar

__all__ = ["GenerationTask", "generation_schema"]

log = logging.getLogger("polymodal")


def _generated(config: Any) -> list[str]:
    g = config.generate
    return list(g.columns) if g.model == "mvae" else [g.target]


def generation_schema(frame: pd.DataFrame, config: Any) -> Schema:
    """Roles of the generated and conditioning columns; every other column ignored.

    Raises:
        DataError: a named column is not in the table.
        ConfigError: a generated column is not of a modality that can be generated.
    """
    g, targets = config.generate, _generated(config)
    wanted = [*targets, *(g.conditions or []), *([config.label] if config.label else [])]
    missing = [c for c in dict.fromkeys(wanted) if c not in frame.columns]
    if missing:
        raise DataError(f"column(s) {', '.join(map(repr, missing))} named in the config are not in the "
                        f"table; columns are: {', '.join(map(str, frame.columns))}")
    conditions = g.conditions if g.conditions is not None else [c for c in frame.columns if c not in targets]
    clash = [c for c in conditions if c in targets]
    if clash:
        raise ConfigError(f"generate.conditions names the generated column(s) {clash}; a column is "
                          "generated or a condition, not both")
    roles, reasons = {}, {}
    for column in frame.columns:
        if column not in targets and column not in conditions:
            roles[column], reasons[column] = "ignore", "not generated and not a condition"
            continue
        if column in config.columns:
            role, why = config.columns[column], "set in columns:"
        elif column == config.label:  # the label's values are classes, whatever they look like
            role, why = "categorical", f"the label's {frame[column].nunique():,} classes"
        else:
            role, why = infer_role(frame[column])
        roles[column] = role
        reasons[column] = ("generated; " if column in targets else "condition; ") + why
    for column in targets:
        modality = modality_of_role(roles[column])
        if modality is None or modality.decoding is None:
            raise ConfigError(f"generate: column {column!r} has role {roles[column]!r}, which cannot be "
                              "generated; generate an image or audio column (set its role in columns: if "
                              "it was inferred wrongly)")
    return Schema(label=None, problem_type=GenerationTask.name, roles=roles, reasons=reasons)


class GenerationTask(Task):
    """Trains a generation model; its outputs are samples, its scores likelihoods."""

    name = "generation"
    reads_label = False
    has_head = False
    summary = ("elbo", "mse", "nll", "kl", "d_real", "d_fake")

    def settings_problems(self, config: Any) -> list[str]:
        if config.generate is None:
            return ["problem_type: generation needs a generate: section, e.g. generate: {target: image, "
                    "model: vae} (or model: mvae with columns: [image, audio])"]
        return []

    def config_problems(self, config: Any, schema: Schema) -> list[str]:
        from polymodal.fusion import get_fusion

        problems = []
        name = dict(config.fusion).get("name", "concat")
        if getattr(get_fusion(name), "head_wrapper", None):
            problems.append(f"fusion: {name!r} gives each input its own head; a generation model needs one "
                            "fused condition vector: use concat, gated, attention, ...")
        g = config.generate
        if g.model == "gan" and g.discriminator == "auxiliary" and not config.label:
            problems.append("generate.discriminator: auxiliary needs label: (the class column the "
                            "discriminator learns to tell); set it, or use discriminator: projection")
        if g.label_weight and not config.label:
            problems.append(f"generate.label_weight needs label: (the class column the {g.model} learns to "
                            "tell from its inputs); set it, or remove label_weight")
        elif g.label_weight and g.model == "gan" and (g.conditions is None or config.label in g.conditions):
            problems.append(f"generate.label_weight: the label {config.label!r} is itself a condition of the gan, "
                            "so there is nothing to learn; name the other conditions (e.g. generate.conditions: "
                            "[image]) or remove label_weight")
        for column in _generated(config):
            section = config.for_column(column, modality_of_role(schema.roles[column]).name)
            if section.backbone is not None:
                problems.append(f"generate: column {column!r} uses a pretrained backbone; a generated "
                                "column needs the plain preprocessing: remove backbone: for it")
        return problems

    def custom_schema(self, frame: pd.DataFrame, config: Any) -> Schema:
        return generation_schema(frame, config)

    def fit_labels(self, frame: pd.DataFrame, schema: Schema, config: Any) -> dict[str, Any]:
        g = config.generate
        conditions = [c for c, r in schema.roles.items() if r != "ignore" and c not in _generated(config)]
        labels: dict[str, Any] = {"problem_type": self.name, "model": g.model, "targets": _generated(config),
                                  "conditions": conditions, "label": config.label or None}
        if config.label:
            values = frame[config.label][~is_missing(frame[config.label])]
            labels["classes"] = [json_scalar(c) for c in sorted(pd.unique(values).tolist(),
                                                                key=lambda v: (str(type(v)), v))]
        labels["condition_values"] = {
            c: sorted({str(json_scalar(v)) for v in frame[c][~is_missing(frame[c])]})
            for c in conditions if schema.roles[c] == "categorical"}
        return labels

    def encode_target(self, frame: pd.DataFrame, schema: Schema, labels: Mapping[str, Any], config: Any,
                      what: str, unknown: str) -> np.ndarray:
        """The class index of each row's label (0 for every row without ``label:``)."""
        label = labels.get("label")
        if not label:
            return np.zeros(len(frame), dtype=np.int64)
        if label not in frame.columns:
            raise DataError(f"{what}: the label column {label!r} is missing; the generation model was "
                            "trained with it")
        index = {str(c): i for i, c in enumerate(labels["classes"])}
        codes = np.array([index.get(str(json_scalar(v)), -1) for v in frame[label]], dtype=np.int64)
        bad = int((codes < 0).sum())
        if bad and unknown == "error":
            raise DataError(f"{what}: {bad} row(s) have a label {label!r} the model does not know (or none); "
                            f"known: {', '.join(map(str, labels['classes']))}. Drop or fix those rows")
        return codes

    def augmented(self, labels: Mapping[str, Any], names: list[str]) -> list[str]:
        """The conditions only: a generated input is learnt as it is (an augmented target
        would teach shifted pictures, and SpecAugment's zeros are loud, not silent)."""
        return [n for n in names if n not in labels["targets"]]

    def build_model(self, config: Any, preprocessors: Mapping[str, Any], labels: Mapping[str, Any],
                    encoders: Mapping[str, nn.Module], make_encoder: Any, make_fusion: Any) -> nn.Module:
        from polymodal.generation import build_generative_model

        return build_generative_model(config.generate, preprocessors, encoders, make_encoder, make_fusion, labels)

    def monitor(self, requested: str) -> tuple[str, str]:
        return "val_monitor", "min"  # VAEs: the tuning negative ELBO; a GAN: the latest epoch

    def batch_outputs(self, model: nn.Module, batch: Mapping[str, Any]) -> dict[str, float]:
        """Sums over the batch's rows of the loss terms at β = 1 (fixed noise: repeatable)."""
        size = float(batch["present"].shape[0])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            if model.kind == "gan":
                _, parts = model.critic_loss(batch, torch.randn(int(size), model.latent_dim))
            else:
                loss, parts = model.loss(batch, 1.0)
                parts = {"loss": loss, **parts}
        return {"rows": size, **{k: float(v) * size for k, v in parts.items()}}

    def concat(self, parts: list[Any], labels: Mapping[str, Any]) -> dict[str, float]:
        out: dict[str, float] = {}
        for p in parts:
            for k, v in p.items():
                out[k] = out.get(k, 0.0) + v
        return out

    def score(self, outputs: Mapping[str, float], target: torch.Tensor, labels: Mapping[str, Any],
              loaded: Any) -> tuple[dict[str, Any], None]:
        """VAEs: ``elbo`` (per row, nats; higher is better), ``nll``, ``kl``, ``mse`` (per value, in
        the preprocessed units); the GAN: the critic's mean scores."""
        rows = max(outputs.get("rows", 0.0), 1.0)
        metrics = {k: v / rows for k, v in outputs.items() if k != "rows"}
        if "loss" in metrics:
            metrics["elbo"] = -metrics.pop("loss")
        metrics["n"] = int(outputs.get("rows", 0))
        return metrics, None

    def predictions(self, outputs: Any, labels: Mapping[str, Any]) -> np.ndarray:
        raise ConfigError("a generation model makes samples, not predictions: use `polymodal generate` "
                          "or Predictor.generate()")


register_task(GenerationTask())
