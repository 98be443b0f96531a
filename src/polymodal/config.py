"""The configuration: pydantic models of the YAML file, validated in one place.

Every section rejects unknown keys. Component options (a preprocessor's, an encoder's, a
fusion's) are checked against the option model of the class the name resolves to, and all
problems are reported together in one ``ConfigError`` before any tensor is allocated.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from polymodal.errors import ConfigError

__all__ = [
    "Config",
    "ModalityConfig",
    "HeadConfig",
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


class ModalityConfig(_Strict):
    """Options for one modality (or, under ``column_overrides``, for one column).

    ``preprocess`` holds the preprocessor's options and ``encoder`` the encoder's, with
    ``encoder.name`` choosing the encoder (see ``polymodal.encoders.encoder_names``).
    """

    preprocess: dict[str, Any] = Field(default_factory=dict)
    encoder: dict[str, Any] = Field(default_factory=dict)


class HeadConfig(_Strict):
    loss: Literal["auto", "cross_entropy", "mse", "huber"] = "auto"
    class_weights: Literal["none", "balanced"] | dict[str, float] = "none"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    hidden: int = Field(0, ge=0, description="width of a hidden layer before the output; 0 = none")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)


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
    progress_bar: bool = True


class Config(_Strict):
    """A whole polymodal configuration (``config.yaml``)."""

    label: str | None = None
    problem_type: Literal["auto", "classification", "regression"] = "auto"
    columns: dict[str, str] = Field(default_factory=dict, description="column -> role override")
    on_bad_input: Literal["error", "skip"] = "error"
    seed: int = 0
    text: ModalityConfig = Field(default_factory=ModalityConfig)
    image: ModalityConfig = Field(default_factory=ModalityConfig)
    audio: ModalityConfig = Field(default_factory=ModalityConfig)
    tabular: ModalityConfig = Field(default_factory=ModalityConfig)
    column_overrides: dict[str, ModalityConfig] = Field(default_factory=dict)
    fusion: dict[str, Any] = Field(default_factory=lambda: {"name": "concat"})
    head: HeadConfig = Field(default_factory=HeadConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)

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
        from polymodal.fusion import FUSIONS

        name = value.get("name", "concat")
        if name not in FUSIONS:
            raise ValueError(f"unknown fusion {name!r}; known: {', '.join(sorted(FUSIONS))}")
        _raise_all(_check_options(FUSIONS[name].Options, _without_name(value), "fusion"))
        return value

    def for_column(self, column: str, modality: str) -> ModalityConfig:
        """The modality's options with this column's overrides merged on top."""
        base = getattr(self, modality)
        over = self.column_overrides.get(column)
        if over is None:
            return base
        return ModalityConfig(
            preprocess={**base.preprocess, **over.preprocess},
            encoder={**base.encoder, **over.encoder},
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
    from polymodal.data import PREPROCESSORS
    from polymodal.encoders.base import ENCODERS, encoder_names
    import polymodal.encoders  # noqa: F401  (registers the encoders)

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
