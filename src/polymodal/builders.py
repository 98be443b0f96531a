"""Build preprocessors and the model from a config and a schema (the one place names resolve)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from polymodal.backbones.build import backbone_encoder, backbone_preprocessor, load_backbone_preprocessor
from polymodal.config import DEFAULT_ENCODERS, Config, _check_modality
from polymodal.backbones.preprocessor import BackbonePreprocessor
import polymodal.modalities  # noqa: F401  (registers preprocessors and encoders)
from polymodal.preprocessing import PREPROCESSORS
from polymodal.preprocessing import Preprocessor
from polymodal.data.schema import Schema
from polymodal.encoders import get_encoder
from polymodal.errors import ConfigError
from polymodal.fusion import get_fusion
from polymodal.heads import AlignmentHead, ClassificationHead, LateHead, RegressionHead
from polymodal.model import MultimodalModel

__all__ = ["TABULAR", "input_specs", "build_preprocessors", "load_preprocessors", "build_model",
           "check_column_overrides"]

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
            section = config.for_column(spec["name"], spec["modality"])
            if section.backbone is not None:  # a pretrained model with its own processor
                out[spec["name"]] = backbone_preprocessor(spec["name"], spec["columns"], spec["modality"],
                                                          section, config.training)
                continue
            out[spec["name"]] = cls(spec["name"], spec["columns"], **section.preprocess)
    return out


def load_preprocessors(config: Config, specs: list[dict[str, Any]], root: Path) -> dict[str, Preprocessor]:
    """Fitted preprocessors from a model directory's ``preprocessors/<input>/`` folders."""
    out = {}
    for spec in specs:
        name, modality = spec["name"], spec["modality"]
        section = config.for_column(name, modality) if modality != "tabular" else config.tabular
        if section.backbone is not None:
            out[name] = load_backbone_preprocessor(root / name, modality, section, config.training)
        else:
            out[name] = PREPROCESSORS[modality].load_from(root / name)
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
        if isinstance(pre, BackbonePreprocessor):  # the backbone is the encoder
            encoders[name] = backbone_encoder(pre, section)
            continue
        options = dict(section.encoder)
        cls = get_encoder(modality, options.pop("name", DEFAULT_ENCODERS[modality]))
        encoders[name] = cls(**pre.encoder_inputs(), **cls.Options(**options).model_dump())
    aligner = _aligner(config, encoders)
    if schema.problem_type == "alignment":  # no fusion and no task head: the aligner is the head
        return MultimodalModel(encoders, None, None, aligner=aligner)
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
    if getattr(fusion, "per_input_heads", False):  # late fusion: one head per input
        head = LateHead(head, sorted(encoders))
    return MultimodalModel(encoders, fusion, head, aligner=aligner)


def _aligner(config: Config, encoders: Mapping[str, Any]) -> AlignmentHead | None:
    """The ``align:`` section's head over its columns' encoders, or None without one."""
    align = config.align
    if align is None:
        return None
    missing = [c for c in align.columns if c not in encoders]
    if missing:
        raise ConfigError(f"align.columns: {', '.join(map(repr, missing))} are not text, image or audio "
                          f"inputs of this model (inputs: {', '.join(sorted(encoders))})")
    return AlignmentHead({c: encoders[c].out_dim for c in align.columns}, dim=align.dim, loss=align.loss,
                         temperature=align.temperature, learn_temperature=align.learn_temperature,
                         hidden=align.hidden, weight=align.weight, match=align.match)
