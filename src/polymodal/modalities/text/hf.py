"""Text encoder ``hf``: any Hugging Face text model, loaded from a folder / hub id or built from a config.

It reads ``input_ids Long[B, T]`` and ``attention_mask Bool[B, T]`` and returns
``EncoderOutput(tokens [B, T, D], pooled [B, D], mask [B, T])``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from polymodal.encoders.base import EncoderOutput, register_encoder
from polymodal.encoders.pooling import masked_mean
from polymodal.errors import ConfigError

__all__ = ["HFTextEncoder"]


def _small_bert() -> dict[str, Any]:
    return {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 256}


def hf_config_problems(model_type: str, config: Mapping[str, Any]) -> list[str]:
    """Keys of ``config`` that the ``model_type`` configuration class does not know.

    ``AutoConfig.for_model`` stores unknown keys as attributes and ignores them, so a misspelt
    ``hiden_size`` would build a model of the default size without a word.
    """
    import difflib
    import inspect

    from transformers import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING:
        close = difflib.get_close_matches(model_type, list(CONFIG_MAPPING.keys()), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return [f"model_type: {model_type!r} is not a Hugging Face model type{hint}"]
    cls = CONFIG_MAPPING[model_type]
    known = set(cls().to_dict()) | set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    problems = []
    for key in sorted(set(config) - known):
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems.append(f"config.{key}: not an option of the {model_type} configuration{hint}")
    return problems


@register_encoder("text", "hf")
class HFTextEncoder(nn.Module):
    """Any Hugging Face text encoder (``transformers.AutoModel``).

    Loaded from ``path`` (or, unless ``config``/``model_type`` are set, the tokenizer's
    ``pretrained`` folder) when given, else built with random weights from ``model_type`` +
    ``config``. The task-specific pooler is left
    out (it would be a parameter that gets no gradient).

    Raises:
        ConfigError: ``path`` is a folder or file that holds no loadable model, a hub id that
            cannot be loaded, or the model is too small for the vocabulary / max_length.
    """

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid", protected_namespaces=())

        path: str | None = Field(None, description="local model folder or hub id; default: the tokenizer's")
        model_type: str = "bert"
        config: dict[str, Any] = Field(default_factory=_small_bert, description="used when no path")
        pooling: Literal["cls", "mean"] = "mean"
        freeze: bool = False

        @model_validator(mode="after")
        def _config_keys_exist(self) -> "HFTextEncoder.Options":
            # transformers keeps unknown config keys silently (hiden_size builds a BERT-base).
            problems = hf_config_problems(self.model_type, self.config)
            if problems:
                raise ValueError("; ".join(problems))
            return self

    def __init__(self, *, vocab_size: int, pad_id: int = 0, max_length: int = 512,
                 pretrained: str | None = None, **options: Any) -> None:
        super().__init__()
        opts = self.options = self.Options(**options)
        from_config = {"config", "model_type"} & opts.model_fields_set
        if opts.path and from_config:
            raise ConfigError(
                f"text encoder 'hf': {' and '.join(sorted(from_config))} only apply when building a "
                f"model from scratch, but path={opts.path!r} loads one; drop one or the other."
            )
        # An explicit config wins over the tokenizer's folder: a fresh model on its vocabulary.
        path = opts.path or (None if from_config else pretrained)
        self.model = _load_hf(path) if path else _build_hf(opts.model_type, opts.config, vocab_size, pad_id)
        cfg = self.model.config
        if vocab_size > cfg.vocab_size:
            raise ConfigError(
                f"text encoder 'hf': the tokenizer has {vocab_size} ids but the model embeds only "
                f"{cfg.vocab_size}; use the model's own tokenizer: set preprocess: {{pretrained: {path}}} "
                "in this text section."
            )
        max_positions = getattr(cfg, "max_position_embeddings", None)
        if max_positions is not None and max_length > max_positions:
            raise ConfigError(
                f"text encoder 'hf': max_length={max_length} exceeds the model's "
                f"max_position_embeddings={max_positions}; lower max_length."
            )
        if opts.freeze:
            self.model.requires_grad_(False)
        self.out_dim = int(cfg.hidden_size)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> EncoderOutput:
        ids, mask = batch["input_ids"], batch["attention_mask"].bool()
        tokens = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state  # [B, T, D]
        if self.options.pooling == "cls":
            pooled = tokens[:, 0] * mask.any(dim=1, keepdim=True)  # [B, D]; empty rows → 0
        else:
            pooled = masked_mean(tokens, mask)
        return EncoderOutput(tokens=tokens, pooled=pooled, mask=mask)


def _without_pooler(build: Any, *args: Any, **kwargs: Any) -> nn.Module:
    """Call a transformers constructor asking for no pooling layer; not every model has one."""
    try:
        return build(*args, add_pooling_layer=False, **kwargs)
    except TypeError:  # this model class takes no add_pooling_layer
        return build(*args, **kwargs)


def _load_hf(path: str) -> nn.Module:
    from transformers import AutoModel

    folder = Path(path).expanduser()
    if folder.exists():
        if not (folder.is_dir() and (folder / "config.json").is_file()):
            raise ConfigError(
                f"text encoder 'hf': {str(folder)!r} is not a Hugging Face model folder "
                f"(expected a directory with config.json and weights, as written by save_pretrained); "
                f"point path at such a folder, or leave path unset to build from config."
            )
        try:
            return _without_pooler(AutoModel.from_pretrained, str(folder), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"text encoder 'hf': could not load a model from folder {str(folder)!r}: {exc}"
            ) from exc
    try:  # not on disk: a hub id, which needs internet or the local HF cache
        return _without_pooler(AutoModel.from_pretrained, path)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"text encoder 'hf': {path!r} is neither an existing folder nor a loadable Hugging Face "
            f"hub model id ({exc}); give a local model folder, or check the id and network."
        ) from exc


def _build_hf(model_type: str, config: dict[str, Any], vocab_size: int, pad_id: int) -> nn.Module:
    from transformers import AutoConfig, AutoModel

    try:
        cfg = AutoConfig.for_model(model_type, **{"vocab_size": vocab_size, "pad_token_id": pad_id, **config})
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"text encoder 'hf': cannot build config for model_type={model_type!r}: {exc}") from exc
    return _without_pooler(AutoModel.from_config, cfg)
