"""On-disk store of a frozen backbone's features, and the items a backbone input holds.

A frozen encoder gives the same output for the same input, so its features are computed
once and kept in ``<cache_dir>/<identity>/<key[:2]>/<key>.safetensors`` (no pickle):
``identity`` hashes the backbone's weights, its preprocessing and what is stored; ``key``
hashes the identity and the input's content (file bytes or text). Writes are atomic, so
concurrent fits may share a folder, and the whole folder is safe to delete at any time.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file

__all__ = ["CachedFeatures", "BackboneItem", "FeatureStore", "default_cache_dir", "content_key"]

log = logging.getLogger("polymodal")


@dataclass
class CachedFeatures:
    """A frozen backbone's output for one input.

    Attributes:
        pooled: ``Float32[D]``.
        tokens: ``Float16[T, D]``, real positions only; None when only pooled is kept.
    """

    pooled: torch.Tensor
    tokens: torch.Tensor | None = None


@dataclass
class BackboneItem:
    """One row's input to a pretrained backbone, as the dataset caches it.

    Attributes:
        value: the decoded model input (token ids, pixels, waveform); None once
            ``features`` are known.
        key: content key in the feature store (frozen encoders with a cache), else None.
        features: the frozen backbone's output for this input, when known.
        truncated: the text was cut to the backbone's limit.
    """

    value: Any = None
    key: str | None = None
    features: CachedFeatures | None = None
    truncated: bool = False


def default_cache_dir(configured: str | None) -> Path:
    """``training.cache_dir``, else ``$POLYMODAL_CACHE``, else ``~/.cache/polymodal/features``."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get("POLYMODAL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "polymodal" / "features"


def content_key(identity: str, content: bytes) -> str:
    """The store key of one input: sha256 of the encoder identity and the input's bytes."""
    return hashlib.sha256(identity.encode() + b"\0" + content).hexdigest()


class FeatureStore:
    """Features of one encoder identity under ``root``.

    Args:
        root: the cache folder (created on first write).
        identity: hex digest naming the encoder + preprocessing (a subfolder).
        describe: written once to ``identity.json`` so a person can tell folders apart.
    """

    def __init__(self, root: Path, identity: str, describe: Mapping[str, Any]):
        self.root = Path(root)
        self.identity = identity
        self.folder = self.root / identity[:24]
        self.describe = dict(describe)
        self._writable = True

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.safetensors"

    def get(self, key: str) -> tuple[CachedFeatures, bool] | None:
        """``(features, truncated)`` stored under ``key``, or None (a damaged file is a miss)."""
        try:
            data = self._path(key).read_bytes()  # one read: faster than mapping thousands of small files
            tensors = load(data)
            header = json.loads(data[8: 8 + int.from_bytes(data[:8], "little")])
        except (OSError, SafetensorError, RuntimeError, ValueError):
            return None  # absent, or damaged (then overwritten by the next put)
        if "pooled" not in tensors:
            return None
        truncated = (header.get("__metadata__") or {}).get("truncated") == "1"
        return CachedFeatures(tensors["pooled"], tensors.get("tokens")), truncated

    def put(self, key: str, features: CachedFeatures, truncated: bool = False) -> None:
        """Store atomically; an unwritable cache folder is reported once, then skipped."""
        if not self._writable:
            return
        path = self._path(key)
        tensors = {"pooled": features.pooled.contiguous()}
        if features.tokens is not None:
            tensors["tokens"] = features.tokens.contiguous()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            described = self.folder / "identity.json"
            if not described.is_file():
                described.write_text(json.dumps(self.describe, indent=2, sort_keys=True))
            handle, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=path.parent)
            os.close(handle)
            try:
                save_file(tensors, tmp, metadata={"truncated": "1" if truncated else "0"})
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError as exc:
            self._writable = False
            log.warning("feature cache %s is not writable (%s); features are computed without "
                        "caching. Set training.cache_dir (or $POLYMODAL_CACHE) to a writable folder",
                        self.root, exc.strerror or exc)
