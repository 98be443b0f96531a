"""Mutation fuzzer of the HTTP service: damaged uploads and malformed rows against ``polymodal serve``.

Takes the real files of ``bench/fuzz.py``'s corpus (Fashion-MNIST PNGs and other image formats,
rendered emoji, FSDD WAVs and FLAC/OGG/8-, 24-bit and float WAVs, a decompression bomb) and
its mutators (flipped bits, truncations, splices, extreme header words), trains the same small
image+audio+text+tabular model (or serves ``--model``), and sends each mutated file to the
service in-process (``fastapi.testclient``, no network): as a multipart part or base64 in
JSON, to the model's image and audio columns, as a search query (``--index``), plus rows of
values of the wrong kinds and damaged request bodies.

    POLYMODAL_DATA=../shared/data .venv/bin/python bench/serve_fuzz.py --cases 2000
    # bounded, as the test runs it: --cases 120 --model DIR --index DIR

Prints the count of each status code per kind of case, ``500 responses: N`` and whether a good
request is still answered afterwards; exits 1 on any 500 or if it is not.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from fuzz import TRAIN_CONFIG, build_corpus, mutate

KINDS = ("upload", "base64", "search", "rows", "body")
JUNK = (None, "", " ", "x" * 5000, "../../etc/passwd", "/etc/passwd", "C:\\boot.ini", 0, -1, 1e308, 2**64, True,
        [], {}, [1, 2], {"base64": 1}, {"base64": "@@@"}, {"bytes": "AAAA"}, {"path": "/etc/passwd"}, "NaN",
        "\x00", "\U0001F600" * 100, {"base64": ""}, {"upload": "x"})


def _file_columns(served) -> dict[str, str]:
    return {c: r for c, r in served.columns.items() if r in ("image", "audio")}


def case(kind: str, rng: random.Random, blobs: dict[str, list[bytes]], served, index) -> tuple[str, dict]:
    """One fuzz request: ``(path, httpx request keywords)``."""
    files = _file_columns(served)
    column = rng.choice(sorted(files)) if files else None
    modality = files.get(column, rng.choice(("image", "audio")))
    pool = blobs[rng.choice(("image", "audio"))] if rng.random() < 0.2 else blobs[modality]  # some of the other kind
    blob, _ = mutate(rng.choice(pool), rng, pool)
    predict = f"/v1/models/{served.name}/{rng.choice(('predict', 'predict', 'explain'))}"
    if kind == "upload" and column:
        rows = [{c: v for c, v in _good_row(served).items() if c != column}]
        return predict, {"data": {"rows": json.dumps(rows)}, "files": [(column, ("f", blob))]}
    if kind == "base64" and column:
        return predict, {"json": {"rows": [{column: {"base64": base64.b64encode(blob).decode()}}]}}
    if kind == "search" and index is not None:
        query = rng.choice(sorted(index.searcher.query_columns()))
        if query == "text":
            return f"/v1/indexes/{index.name}/search", {"json": {"text": rng.choice(JUNK), "k": rng.choice(JUNK)}}
        return f"/v1/indexes/{index.name}/search", {"files": [(query, ("q", blob))], "data": {"k": "3"}}
    if kind == "body":
        good = json.dumps({"rows": [_good_row(served)]}).encode()
        body, _ = mutate(good, rng, [good, blob])
        kind_of = rng.choice(("application/json", "multipart/form-data; boundary=x", "multipart/form-data",
                              "application/x-www-form-urlencoded", "text/plain", ""))
        return predict, {"content": body, "headers": {"content-type": kind_of}}
    row = {c: rng.choice(JUNK) for c in rng.sample(sorted(served.columns), k=rng.randint(1, len(served.columns)))}
    if rng.random() < 0.2:
        row[rng.choice(("nope", "label", "", "x" * 300))] = rng.choice(JUNK)
    rows = rng.choice(([row], row, [row] * rng.randint(0, 80), "rows", None))
    return predict, {"json": {"rows": rows, **({"steps": rng.choice(JUNK)} if rng.random() < 0.3 else {})}}


def _good_row(served) -> dict:
    return {c: ("a word" if r in ("text", "categorical") else 1.0) for c, r in served.columns.items()
            if r not in ("image", "audio")}


def run(client, served, index, blobs: dict[str, list[bytes]], n: int, rng: random.Random) -> tuple[dict, list, int]:
    """``n`` cases; returns status counts per kind, the 500s (path, detail) and a good request's status."""
    table: dict[str, Counter] = {k: Counter() for k in KINDS}
    errors: list[tuple[str, str]] = []
    kinds = [k for k in KINDS if k != "search" or index is not None]
    for _ in range(n):
        kind = rng.choice(kinds)
        path, request = case(kind, rng, blobs, served, index)
        response = client.post(path, **request)
        table[kind][response.status_code] += 1
        if response.status_code >= 500:
            errors.append((f"{kind} {path}", response.text[:300]))
    good = client.post(f"/v1/models/{served.name}/predict", json={"rows": [_good_row(served)]}).status_code
    return table, errors, good


def report(table: dict[str, Counter], errors: list, good: int, seconds: float) -> None:
    codes = sorted({c for counts in table.values() for c in counts})
    print(f"{'kind':<8}" + "".join(f"{c:>7}" for c in codes) + f"{'total':>8}")
    for kind, counts in table.items():
        if counts:
            print(f"{kind:<8}" + "".join(f"{counts.get(c, 0):>7}" for c in codes) + f"{sum(counts.values()):>8}")
    total = Counter()
    for counts in table.values():
        total.update(counts)
    print(f"{'total':<8}" + "".join(f"{total.get(c, 0):>7}" for c in codes) + f"{sum(total.values()):>8}")
    print(f"500 responses: {sum(v for c, v in total.items() if c >= 500)}")
    for where, detail in errors[:5]:
        print(f"  {where}: {detail}")
    print(f"good request afterwards: {good}")
    print(f"({seconds:.1f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=500, help="requests to send")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, default=None, help="model directory (default: train a small one)")
    parser.add_argument("--index", type=Path, default=None, help="an index to fuzz search with")
    parser.add_argument("--data-dir", type=Path, default=None, help="real data (default: $POLYMODAL_DATA)")
    args = parser.parse_args(argv)
    data = args.data_dir or (Path(os.environ["POLYMODAL_DATA"]) if os.environ.get("POLYMODAL_DATA") else None)
    if data is None or not data.is_dir():
        print("error: pass --data-dir or set POLYMODAL_DATA to the shared data folder", file=sys.stderr)
        return 2
    import logging

    logging.getLogger("polymodal").setLevel(logging.CRITICAL)  # the 4xx are expected; the table says them
    from fastapi.testclient import TestClient

    from polymodal import Predictor
    from polymodal.serving import ServeSettings, create_app

    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="polymodal-serve-fuzz-"))
    start = time.perf_counter()
    try:
        corpus = build_corpus(data, work, rng)
        blobs = {"image": [p.read_bytes() for p in corpus["images"]], "audio": [p.read_bytes() for p in corpus["audio"]]}
        model = args.model
        if model is None:
            Predictor(label="label", config=TRAIN_CONFIG, verbose=False).fit(work / "train.csv").save(work / "model")
            model = work / "model"
        app = create_app(ServeSettings(models=[model], indexes=[args.index] if args.index else []))
        registry = app.state.registry
        served = next(iter(registry.models.values()))
        index = next(iter(registry.indexes.values()), None)
        client = TestClient(app, raise_server_exceptions=False)
        table, errors, good = run(client, served, index, blobs, args.cases, rng)
        registry.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(table, errors, good, time.perf_counter() - start)
    return 1 if errors or good != 200 else 0


if __name__ == "__main__":
    sys.exit(main())
