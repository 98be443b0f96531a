"""Damaged model directories, checkpoint folders and vector indexes, for ``bench/fuzz.py --damaged N``.

Each case copies a clean folder, damages one file in it (garbage, truncation, a pickle or
``torch.save`` file as weights, a list or a number where an object belongs, a key dropped or
given a value of the wrong type, a safetensors header that claims a huge size, bit flips) and
then RECOMPUTES the manifest with ``modeldir.write_manifest``, as an attacker or a careless
script could (the checksum is not a signature). Then a worker process loads it the way the
CLI does: ``Predictor.load`` + ``predict`` for a model, ``RunDirectory`` + the checkpoint checks
for a checkpoint folder, ``VectorIndex.load`` + ``search`` for an index. Every outcome must be
"loaded" (the damage was harmless) or a ``PolymodalError`` that names the damaged file.
"""
from __future__ import annotations

import io
import json
import pickle
import random
import shutil
import struct
import traceback
from pathlib import Path
from typing import Any

TARGETS = ("model", "checkpoint", "index")
SHARE = {"model": 0.5, "checkpoint": 0.25, "index": 0.25}
JSON_SWAPS = ([], [1, 2], None, 0, -1, 1e308, "text", True, {}, {"__tensor__": "t999"}, [[["x"]]])


def _torch_save_bytes() -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(2, 2)}, buffer)
    return buffer.getvalue()


def _json_damage(blob: bytes, rng: random.Random) -> tuple[bytes, str]:
    """A valid JSON file with a key dropped, a value retyped, or a wrong top-level type."""
    try:
        value = json.loads(blob)
    except ValueError:
        return b"[]", "list"
    how = rng.choice(("drop", "retype", "retype", "top"))
    if how == "top" or not isinstance(value, (dict, list)) or not value:
        swap = rng.choice(JSON_SWAPS)
        return json.dumps(swap).encode(), f"top-level {json.dumps(swap)}"
    node, path = value, []
    while True:  # walk down to a random container
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = rng.choice(keys)
        child = node[key]
        if not isinstance(child, (dict, list)) or not child or rng.random() < 0.4:
            break
        node, path = child, path + [key]
    if not keys:
        return json.dumps(rng.choice(JSON_SWAPS)).encode(), "empty container swapped"
    if how == "drop" and isinstance(node, dict):
        del node[key]
        return json.dumps(value).encode(), f"dropped {'/'.join(map(str, path + [key]))}"
    swap = rng.choice(JSON_SWAPS)
    node[key] = swap
    return json.dumps(value).encode(), f"{'/'.join(map(str, path + [key]))} = {json.dumps(swap)}"


def _safetensors_damage(blob: bytes, rng: random.Random) -> tuple[bytes, str]:
    how = rng.choice(("huge", "huge", "header", "offsets", "truncate", "pickle", "torch"))
    length = struct.unpack("<Q", blob[:8])[0]
    if how == "huge":
        claim = rng.choice((2**62, 2**40, len(blob), length + 1, 100 << 20, 2**64 - 1))
        return struct.pack("<Q", claim) + blob[8:], f"header claims {claim} bytes"
    if how == "header":
        header = json.loads(blob[8:8 + length])
        data, swapped = _json_damage(json.dumps(header).encode(), rng)
        return struct.pack("<Q", len(data)) + data + blob[8 + length:], f"header {swapped}"
    if how == "offsets":
        header = json.loads(blob[8:8 + length])
        key = rng.choice([k for k in header if k != "__metadata__"])
        header[key]["data_offsets"][1] += rng.choice((1, 4096, 2**40))
        data = json.dumps(header).encode()
        return struct.pack("<Q", len(data)) + data + blob[8 + length:], f"tensor {key} past the end"
    if how == "truncate":
        cut = rng.randrange(len(blob))
        return blob[:cut], f"truncated to {cut} bytes"
    if how == "pickle":
        return pickle.dumps({"weight": [0.0] * 4}), "a pickle"
    return _torch_save_bytes(), "a torch.save file"


def damage(root: Path, rng: random.Random, mutate: Any) -> str:
    """Damage one file under ``root`` in place; returns what was done."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "manifest.json")
    weights = [p for p in files if p.suffix in (".safetensors", ".faiss")]
    target = rng.choice(weights) if weights and rng.random() < 0.35 else rng.choice(files)
    blob = target.read_bytes()
    rel = target.relative_to(root).as_posix()
    if target.suffix == ".safetensors" and rng.random() < 0.7:
        out, how = _safetensors_damage(blob, rng)
    elif target.suffix == ".json" and rng.random() < 0.6:
        out, how = _json_damage(blob, rng)
    elif target.suffix in (".yaml", ".json") and rng.random() < 0.3:
        out, how = rng.choice(((b"- a\n- b\n", "a YAML list"), (b"!!python/object/apply:os.system ['true']\n", "a python tag"),
                               (b"\xff\xfe\x00garbage", "binary garbage"), (b"", "empty"), (b"3\n", "a number"),
                               (b"a: [\n", "unclosed YAML")))
    else:
        out, how = mutate(blob, rng, [blob])
    target.write_bytes(out)
    return f"{rel}: {how}"


def worker(conn) -> None:
    """Run damaged cases from ``conn``: load and use each folder, answer the outcome."""
    import logging

    import torch

    torch.set_num_threads(1)
    logging.getLogger("polymodal").setLevel(logging.CRITICAL)
    import numpy as np

    from polymodal import Predictor
    from polymodal.errors import PolymodalError
    from polymodal.retrieval import VectorIndex
    from polymodal.training.checkpoint import check_checkpoint
    from polymodal.training.resume import RunDirectory

    unfitted: dict[str, Any] = {}
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        path = Path(job["path"])
        try:
            if job["kind"] == "model":
                Predictor.load(path).predict(job["table"])
            elif job["kind"] == "index":
                index = VectorIndex.load(path)
                index.search(np.ones((1, index.dim), dtype=np.float32), k=min(3, len(index)))
                index.vector(index.ids[0])
            else:
                if not unfitted:  # the preprocessor types of the run, from its clean model
                    unfitted.update(Predictor.load(job["model"]).fitted_.preprocessors)
                run = RunDirectory(path, resume=True, fingerprint=job["fingerprint"])
                if run.resuming:
                    check_checkpoint(run.checkpoint_path)
                    run.load_preprocessors(unfitted)
            conn.send(("loaded", "", ""))
        except PolymodalError as exc:
            message = str(exc)
            useful = any(name in message for name in job["names"]) and "\n" not in message
            conn.send(("polymodal" if useful else "unhelpful", type(exc).__name__, message[:300]))
        except BaseException as exc:  # noqa: BLE001 - exactly what the fuzzer looks for
            conn.send(("other", type(exc).__name__, traceback.format_exc()[-1500:]))


def prepare(work: Path, model_dir: Path, run_dir: Path, train_csv: Path, rng: random.Random) -> dict:
    """Clean sources: the model, its (kept) checkpoint folder, and an index of each kind."""
    import numpy as np

    from polymodal.retrieval import VectorIndex

    indexes = []
    vectors = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    for kind in ("flat", "hnsw", "ivf"):
        folder = work / "clean" / f"index-{kind}"
        VectorIndex.build(vectors, [f"item{i}" for i in range(64)], kind=kind,
                          meta={"column": "text", "modality": "text", "space": "own"}, nlist=4).save(folder)
        indexes.append(folder)
    fingerprint = json.loads((run_dir / "run.json").read_text())
    return {"model": [model_dir], "checkpoint": [run_dir], "index": indexes, "fingerprint": fingerprint,
            "table": str(train_csv)}


def make_case(kind: str, n: int, rng: random.Random, clean: dict, work: Path, mutate: Any) -> dict:
    """Copy a clean folder, damage it, recompute its manifest; describe the job."""
    from polymodal.modeldir import MANIFEST, write_manifest

    source = rng.choice(clean[kind])
    path = work / "damaged" / f"{kind}{n:05d}"
    shutil.copytree(source, path)
    how = damage(path, rng, mutate)
    if (path / MANIFEST).is_file():
        write_manifest(path)
    rel = how.split(":")[0]
    job = {"kind": kind, "path": str(path), "how": how, "table": clean["table"], "model": str(clean["model"][0]),
           # a message may name the file, its folder, or the files that together describe the model
           "names": [rel, rel.split("/")[-1]] + (["/".join(rel.split("/")[:2]), rel.split("/")[0] + "/"]
                                                 if "/" in rel else [])}
    if kind == "checkpoint":
        job["fingerprint"] = clean["fingerprint"]
    return job


def run_damaged(cases: int, work: Path, clean_model: Path, run_dir: Path, train_csv: Path,
                rng: random.Random, runner: Any, mutate: Any) -> tuple[dict, list[dict]]:
    """``cases`` damaged folders through ``runner`` (a ``fuzz.Runner`` on ``worker``)."""
    from collections import Counter

    clean = prepare(work, clean_model, run_dir, train_csv, rng)
    counts = {k: round(cases * SHARE[k]) for k in TARGETS}
    counts["model"] = cases - counts["checkpoint"] - counts["index"]
    plan = [k for k in TARGETS for _ in range(counts[k])]
    rng.shuffle(plan)
    table: dict[str, Counter] = {k: Counter() for k in TARGETS}
    failures = []
    for n, kind in enumerate(plan):
        job = make_case(kind, n, rng, clean, work, mutate)
        outcome, name, detail = runner.run(job)
        table[kind][outcome] += 1
        if outcome not in ("loaded", "polymodal"):
            failures.append({"kind": kind, "how": job["how"], "outcome": outcome, "error": name, "detail": detail})
        shutil.rmtree(job["path"], ignore_errors=True)
    return table, failures


def report(table: dict, failures: list[dict], seconds: float) -> None:
    heads = ("loaded", "polymodal", "unhelpful", "other", "timeout", "crash")
    print(f"damaged folders (manifest recomputed): {sum(sum(c.values()) for c in table.values()):,} cases, "
          f"{seconds:.1f} s")
    print(f"{'target':<12}{'cases':>7}" + "".join(f"{h:>12}" for h in heads))
    for kind in (*TARGETS, "total"):
        counts = sum(table.values(), __import__("collections").Counter()) if kind == "total" else table[kind]
        print(f"{kind:<12}{sum(counts.values()):>7}" + "".join(f"{counts[h]:>12}" for h in heads))
    for failure in failures[:10]:
        print(f"DAMAGED FAILURE {failure['outcome']} {failure['error']} [{failure['kind']}, {failure['how']}]: "
              f"{failure['detail'][-600:]}")
    print(f"damaged: non-PolymodalError failures: {sum(1 for f in failures if f['outcome'] != 'unhelpful')}")
    print(f"damaged: PolymodalErrors with an unhelpful message: {sum(1 for f in failures if f['outcome'] == 'unhelpful')}")
