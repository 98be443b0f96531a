"""The configuration: pydantic models of the YAML file, validated in one place.

Every section rejects unknown keys. Component options (a preprocessor's, an encoder's, a
fusion's) are checked against the option model of the class the name resolves to, and all
problems are reported together in one ``ConfigError`` before any tensor is allocated.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator

from polymodal.errors import ConfigError

__all__ = [
    "Config",
    "ModalityConfig",
    "TuningConfig",
    "HeadConfig",
    "AlignConfig",
    "TrainingConfig",
    "ROLES",
    "MODALITIES",
    "DEFAULT_ENCODERS",
    "load_config",
]

ROLES = ("text", "image", "audio", "numeric", "categorical", "ignore")
MODALITIES = ("text", "image", "audio", "tabular")
DEFAULT_ENCODERS = {"text": "lstm", "image": "cnn", "audio": "cnn", "tabular": "mlp"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TuningConfig(_Strict):
    """How a pretrained ``backbone`` trains (columns without a backbone ignore it)."""

    mode: Literal["frozen", "full", "last_n"] = "frozen"
    last_n: int = Field(2, ge=1, description="top blocks trained when mode is last_n")
    layer_lr_decay: float = Field(1.0, gt=0.0, le=1.0, description="learning-rate factor per block, going down")
    learning_rate: float = Field(5e-5, gt=0.0, description="the backbone's top block; the rest keeps training.learning_rate")
    pooling: Literal["mean", "cls"] = "mean"
    cache: Literal["auto", "tokens", "pooled", "off"] = Field(
        "auto", description="frozen features kept on disk; auto = tokens for text, pooled for image and audio")

    @model_serializer(mode="wrap")
    def _set_only(self, handler: Any) -> dict[str, Any]:
        # Only what was given: a column override saved and read back then still inherits the rest.
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}


class ModalityConfig(_Strict):
    """Options for one modality (or, under ``column_overrides``, for one column).

    ``preprocess`` holds the preprocessor's options and ``encoder`` the encoder's, with
    ``encoder.name`` choosing the encoder (see ``polymodal.encoders.encoder_names``).
    ``backbone`` (an alias such as ``minilm``, a local model folder or a hub id) uses a
    pretrained model instead: its own processor reads the column (``preprocess`` then takes
    the backbone preprocessor's few options) and ``tuning`` says how it trains.
    """

    preprocess: dict[str, Any] = Field(default_factory=dict)
    encoder: dict[str, Any] = Field(default_factory=dict)
    backbone: str | None = None
    tuning: TuningConfig = Field(default_factory=TuningConfig)

    @model_serializer(mode="wrap")
    def _backbone_if_set(self, handler: Any) -> dict[str, Any]:
        data = handler(self)  # an unset backbone is left out, so that an override inherits it
        return data if "backbone" in self.model_fields_set else {k: v for k, v in data.items() if k != "backbone"}


class HeadConfig(_Strict):
    loss: Literal["auto", "cross_entropy", "mse", "huber"] = "auto"
    class_weights: Literal["none", "balanced"] | dict[str, float] = "none"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    hidden: int = Field(0, ge=0, description="width of a hidden layer before the output; 0 = none")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)


class AlignConfig(_Strict):
    """Cross-modal alignment: the ``columns`` projected into one ``dim``-wide space, trained
    with a contrastive loss (see ``heads.alignment``). Alone (``problem_type: alignment``) or
    beside a classification / regression head, its loss scaled by ``weight``."""

    columns: list[str] = Field(..., min_length=2, description="text, image or audio columns to align")
    loss: Literal["infonce", "siglip"] = "infonce"
    dim: int = Field(256, ge=2, description="width of the shared space")
    hidden: int = Field(0, ge=0, description="hidden width of each projection; 0 = linear")
    temperature: float = Field(0.07, gt=0.0, le=1.0, description="initial InfoNCE temperature")
    learn_temperature: bool = True
    match: Literal["row", "label"] = Field(
        "row", description="positives: the columns of one row, or of every row with the same label value")
    weight: float = Field(1.0, gt=0.0, description="factor on the alignment loss beside a task head")

    @field_validator("columns")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"columns must be distinct, got {value}")
        return value


class TrainingConfig(_Strict):
    max_epochs: int = Field(30, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.01, ge=0.0)
    warmup_fraction: float = Field(0.05, ge=0.0, lt=1.0)
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    patience: int = Field(6, ge=1, description="epochs without improvement before stopping")
    monitor: Literal["auto", "val_loss", "val_accuracy", "val_f1_macro", "val_rmse"] = "auto"
    tuning_fraction: float = Field(0.1, gt=0.0, lt=0.9)
    precision: Literal["auto", "32", "bf16"] = "auto"
    gradient_clip: float = Field(1.0, ge=0.0)
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    num_workers: int = Field(0, ge=0)
    load_threads: int = Field(0, ge=0, description="threads decoding files; 0 = one per core")
    modality_dropout: float = Field(0.0, ge=0.0, lt=1.0,
                                    description="train-time probability of hiding each input of a row (never all)")
    progress_bar: bool = True
    cache_dir: str | None = Field(None, description="frozen-backbone feature cache; default "
                                  "$POLYMODAL_CACHE or ~/.cache/polymodal/features")


class Config(_Strict):
    """A whole polymodal configuration (``config.yaml``)."""

    label: str | None = None
    problem_type: Literal["auto", "classification", "regression", "alignment"] = "auto"
    columns: dict[str, str] = Field(default_factory=dict, description="column -> role override")
    on_bad_input: Literal["error", "skip_row", "skip_modality", "skip"] = Field(
        "error", description="unusable input: error | skip_row (drop the row) | skip_modality "
        "(mark that input absent for the row); 'skip' is the older name of skip_row")
    seed: int = 0
    text: ModalityConfig = Field(default_factory=ModalityConfig)
    image: ModalityConfig = Field(default_factory=ModalityConfig)
    audio: ModalityConfig = Field(default_factory=ModalityConfig)
    tabular: ModalityConfig = Field(default_factory=ModalityConfig)
    column_overrides: dict[str, ModalityConfig] = Field(default_factory=dict)
    fusion: dict[str, Any] = Field(default_factory=lambda: {"name": "concat"})
    head: HeadConfig = Field(default_factory=HeadConfig)
    align: AlignConfig | None = None
    training: TrainingConfig = Field(default_factory=TrainingConfig)

    @model_validator(mode="after")
    def _alignment_needs(self) -> "Config":
        align = self.align
        if self.problem_type == "alignment" and align is None:
            raise ValueError("problem_type: alignment needs an align: section naming the columns "
                             "to align, e.g. align: {columns: [caption, photo]}")
        if align is not None and align.match == "label" and not self.label:
            raise ValueError("align.match: label needs label: (the column whose equal values mark "
                             "matching rows); set it, or use match: row")
        if align is not None and self.label in align.columns:
            raise ValueError(f"align.columns names the label {self.label!r}; align input columns only")
        return self

    @field_validator("on_bad_input")
    @classmethod
    def _skip_alias(cls, value: str) -> str:
        return "skip_row" if value == "skip" else value

    @field_validator("columns")
    @classmethod
    def _roles_known(cls, value: dict[str, str]) -> dict[str, str]:
        bad = {c: r for c, r in value.items() if r not in ROLES}
        if bad:
            listed = ", ".join(f"{c}: {r!r}" for c, r in bad.items())
            raise ValueError(f"unknown role(s) {listed}; roles are {', '.join(ROLES)}")
        return value

    @field_validator("text", "image", "audio", "tabular")
    @classmethod
    def _modality_options(cls, value: ModalityConfig, info: Any) -> ModalityConfig:
        _raise_all(_check_modality(info.field_name, value))
        return value

    @field_validator("fusion")
    @classmethod
    def _fusion_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        from polymodal.fusion import fusion_option_problems

        _raise_all(fusion_option_problems(value))
        return value

    def for_column(self, column: str, modality: str) -> ModalityConfig:
        """The modality's options with this column's overrides merged on top."""
        base = getattr(self, modality)
        over = self.column_overrides.get(column)
        if over is None:
            return base
        backbone = over.backbone if "backbone" in over.model_fields_set else base.backbone
        # Options written for another pipeline (a different backbone, or none) are not inherited.
        inherited = base if backbone == base.backbone else ModalityConfig()
        return ModalityConfig(
            preprocess={**inherited.preprocess, **over.preprocess},
            encoder={**inherited.encoder, **over.encoder},
            backbone=backbone,
            tuning=base.tuning.model_copy(update=over.tuning.model_dump(exclude_unset=True)),
        )

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _without_name(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k != "name"}


def _check_options(model: type[BaseModel], options: Mapping[str, Any], where: str) -> list[str]:
    try:
        model(**options)
    except ValidationError as exc:
        return [f"{where}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return []


def _check_modality(modality: str, section: ModalityConfig) -> list[str]:
    """Problems with one modality section's preprocess and encoder options."""
    if section.backbone is not None:
        from polymodal.backbones.preprocessor import check_backbone_section

        return check_backbone_section(modality, section.preprocess, section.encoder)
    import polymodal.modalities  # noqa: F401  (registers preprocessors and encoders)
    from polymodal.preprocessing import PREPROCESSORS
    from polymodal.encoders.base import ENCODERS, encoder_names

    problems = _check_options(PREPROCESSORS[modality].Options, section.preprocess, "preprocess")
    name = section.encoder.get("name", DEFAULT_ENCODERS[modality])
    if (modality, name) not in ENCODERS:
        problems.append(
            f"encoder.name: unknown {modality} encoder {name!r}; known: {', '.join(encoder_names(modality))}"
        )
    else:
        problems += _check_options(
            ENCODERS[(modality, name)].Options, _without_name(section.encoder), "encoder"
        )
    return problems


def _raise_all(problems: list[str]) -> None:
    if problems:
        raise ValueError("; ".join(problems))


def load_config(source: "Config | Mapping[str, Any] | str | Path | None") -> Config:
    """Build a validated ``Config`` from a dict, a YAML file path, or nothing (defaults).

    Raises:
        ConfigError: listing every problem found, each with its key path.
    """
    if source is None:
        return Config()
    if isinstance(source, Config):
        return source
    where = "config"
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} not found; pass the path of a YAML file")
        where = str(path)
        try:
            source = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where} is not valid YAML: {exc}") from None
        if not isinstance(source, dict):
            raise ConfigError(f"{where} must hold a mapping of keys, got {type(source).__name__}")
    try:
        # column_overrides are checked at build time, once each column's modality is known.
        return Config(**source)
    except ValidationError as exc:
        problems = [_format_error(e) for e in exc.errors()]
        head = f"{where} has {len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise ConfigError(head + ":\n  - " + "\n  - ".join(problems)) from None


def _format_error(error: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling; see the documented options)"
    return f"{loc}: {msg}" if loc else msg
