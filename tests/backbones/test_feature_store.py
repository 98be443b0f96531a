"""The on-disk feature store: keys, atomic safetensors files, damaged files, unwritable folders."""
from __future__ import annotations

import logging

import torch

from polymodal.backbones.feature_store import CachedFeatures, FeatureStore, content_key, default_cache_dir


def test_round_trip_and_keys(tmp_path):
    store = FeatureStore(tmp_path, "a" * 64, {"backbone": "minilm"})
    key = content_key(store.identity, b"a fine film")
    assert key != content_key("b" * 64, b"a fine film") != content_key(store.identity, b"a fine movie")
    assert store.get(key) is None
    features = CachedFeatures(torch.arange(4.0), torch.ones(3, 4, dtype=torch.float16))
    store.put(key, features, truncated=True)
    got, truncated = store.get(key)
    assert truncated and torch.equal(got.pooled, features.pooled) and torch.equal(got.tokens, features.tokens)
    assert (store.folder / "identity.json").is_file()
    files = list(store.folder.rglob("*.safetensors"))
    assert len(files) == 1 and not list(store.folder.rglob(".tmp-*"))
    assert files[0].read_bytes()[8:9] == b"{"  # a safetensors header, not a pickle


def test_a_damaged_file_is_a_miss(tmp_path):
    store = FeatureStore(tmp_path, "c" * 64, {})
    key = content_key(store.identity, b"x")
    store.put(key, CachedFeatures(torch.zeros(2)))
    next(store.folder.rglob("*.safetensors")).write_bytes(b"garbage")
    assert store.get(key) is None


def test_an_unwritable_path_warns_once(tmp_path, caplog):
    (tmp_path / "file").write_text("a file, not a folder")
    store = FeatureStore(tmp_path / "file" / "cache", "d" * 64, {})
    with caplog.at_level(logging.WARNING, logger="polymodal"):
        store.put("k1", CachedFeatures(torch.zeros(2)))
        store.put("k2", CachedFeatures(torch.zeros(2)))
    assert caplog.text.count("not writable") == 1 and store.get("k1") is None


def test_default_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("POLYMODAL_CACHE", raising=False)
    assert default_cache_dir(None).parts[-3:] == (".cache", "polymodal", "features")
    monkeypatch.setenv("POLYMODAL_CACHE", str(tmp_path))
    assert default_cache_dir(None) == tmp_path
    assert default_cache_dir(str(tmp_path / "x")) == tmp_path / "x"
