"""Build the backbone module (the "tower") for one modality, with or without its weights.

- From a source folder at fit time: ``load_tower(folder, modality, weights=True)`` reads the
  pretrained weights. A CLIP-like model gives its vision / text / audio tower alone; an
  encoder-decoder model (Whisper) gives its encoder; task poolers (BERT's, ViT's dense +
  tanh) are left out.
- From a saved model directory: ``save_tower_config`` writes the tower's ``config.json`` (and a
  ``polymodal_backbone.json`` marker); ``load_tower(dir, modality, weights=False)`` builds
  the same architecture with no download, and the trained weights come from the model's
  ``model.safetensors``. A frozen, cached backbone is kept out of the model's state dict
  (it is loaded only when a feature must be computed): ``save_tower_weights`` writes its
  weights as ``tower.safetensors``, which ``load_tower(dir, modality, weights=True)`` reads.
"""
from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any, Iterator

from torch import nn

from polymodal.backbones.family import get_family
from polymodal.backbones.spec import TowerSpec
from polymodal.errors import ConfigError

__all__ = ["TowerSpec", "load_tower", "tower_spec", "tower_config", "save_tower_config", "save_tower_weights",
           "text_limit", "quiet_transformers", "MARKER", "WEIGHTS"]

log = logging.getLogger("polymodal")

MARKER = "polymodal_backbone.json"
WEIGHTS = "tower.safetensors"  # a frozen cached backbone's weights, saved beside its config
_PART = {"image": "Vision", "text": "Text", "audio": "Audio"}
# Models with no [CLS]-like first token and no pooled output of their own.
_NO_SUMMARY_TABLES = ("MODEL_FOR_CTC_MAPPING_NAMES", "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES")
# Text models whose position ids start after the padding index (limit = positions - 2).
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer",
                     "data2vec-text", "mpnet", "ibert", "xmod", "roberta-prelayernorm"}


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars; restores them afterwards."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_tower(folder: Path, modality: str, *, weights: bool, family: str = "hf") -> nn.Module:
    """The backbone module for ``modality``.

    Args:
        folder: a source model folder, or a folder written by ``save_tower_config`` (plus,
            for a frozen cached backbone, ``save_tower_weights``).
        weights: read the pretrained weights (from the source's files, or the saved
            ``tower.safetensors``); False builds the architecture with random weights, to
            be overwritten from the model's state dict.

    Raises:
        ConfigError: the folder's model cannot be built or has no ``modality`` tower.
    """
    folder = Path(folder)
    family = _family(folder, family)
    saved = folder / WEIGHTS
    if family != "hf":
        tower = get_family(family, folder).load(folder, weights=weights and not saved.is_file())
    else:
        from transformers import AutoConfig

        with quiet_transformers():
            config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
            try:
                tower = _build(folder, config, modality, weights and not saved.is_file())
            except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
                raise ConfigError(f"backbone in {str(folder)!r}: cannot build its {modality} model: {exc}") from None
        if config.is_encoder_decoder:
            tower = tower.get_encoder()  # e.g. Whisper: the audio encoder, not the text decoder
    if weights and saved.is_file():
        from safetensors.torch import load_model

        load_model(tower, str(saved))
    return tower


def tower_spec(folder: Path, modality: str, family: str = "hf") -> TowerSpec:
    """The ``TowerSpec`` of the ``modality`` tower in ``folder``, from its config alone."""
    from transformers.models.auto import modeling_auto as auto

    folder = Path(folder)
    family = _family(folder, family)
    if family != "hf":
        return get_family(family, folder).spec(folder)
    cfg = tower_config(folder, modality)
    out_dim = getattr(cfg, "hidden_size", None)
    if out_dim is None and getattr(cfg, "hidden_sizes", None):
        out_dim = cfg.hidden_sizes[-1]  # CNNs (ResNet, ConvNeXt, RegNet): last stage width
    if out_dim is None:
        out_dim = getattr(cfg, "hidden_dim", None) or getattr(cfg, "d_model", None)
    if out_dim is None:
        raise ConfigError(f"backbone {cfg.model_type!r}: cannot tell its feature width; use another model")
    no_summary = any(cfg.model_type in getattr(auto, n, {}) for n in _NO_SUMMARY_TABLES)
    return TowerSpec("hf", cfg.model_type, int(out_dim), summary=not no_summary)


def _family(folder: Path, default: str) -> str:
    marker = Path(folder) / MARKER
    return json.loads(marker.read_text()).get("family", default) if marker.is_file() else default


def save_tower_weights(tower: nn.Module, directory: Path) -> None:
    """Write a tower's weights as ``tower.safetensors`` (what ``load_tower`` reads back)."""
    from safetensors.torch import save_model

    save_model(tower, str(Path(directory) / WEIGHTS))


def _build(folder: Path, config: Any, modality: str, weights: bool) -> nn.Module:
    import transformers
    from transformers import AutoModel
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    part_config = getattr(config, f"{_PART[modality].lower()}_config", None)
    if part_config is not None and weights:  # CLIP-like: only the tower for this modality
        name = MODEL_MAPPING[type(config)].__name__.replace("Model", f"{_PART[modality]}Model", 1)
        cls = getattr(transformers, name, None)
        if cls is None:
            raise ConfigError(
                f"backbone in {str(folder)!r} ({config.model_type}) has no separate "
                f"{modality} model class ({name}); use a {modality}-only backbone"
            )
        return _checked(cls.from_pretrained(str(folder), local_files_only=True, output_loading_info=True), folder)
    if weights:
        try:
            loaded = AutoModel.from_pretrained(str(folder), local_files_only=True, add_pooling_layer=False,
                                               output_loading_info=True)
        except TypeError:  # this model class takes no add_pooling_layer
            loaded = AutoModel.from_pretrained(str(folder), local_files_only=True, output_loading_info=True)
        return _checked(loaded, folder)
    try:
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_config(config)


def _checked(loaded: tuple[nn.Module, dict], folder: Path) -> nn.Module:
    model, info = loaded
    missing = [k for k in info.get("missing_keys", []) if "pooler" not in k]
    if missing:
        log.warning("backbone in %s: %d weight(s) are not in the checkpoint and start random "
                    "(first: %s); check that the folder holds the model you meant",
                    folder, len(missing), ", ".join(sorted(missing)[:3]))
    return model


def tower_config(folder: Path, modality: str) -> Any:
    """The transformers config of the ``modality`` tower in ``folder`` (a sub-config for CLIP-like)."""
    from transformers import AutoConfig

    with quiet_transformers():
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    return getattr(config, f"{_PART[modality].lower()}_config", None) or config


def save_tower_config(folder: Path, modality: str, directory: Path, family: str = "hf") -> None:
    """Write what ``load_tower(directory, weights=False)`` needs: the config + a family marker."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if family == "hf":
        tower_config(folder, modality).save_pretrained(str(directory))
    else:
        get_family(family, folder).save_config(Path(folder), directory)
    (directory / MARKER).write_text(json.dumps({"family": family}, indent=2))


def text_limit(config: Any, tokenizer: Any) -> int:
    """The most tokens (specials included) a text backbone accepts."""
    limits = []
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        offset = 2 if config.model_type in _OFFSET_POSITIONS else 0
        limits.append(int(positions) - offset)
    declared = getattr(tokenizer, "model_max_length", None)
    if declared and declared < 1_000_000:  # tokenizers without a limit declare ~1e30
        limits.append(int(declared))
    return min(limits) if limits else 512
