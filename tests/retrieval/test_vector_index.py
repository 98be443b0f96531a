"""The faiss vector index: exact = brute force, approximate kinds, persistence, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

from polymodal.errors import DataError, ModelDirError, PolymodalError
from polymodal.retrieval import VectorIndex, more_like_this, recommend

pytest.importorskip("faiss")


def _unit(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_index_returns_the_brute_force_neighbours():
    items, queries = _unit(300), _unit(5, seed=1)
    index = VectorIndex.build(items, ids=[f"item{i}" for i in range(300)])
    scores, positions = index.search(queries, k=7)
    expected = np.argsort(-(queries @ items.T), axis=1)[:, :7]
    assert (positions == expected).all()
    assert np.allclose(scores, np.take_along_axis(queries @ items.T, expected, axis=1), atol=1e-5)


def test_single_queries_scan_then_rerank_exactly_even_among_near_duplicates(tmp_path):
    """One query goes through the 8-bit scan + exact re-ranking: still numpy's neighbours."""
    rng = np.random.default_rng(2)
    centre = _unit(1, d=32)[0]
    items = centre + rng.normal(0, 0.002, (500, 32)).astype(np.float32)  # near-ties everywhere
    items = np.concatenate([items, _unit(500, d=32, seed=3)])
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    VectorIndex.build(items).save(tmp_path / "idx")
    index = VectorIndex.load(tmp_path / "idx")
    assert (tmp_path / "idx" / "scan.faiss").is_file()
    for query in [centre, *_unit(10, d=32, seed=4)]:
        scores, positions = index.search(query[None, :], k=12)
        exact = items @ query
        assert np.array_equal(positions[0], np.lexsort((np.arange(len(items)), -exact))[:12])
        assert np.allclose(scores[0], exact[positions[0]], atol=1e-6)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_kinds_find_the_item_itself(kind, tmp_path):
    items = _unit(400)
    index = VectorIndex.build(items, kind=kind, nprobe=8) if kind == "ivf" else VectorIndex.build(items, kind=kind)
    index.save(tmp_path / "idx")
    loaded = VectorIndex.load(tmp_path / "idx")
    _, positions = loaded.search(items[:20], k=1)
    assert (positions[:, 0] == np.arange(20)).mean() >= 0.9
    assert np.allclose(loaded.vector(3), items[3], atol=1e-5)


def test_save_load_round_trip_keeps_ids_and_meta(tmp_path):
    index = VectorIndex.build(_unit(10) * 3.0, ids=[10, "b", 12.0] + list(range(7)), meta={"column": "photo"})
    index.save(tmp_path / "idx")
    loaded = VectorIndex.load(tmp_path / "idx")
    assert loaded.ids[:3] == [10, "b", 12] and loaded.meta["column"] == "photo" and len(loaded) == 10
    assert np.allclose(np.linalg.norm(loaded.vector("b")), 1.0, atol=1e-5)  # stored scaled to unit length
    assert loaded.position("10") == 0  # ids compare as text


def test_bad_input_gives_clear_errors(tmp_path):
    items = _unit(5)
    with pytest.raises(DataError, match="nothing to index"):
        VectorIndex.build(np.zeros((0, 8), dtype=np.float32))
    nan = items.copy()
    nan[3, 2] = np.nan
    with pytest.raises(DataError, match="1 of 5 vectors hold NaN.*row 3"):
        VectorIndex.build(nan)
    with pytest.raises(DataError, match="unique"):
        VectorIndex.build(items, ids=["a", "b", "a", "c", "d"])
    with pytest.raises(PolymodalError, match="unknown index kind"):
        VectorIndex.build(items, kind="lsh")
    index = VectorIndex.build(items)
    with pytest.raises(DataError, match="k=6 is larger than the collection"):
        index.search(items[:1], k=6)
    with pytest.raises(DataError, match="NaN"):
        index.search(nan[3:4], k=1)
    with pytest.raises(DataError, match="4 dimensions"):
        index.search(items[:1, :4], k=1)
    with pytest.raises(DataError, match="not in the index"):
        index.vector("missing")


def test_load_refuses_a_changed_or_foreign_folder(tmp_path):
    VectorIndex.build(_unit(5)).save(tmp_path / "idx")
    ids = tmp_path / "idx" / "ids.json"
    ids.write_text(json.dumps(["x"] * 5))
    with pytest.raises(ModelDirError, match="changed since save"):
        VectorIndex.load(tmp_path / "idx")
    with pytest.raises(ModelDirError, match="not a polymodal index"):
        VectorIndex.load(tmp_path)


def test_save_is_atomic(tmp_path, monkeypatch):
    VectorIndex.build(_unit(5), ids=list("abcde")).save(tmp_path / "idx")
    broken = VectorIndex.build(_unit(6))
    monkeypatch.setattr("polymodal.retrieval.index.write_manifest",
                        lambda root: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        broken.save(tmp_path / "idx")
    assert VectorIndex.load(tmp_path / "idx").ids == list("abcde")
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]


def test_more_like_this_and_a_profile_leave_out_liked_and_seen_items():
    # Items 0-4 point one way, 5-9 the other.
    base = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    items = np.repeat(base, 5, axis=0) + np.random.default_rng(0).normal(0, 0.05, (10, 2)).astype(np.float32)
    index = VectorIndex.build(items, ids=[f"i{n}" for n in range(10)])
    similar = more_like_this(index, "i0", k=4)
    assert similar["id"].tolist() != [] and "i0" not in similar["id"].tolist()
    assert set(similar["id"]) == {"i1", "i2", "i3", "i4"}
    picks = recommend(index, ["i0", "i1"], seen=["i2", "unknown"], k=3)
    assert picks["rank"].tolist() == [1, 2, 3]
    assert set(picks["id"][:2]) == {"i3", "i4"} and picks["id"][2] not in {"i0", "i1", "i2"}
    with pytest.raises(DataError, match="not in the index"):
        recommend(index, ["nope"])
    with pytest.raises(DataError, match="nothing to recommend"):
        recommend(index, [f"i{n}" for n in range(10)])
