"""Damaged ``.faiss`` files whose manifest was recomputed: a count field that claims gigabytes
made faiss allocate (and fill) that much before finding the file too short, so `polymodal
search` seemed to hang (`bench/fuzz.py --damaged`: a timeout on an ``index.faiss`` with "word"
damage). The header is now checked against the file size and ``index.json`` first, so each
damage is one ``ModelDirError`` naming the file, and faiss never sees such a file."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from polymodal.errors import ModelDirError
from polymodal.modeldir import write_manifest

faiss = pytest.importorskip("faiss")

from polymodal.retrieval import VectorIndex  # noqa: E402

# (kind, file, byte offset of a 64-bit count, what it counts) in the layouts faiss 1.x writes for
# 64 8-d vectors: the header is 37 bytes (type code, d, ntotal, two unused words, trained, metric).
COUNT_FIELDS = [
    ("flat", "index.faiss", 37, "vectors"),
    ("flat", "scan.faiss", 65, "quantizer ranges"),
    ("flat", "scan.faiss", 137, "codes"),
    ("hnsw", "index.faiss", 37, "level probabilities"),
    ("ivf", "index.faiss", 37, "list count"),
    ("ivf", "index.faiss", 90, "vectors"),  # the coarse quantizer's centres
]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("indexes")
    vectors = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    for kind in ("flat", "hnsw", "ivf"):
        VectorIndex.build(vectors, [f"item{i}" for i in range(64)], kind=kind, nlist=4,
                          meta={"column": "text", "modality": "text", "space": "own"}).save(root / kind)
    return root


def _damaged(clean: Path, tmp_path: Path, kind: str, name: str, at: int, data: bytes) -> Path:
    folder = tmp_path / kind
    shutil.copytree(clean / kind, folder)
    blob = bytearray((folder / name).read_bytes())
    blob[at:at + len(data)] = data
    (folder / name).write_bytes(bytes(blob))
    write_manifest(folder)  # as a careless script would: the checksum is not a signature
    return folder


@pytest.mark.parametrize("claim", [0x7FFFFFFF, 0xFFFFFFFF, 1 << 36])
@pytest.mark.parametrize("kind,name,at,what", COUNT_FIELDS)
def test_a_count_claiming_gigabytes_is_refused_before_faiss_reads(clean, tmp_path, monkeypatch,
                                                                   kind, name, at, what, claim):
    folder = _damaged(clean, tmp_path, kind, name, at, struct.pack("<Q", claim))

    real = faiss.read_index

    def guarded(path, *args):
        assert not str(path).endswith(name), "faiss must not read a file whose counts do not fit it"
        return real(path, *args)

    with monkeypatch.context() as m:
        m.setattr(faiss, "read_index", guarded)
        with pytest.raises(ModelDirError) as caught:
            VectorIndex.load(folder)
    message = str(caught.value)
    assert name in message and "damaged" in message and "build the index again" in message
    assert f"{claim:,}" in message and "\n" not in message


def test_search_on_a_damaged_index_is_one_clear_error(clean, tmp_path):
    folder = _damaged(clean, tmp_path, "flat", "index.faiss", 37, struct.pack("<I", 0xFFFFFFFF))
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "polymodal.cli", "search", str(folder), "--like", "item1"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "index.faiss is damaged" in errors[0], result.stderr
    assert "vectors count claims 4,294,967,295 values" in errors[0]
    assert "more than the 2,048 bytes left in the file" in errors[0]


@pytest.mark.parametrize("case", ["untrained", "metric", "dimension", "count", "kind", "trailing", "meta-count"])
def test_header_fields_are_checked_against_index_json(clean, tmp_path, case):
    at, data, words = {
        "untrained": (32, b"\x00", "trained=0"),  # an ivf index that says "not trained" failed at search
        "metric": (33, struct.pack("<i", 1), "metric=1"),
        "dimension": (4, struct.pack("<i", 16), "64 16-d vectors, where index.json and ids.json record 64 8-d"),
        "count": (8, struct.pack("<q", 65), "65 8-d vectors"),
        "kind": (0, b"IxFI", "expected b'IwFl'"),
        "trailing": (None, b"\x00" * 8, "8 bytes follow the end of the index"),
        "meta-count": (None, None, "'count' is 63 but ids.json holds 64 ids"),
    }[case]
    folder = tmp_path / "ivf"
    shutil.copytree(clean / "ivf", folder)
    if case == "meta-count":
        meta = json.loads((folder / "index.json").read_text())
        (folder / "index.json").write_text(json.dumps({**meta, "count": 63}))
    else:
        blob = bytearray((folder / "index.faiss").read_bytes())
        blob[len(blob) if at is None else at:(len(blob) if at is None else at) + len(data)] = data
        (folder / "index.faiss").write_bytes(bytes(blob))
    write_manifest(folder)
    with pytest.raises(ModelDirError, match="is damaged") as caught:
        VectorIndex.load(folder)
    assert words in str(caught.value)


WORDS = (struct.pack("<I", 0xFFFFFFFF), struct.pack(">I", 0x7FFFFFFF), struct.pack("<I", 0),
         struct.pack(">I", 0x10000))


def test_every_word_damage_in_the_headers_loads_or_is_one_clear_error(clean, tmp_path):
    """The fuzzer's "word" mutation (an extreme 32-bit value) at every offset of each file's
    first 128 bytes, where the counts are."""
    limit = faiss.get_deserialization_vector_byte_limit() \
        if hasattr(faiss, "get_deserialization_vector_byte_limit") else None
    outcomes = {"loaded": 0, "refused": 0}
    for kind, name in [("flat", "index.faiss"), ("flat", "scan.faiss"), ("hnsw", "index.faiss"),
                       ("ivf", "index.faiss")]:
        folder = tmp_path / kind
        if not folder.exists():
            shutil.copytree(clean / kind, folder)
        original = (clean / kind / name).read_bytes()
        for at in range(0, 124):
            word = WORDS[at % len(WORDS)]
            (folder / name).write_bytes(original[:at] + word + original[at + 4:])
            write_manifest(folder)
            try:
                index = VectorIndex.load(folder)
            except ModelDirError as exc:
                assert name in str(exc) and "\n" not in str(exc)
                outcomes["refused"] += 1
                continue
            index.search(np.ones((2, index.dim), dtype=np.float32), k=3)
            index.vector(index.ids[0])
            outcomes["loaded"] += 1
        (folder / name).write_bytes(original)
    assert outcomes["refused"] > 0 and outcomes["loaded"] > 0
    if limit is not None:  # the per-array limit is lowered while reading, then restored
        assert faiss.get_deserialization_vector_byte_limit() == limit
