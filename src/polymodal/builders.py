"""Build preprocessors and the model from a config and a schema (the one place names resolve).

Every name resolves through a registry: a column's role to its modality (``modalities``),
an encoder name to its class (``encoders``), a fusion name (``fusion``), the task (``tasks``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from polymodal.backbones.preprocessor import BackbonePreprocessor
from polymodal.config import Config, ModalityConfig, TrainingConfig
from polymodal.data.schema import Schema
from polymodal.encoders import get_encoder
from polymodal.backbones.encoder import build_pretrained_encoder
from polymodal.errors import ConfigError
from polymodal.fusion import get_fusion
from polymodal.heads import AlignmentHead, get_head
from polymodal.modalities import get_modality, modalities
from polymodal.model import MultimodalModel
from polymodal.tasks import get_task
from polymodal.preprocessing import Preprocessor
from polymodal.runtime import resolve_precision

__all__ = ["input_specs", "section_of", "build_preprocessors", "load_preprocessors", "build_model",
           "cache_mode", "backbone_preprocessor", "backbone_encoder"]


def input_specs(schema: Schema) -> list[dict[str, Any]]:
    """One spec per model input: ``{name, modality, columns}``, in sorted name order.

    A one-column modality (text, image, audio) makes one input per column, named after it; a
    grouped one (tabular) makes one input of every column of its roles, named after the
    modality (``_<name>`` when a column has that name), and lists them per role too.
    """
    specs = []
    for plugin in modalities():
        if plugin.one_column:
            specs += [{"name": c, "modality": plugin.name, "columns": [c]}
                      for c, role in schema.roles.items() if role in plugin.roles]
            continue
        by_role = {role: schema.inputs(role) for role in plugin.roles}
        columns = [c for role in plugin.roles for c in by_role[role]]
        if columns:
            name = plugin.name if plugin.name not in schema.roles else f"_{plugin.name}"
            specs.append({"name": name, "modality": plugin.name, "columns": columns, **by_role})
    return sorted(specs, key=lambda s: s["name"])


def section_of(config: Config, name: str, modality: str) -> ModalityConfig:
    """The options of input ``name``: its modality's section with the column's overrides."""
    if get_modality(modality).one_column:
        return config.for_column(name, modality)
    return config.section(modality)


def cache_mode(modality: str, section: ModalityConfig) -> str:
    """What the feature cache keeps for this column: ``tokens``, ``pooled`` or ``off``.

    Only frozen backbones are cached. ``auto`` keeps what the modality says (tokens for short
    text sequences, pooled vectors for images and audio, hundreds of positions each).
    """
    tuning = section.tuning
    if tuning.mode != "frozen" or tuning.cache == "off":
        return "off"
    if tuning.cache == "auto":
        return get_modality(modality).feature_cache
    return tuning.cache


def _runtime(modality: str, section: ModalityConfig, training: TrainingConfig) -> dict[str, Any]:
    """A backbone preprocessor's run settings: what to cache, where, at which precision."""
    return {"cache": cache_mode(modality, section), "cache_dir": training.cache_dir,
            "precision": resolve_precision(training.precision, training.accelerator)}


def _backbone_class(modality: str) -> type[BackbonePreprocessor]:
    cls = get_modality(modality).backbone_preprocessor
    if cls is None:
        raise ConfigError(f"{modality} columns have no pretrained backbones; remove backbone:")
    return cls


def backbone_preprocessor(name: str, columns: list[str], modality: str, section: ModalityConfig,
                          training: TrainingConfig) -> BackbonePreprocessor:
    """The unfitted preprocessor of a column with ``section.backbone`` set."""
    return _backbone_class(modality)(name, columns, backbone=section.backbone, pooling=section.tuning.pooling,
                                     **_runtime(modality, section, training), **section.preprocess)


def backbone_encoder(pre: BackbonePreprocessor, section: ModalityConfig) -> Any:
    """The encoder of a fitted backbone preprocessor's column (the backbone itself)."""
    tuning: Mapping[str, Any] = section.tuning.model_dump()
    return build_pretrained_encoder(pre.encoder_inputs(), tuning)


def build_preprocessors(config: Config, schema: Schema) -> dict[str, Preprocessor]:
    """Unfitted preprocessors, one per model input."""
    out = {}
    for spec in input_specs(schema):
        name, modality = spec["name"], spec["modality"]
        plugin, section = get_modality(modality), section_of(config, name, modality)
        if section.backbone is not None:  # a pretrained model with its own processor
            out[name] = backbone_preprocessor(name, spec["columns"], modality, section, config.training)
        elif plugin.one_column:
            out[name] = plugin.preprocessor(name, spec["columns"], **section.preprocess)
        else:
            by_role = {role: spec[role] for role in plugin.roles}
            out[name] = plugin.preprocessor(name, spec["columns"], **by_role, **section.preprocess)
    return out


def load_preprocessors(config: Config, specs: list[dict[str, Any]], root: Path) -> dict[str, Preprocessor]:
    """Fitted preprocessors from a model directory's ``preprocessors/<input>/`` folders."""
    out = {}
    for spec in specs:
        name, modality = spec["name"], spec["modality"]
        section = section_of(config, name, modality)
        if section.backbone is not None:
            pre = _backbone_class(modality).load_from(root / name)
            pre.configure(**_runtime(modality, section, config.training))
            out[name] = pre
        else:
            out[name] = get_modality(modality).preprocessor.load_from(root / name)
    return out


def _encoder(name: str, pre: Preprocessor, config: Config) -> Any:
    """The encoder of one fitted input: its backbone, or the configured (default) encoder."""
    section = section_of(config, name, pre.modality)
    if isinstance(pre, BackbonePreprocessor):  # the backbone is the encoder
        return backbone_encoder(pre, section)
    options = dict(section.encoder)
    cls = get_encoder(pre.modality, options.pop("name", get_modality(pre.modality).default_encoder))
    # Only the options given: an encoder may tell a set option from a default one.
    return cls(**pre.encoder_inputs(), **options)


def build_model(config: Config, schema: Schema, preprocessors: Mapping[str, Preprocessor],
                labels: Mapping[str, Any]) -> MultimodalModel:
    """Encoders (from each fitted preprocessor's ``encoder_inputs``) + fusion + head.

    Args:
        labels: the task's label encoding (``labels.json``; see ``Task.fit_labels``); the
            task (``schema.problem_type``) builds the head from it.
    """
    encoders = {name: _encoder(name, pre, config) for name, pre in preprocessors.items()}
    task = get_task(schema.problem_type)
    own = task.build_model(config, preprocessors, labels, encoders,
                           make_encoder=lambda n: _encoder(n, preprocessors[n], config),
                           make_fusion=lambda dims: _fusion(config, dims))
    if own is not None:  # a model of the task's own (generation)
        return own
    aligner = _aligner(config, encoders)
    if not task.has_head:  # no fusion and no task head: the aligner is the head (alignment)
        return MultimodalModel(encoders, None, None, aligner=aligner)
    fusion = _fusion(config, {n: e.out_dim for n, e in encoders.items()})
    head = task.build_head(fusion.out_dim, labels, config.head)
    wrapper = getattr(fusion, "head_wrapper", None)  # late fusion: "late", one head per input
    if wrapper is not None:
        head = get_head(wrapper)(head, sorted(encoders))
    return MultimodalModel(encoders, fusion, head, aligner=aligner)


def _fusion(config: Config, input_dims: Mapping[str, int]) -> Any:
    """The config's fusion over inputs of the given widths."""
    fusion_options = dict(config.fusion)
    fusion_cls = get_fusion(fusion_options.pop("name", "concat"))
    return fusion_cls(input_dims=dict(input_dims), **fusion_cls.Options(**fusion_options).model_dump())


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
