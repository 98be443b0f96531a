"""Search latency of the vector index over 100,000 stored 384-d vectors, one query at a time.

Builds a ``VectorIndex`` (exact ``flat`` by default; ``--kinds flat,hnsw,ivf`` to compare) over random
unit vectors (384-d, MiniLM's width), saves and reloads it as ``polymodal index`` would, then
times single queries (k=10) and checks each result against a brute-force numpy search
(every inner product, then the top k). Prints the median and p95 latency per query, numpy's
time per query and the ratio, the queries whose k neighbours equal numpy's (same items, same
order) and the recall of numpy's neighbours (the approximate ``hnsw`` trades some of it for speed).

    flock /tmp/polymodal-cpu.lock .venv/bin/python bench/search_latency.py [--n 100000] [--queries 300]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from polymodal.retrieval import VectorIndex


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--kinds", default="flat", help="comma-separated: flat,hnsw,ivf")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    items = rng.normal(size=(args.n, args.dim)).astype(np.float32)
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    queries = rng.normal(size=(args.queries, args.dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    start = time.perf_counter()
    truth = []
    for q in queries:
        scores = items @ q  # [N]
        top = np.argpartition(-scores, args.k)[: args.k]  # the k best, unordered
        truth.append(top[np.argsort(-scores[top], kind="stable")])
    numpy_ms = (time.perf_counter() - start) / len(queries) * 1e3

    print(f"{args.n:,} stored {args.dim}-d unit vectors, {len(queries)} single queries, k={args.k}")
    print(f"  numpy brute force: {numpy_ms:.2f} ms per query")
    for kind in args.kinds.split(","):
        t0 = time.perf_counter()
        built = VectorIndex.build(items, kind=kind)
        build_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            built.save(Path(tmp) / "idx")
            index = VectorIndex.load(Path(tmp) / "idx")
        index.search(queries[:1], args.k)  # warm-up
        times, same, found = [], 0, 0
        for q, expected in zip(queries, truth):
            t0 = time.perf_counter()
            _, positions = index.search(q[None, :], args.k)
            times.append(time.perf_counter() - t0)
            same += int(np.array_equal(positions[0], expected))
            found += len(set(positions[0].tolist()) & set(expected.tolist()))
        ms = np.array(times) * 1e3
        print(f"  {kind:5s}: median {np.median(ms):.2f} ms, p95 {np.percentile(ms, 95):.2f} ms per query "
              f"({numpy_ms / np.median(ms):.1f}x numpy's speed); same neighbours in the same order as numpy: "
              f"{same}/{len(queries)} queries, recall@{args.k} {found / (args.k * len(queries)):.1%}; "
              f"built in {build_s:.1f}s")


if __name__ == "__main__":
    main()
