"""Build preprocessors and the model from a config and a schema (the one place names resolve)."""
from __future__ import annotations

from typing import Any, Mapping

import torch

from polymodal.config import DEFAULT_ENCODERS, Config, _check_modality
from polymodal.data import PREPROCESSORS
from polymodal.data.base import Preprocessor
from polymodal.data.schema import Schema
from polymodal.encoders import get_encoder
from polymodal.errors import ConfigError
from polymodal.fusion import get_fusion
from polymodal.heads import ClassificationHead, RegressionHead
from polymodal.model import MultimodalModel

__all__ = ["TABULAR", "input_specs", "build_preprocessors", "build_model", "check_column_overrides"]

TABULAR = "tabular"  # the input name that holds every numeric and categorical column


def input_specs(schema: Schema) -> list[dict[str, Any]]:
    """One spec per model input: ``{name, modality, columns}``, in sorted name order."""
    specs = [
        {"name": col, "modality": role, "columns": [col]}
        for col, role in schema.roles.items() if role in ("text", "image", "audio")
    ]
    numeric, categorical = schema.inputs("numeric"), schema.inputs("categorical")
    if numeric or categorical:
        name = TABULAR if TABULAR not in schema.roles else f"_{TABULAR}"
        specs.append({"name": name, "modality": "tabular", "columns": numeric + categorical,
                      "numeric": numeric, "categorical": categorical})
    return sorted(specs, key=lambda s: s["name"])


def check_column_overrides(config: Config, schema: Schema) -> None:
    """Every ``column_overrides`` entry must name an input column and hold valid options."""
    problems = []
    for column, section in config.column_overrides.items():
        role = schema.roles.get(column)
        if role not in ("text", "image", "audio"):
            what = "is not in the table" if role is None else f"has role {role!r}"
            problems.append(f"column_overrides.{column}: column {what}; overrides apply to text, image and audio columns")
            continue
        merged = config.for_column(column, role)
        problems += [f"column_overrides.{column}.{p}" for p in _check_modality(role, merged)]
    if problems:
        raise ConfigError(f"config has {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))


def build_preprocessors(config: Config, schema: Schema) -> dict[str, Preprocessor]:
    """Unfitted preprocessors, one per model input."""
    out = {}
    for spec in input_specs(schema):
        cls = PREPROCESSORS[spec["modality"]]
        if spec["modality"] == "tabular":
            out[spec["name"]] = cls(spec["name"], spec["columns"], numeric=spec["numeric"],
                                    categorical=spec["categorical"], **config.tabular.preprocess)
        else:
            options = config.for_column(spec["name"], spec["modality"]).preprocess
            out[spec["name"]] = cls(spec["name"], spec["columns"], **options)
    return out


def build_model(config: Config, schema: Schema, preprocessors: Mapping[str, Preprocessor],
                labels: Mapping[str, Any]) -> MultimodalModel:
    """Encoders (from each fitted preprocessor's ``encoder_inputs``) + fusion + head.

    Args:
        labels: ``{"classes": [...], "class_weights": [...] | None}`` for classification,
            ``{"target_mean": m, "target_std": s}`` for regression.
    """
    encoders = {}
    for name, pre in preprocessors.items():
        modality = pre.modality
        section = config.for_column(name, modality) if modality != "tabular" else config.tabular
        options = dict(section.encoder)
        cls = get_encoder(modality, options.pop("name", DEFAULT_ENCODERS[modality]))
        encoders[name] = cls(**pre.encoder_inputs(), **cls.Options(**options).model_dump())
    fusion_options = dict(config.fusion)
    fusion_cls = get_fusion(fusion_options.pop("name", "concat"))
    fusion = fusion_cls(input_dims={n: e.out_dim for n, e in encoders.items()},
                        **fusion_cls.Options(**fusion_options).model_dump())
    head_cfg = config.head
    if schema.problem_type == "classification":
        weights = labels.get("class_weights")
        head = ClassificationHead(
            fusion.out_dim, len(labels["classes"]), hidden=head_cfg.hidden, dropout=head_cfg.dropout,
            class_weights=None if weights is None else torch.tensor(weights),
            label_smoothing=head_cfg.label_smoothing,
        )
    else:
        loss = "mse" if head_cfg.loss in ("auto", "mse") else head_cfg.loss
        head = RegressionHead(fusion.out_dim, hidden=head_cfg.hidden, dropout=head_cfg.dropout,
                              loss=loss, target_mean=labels["target_mean"],
                              target_std=labels["target_std"])
    return MultimodalModel(encoders, fusion, head)
