"""The pydantic models of the configuration file.

Every section rejects unknown keys and non-finite numbers. Component options (a
preprocessor's, an encoder's, a fusion's) are checked against the option model of the class
the name resolves to (``polymodal.validate``); ``config.load.load_config`` reports every
problem together in one ``ConfigError`` before any tensor is allocated.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping

import yaml
from pydantic import Field, field_validator, model_serializer, model_validator

from polymodal.config.generation import GenerateConfig
from polymodal.config.strict import _Strict
from polymodal.modalities.base import input_roles, modality_names
from polymodal.tasks import get_task, task_names

__all__ = [
    "Config",
    "ModalityConfig",
    "TuningConfig",
    "HeadConfig",
    "AlignConfig",
    "GenerateConfig",
    "TrainingConfig",
]


class TuningConfig(_Strict):
    """How a pretrained ``backbone`` trains (columns without a backbone ignore it)."""

    mode: Literal["frozen", "full", "last_n"] = "frozen"
    last_n: int = Field(2, ge=1, description="top blocks trained when mode is last_n")
    layer_lr_decay: float = Field(1.0, gt=0.0, le=1.0, description="learning-rate factor per block, going down")
    learning_rate: float = Field(5e-5, gt=0.0, description="the backbone's top block; the rest keeps training.learning_rate")
    pooling: Literal["mean", "cls"] = "mean"
    embeddings: Literal["train", "frozen"] = Field(
        "train", description="full / last_n: whether a text backbone's token embedding table trains; "
        "frozen skips its gradient and optimiser step (MiniLM: 11.7M of 22.7M parameters)")
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
    threshold: Literal["tuned"] | float = Field(
        "tuned", description="multilabel: each label's decision threshold, tuned for F1 on the tuning split, "
        "or one fixed probability (0 < t < 1) for every label")
    class_weights: Literal["none", "balanced"] | dict[str, float] = "none"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    hidden: int = Field(0, ge=0, description="width of a hidden layer before the output; 0 = none")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    targets: dict[str, str] = Field(default_factory=dict, description="several labels: column -> problem type")
    loss_weights: dict[str, float] = Field(default_factory=dict, description="several labels: column -> loss weight")

    @field_validator("threshold")
    @classmethod
    def _probability(cls, value: Any) -> Any:
        if value != "tuned" and not 0.0 < float(value) < 1.0:
            raise ValueError(f"threshold must be 'tuned' or a probability between 0 and 1, got {value}")
        return value


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
    monitor: Literal["auto", "val_loss", "val_accuracy", "val_f1_micro", "val_rmse", "val_score"] = "auto"
    tuning_fraction: float = Field(0.1, gt=0.0, lt=0.9)
    precision: Literal["auto", "32", "bf16", "16"] = Field(
        "auto", description="auto = bf16 where bf16 matmuls are fast, else 32; 16 = fp16 mixed (CUDA only)")
    gradient_clip: float = Field(1.0, ge=0.0)
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    devices: Annotated[int, Field(ge=1)] = Field(
        1, description="processes (CPU) or GPUs per machine; more than one trains with DDP, batch_size "
        "rows each (see docs/distributed.md)")
    num_nodes: Annotated[int, Field(ge=1)] = Field(1, description="machines (torchrun / SLURM start each)")
    strategy: Literal["auto", "ddp"] = Field(
        "auto", description="auto = DDP when devices x num_nodes > 1; ddp = DDP always (gloo on CPUs, NCCL on GPUs)")
    num_workers: int = Field(0, ge=0)
    load_threads: int = Field(0, ge=0, description="threads decoding files; 0 = one per core")
    threads: Literal["auto"] | Annotated[int, Field(ge=1)] = Field(
        "auto", description="torch intra-op threads while training: auto = as many as the cores other "
        "processes leave free (looked at every 2 s; at most torch's threads at the start), N = N threads "
        "(see polymodal.training.threads)")
    modality_dropout: float = Field(0.0, ge=0.0, lt=1.0,
                                    description="train-time probability of hiding each input of a row (never all)")
    group_by_length: bool = Field(False, description="batches of rows with texts of similar length (shuffled "
                                  "within groups of 50 batches): less padding, faster text models")
    progress_bar: bool = Field(True, description="on stderr: a bar at a terminal, else one line per epoch")
    logger: Literal["csv", "tensorboard", "mlflow", "none"] = Field(
        "csv", description="each fit's experiment log (docs/training.md); tensorboard, mlflow: their extra")
    log_dir: str = Field("polymodal-logs", description="csv, tensorboard logs and the MLflow file store")
    experiment: str | None = Field(None, description="a subfolder of log_dir; MLflow: the experiment (polymodal)")
    mlflow_tracking_uri: str | None = Field(None, description="else $MLFLOW_TRACKING_URI, else file:<log_dir>/mlruns")
    profile: bool = Field(False, description="time each phase of training (Lightning's SimpleProfiler) "
                          "into fit_info['profile']: collate, forward, backward, optimizer, evaluation, "
                          "overhead, in seconds")
    stream: Literal["auto", "on", "off"] = Field(
        "auto", description="read the training table a chunk at a time (memory that does not grow with it): "
        "on = any Parquet / CSV / JSON lines file; auto = a Parquet table of more than stream_above_rows rows")
    stream_above_rows: int = Field(1_000_000, ge=0, description="stream: auto streams Parquet tables longer than this")
    fit_sample_rows: int = Field(100_000, ge=1, description="a streamed fit fits its preprocessors (vocabulary, "
                                 "scaling, categories) on a seeded sample of this many rows")
    cache_dir: str | None = Field(None, description="frozen-backbone feature cache; default "
                                  "$POLYMODAL_CACHE or ~/.cache/polymodal/features")


class Config(_Strict):
    """A whole polymodal configuration (``config.yaml``).

    Each registered modality has a section under its own name (``text:``, ``image:``,
    ``audio:``, ``tabular:``, or a plugin's); ``section(name)`` reads one.
    """

    label: str | list[str] | None = Field(None, description="the column to predict; a list: one model, a head each")
    label_delimiter: str | None = Field(None, min_length=1, description="multilabel: the separator of the labels "
                                        "in a text label cell (a CSV's 'cat|dog'); lists need none")
    problem_type: str = Field("auto", description="auto, or a registered task (polymodal.tasks.task_names())")
    columns: dict[str, str] = Field(default_factory=dict, description="column -> role override")
    on_bad_input: Literal["error", "skip_row", "skip_modality", "skip"] = Field(
        "error", description="unusable input: error | skip_row (drop the row) | skip_modality "
        "(mark that input absent for the row); 'skip' is the older name of skip_row")
    allow_urls: bool = Field(False, description="image and audio cells may be URLs (https://, s3://, ...), "
                             "read over the network (polymodal.data.urls)")
    seed: int = 0
    presets: Literal["fast", "balanced", "best"] | None = Field(
        None, description="a ready configuration laid under your own keys (polymodal.config.presets): "
        "fast | balanced | best, with training.max_epochs and training.patience chosen for the table's size")
    sections: dict[str, ModalityConfig] = Field(
        default_factory=dict, description="per-modality options; written as top-level keys (text:, image:, ...)")
    column_overrides: dict[str, ModalityConfig] = Field(default_factory=dict)
    fusion: dict[str, Any] = Field(default_factory=lambda: {"name": "concat"})
    head: HeadConfig = Field(default_factory=HeadConfig)
    align: AlignConfig | None = None
    generate: GenerateConfig | None = None
    training: TrainingConfig = Field(default_factory=TrainingConfig)

    @model_validator(mode="after")
    def _task_and_align_needs(self) -> "Config":
        align = self.align
        if self.problem_type != "auto":  # the task's own requirements (alignment: an align: section)
            _raise_all(get_task(self.problem_type).settings_problems(self))
        if align is not None and align.match == "label" and not self.label:
            raise ValueError("align.match: label needs label: (the column whose equal values mark "
                             "matching rows); set it, or use match: row")
        if align is not None and self.label in align.columns:
            raise ValueError(f"align.columns names the label {self.label!r}; align input columns only")
        return self

    @field_validator("problem_type")
    @classmethod
    def _task_known(cls, value: str) -> str:
        known = task_names()
        if value != "auto" and value not in known:
            raise ValueError(f"unknown problem_type {value!r}; expected auto or one of {', '.join(known)}")
        return value

    @field_validator("on_bad_input")
    @classmethod
    def _skip_alias(cls, value: str) -> str:
        return "skip_row" if value == "skip" else value

    @field_validator("columns")
    @classmethod
    def _roles_known(cls, value: dict[str, str]) -> dict[str, str]:
        roles = input_roles()
        bad = {c: r for c, r in value.items() if r not in roles}
        if bad:
            listed = ", ".join(f"{c}: {r!r}" for c, r in bad.items())
            raise ValueError(f"unknown role(s) {listed}; roles are {', '.join(roles)}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _gather_sections(cls, data: Any) -> Any:
        """Top-level keys named after a modality are that modality's section."""
        if not isinstance(data, Mapping):
            return data
        names = set(modality_names())
        data = dict(data)
        sections = dict(data.pop("sections", None) or {})
        for key in [k for k in data if k in names]:
            sections[key] = data.pop(key)
        return {**data, "sections": sections}

    @field_validator("fusion")
    @classmethod
    def _fusion_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        from polymodal.fusion import fusion_option_problems

        _raise_all(fusion_option_problems(value))
        return value

    @model_serializer(mode="wrap")
    def _sections_at_top(self, handler: Any, info: Any) -> dict[str, Any]:
        data = handler(self)
        sections = data.pop("sections", {})
        # every modality's section (exclude_unset: those written), where the built-in ones always stood
        shown = {n: sections[n] if n in sections else ModalityConfig().model_dump() for n in modality_names()
                 if n in sections or not info.exclude_unset}
        out: dict[str, Any] = {}
        for key, value in data.items():
            out[key] = value
            if key == "seed":
                out.update(shown)
        return out if "seed" in data else {**out, **shown}

    def section(self, modality: str) -> ModalityConfig:
        """The options of ``modality`` (defaults when the config has no such section)."""
        return self.sections.get(modality) or ModalityConfig()

    def __getattr__(self, name: str) -> Any:
        # ``config.text`` reads the text section, as the YAML file spells it.
        if not name.startswith("_") and name in modality_names():
            return self.section(name)
        return super().__getattr__(name)

    def for_column(self, column: str, modality: str) -> ModalityConfig:
        """The modality's options with this column's overrides merged on top."""
        base = self.section(modality)
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


def _raise_all(problems: list[str]) -> None:
    if problems:
        raise ValueError("; ".join(problems))
