"""Which approximate nearest-neighbour library backs the embedded gallery store?

Builds an HNSW index with the same parameters (M=16, ef_construction=128, ef_search=64, cosine)
in usearch, hnswlib and faiss-cpu over random unit vectors, then prints build time, p50 query
time (one query at a time, as a service answers) and recall@10 against exact numpy search.

    python benchmarks/ann_choice.py --n 100000 --dim 512 --threads 2

Random vectors are the hardest case for HNSW (no cluster structure), so recalls here are lower
bounds for real face embeddings.  Libraries that are not installed are skipped.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import numpy as np

M, EF_CONSTRUCTION, EF_SEARCH, K = 16, 128, 64, 10


def _usearch(data: np.ndarray, threads: int) -> tuple[Any, Callable[[np.ndarray], np.ndarray]]:
    from usearch.index import Index

    index = Index(ndim=data.shape[1], metric="cos", dtype="f32", connectivity=M,
                  expansion_add=EF_CONSTRUCTION, expansion_search=EF_SEARCH)
    index.add(np.arange(len(data)), data, threads=threads)
    return index, lambda q: np.asarray(index.search(q, K).keys)


def _hnswlib(data: np.ndarray, threads: int) -> tuple[Any, Callable[[np.ndarray], np.ndarray]]:
    import hnswlib

    index = hnswlib.Index(space="cosine", dim=data.shape[1])
    index.init_index(max_elements=len(data), M=M, ef_construction=EF_CONSTRUCTION)
    index.add_items(data, np.arange(len(data)), num_threads=threads)
    index.set_ef(EF_SEARCH)
    return index, lambda q: index.knn_query(q, k=K, num_threads=1)[0][0]


def _faiss(data: np.ndarray, threads: int) -> tuple[Any, Callable[[np.ndarray], np.ndarray]]:
    import faiss

    faiss.omp_set_num_threads(threads)
    index = faiss.IndexHNSWFlat(data.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    index.add(data)
    index.hnsw.efSearch = EF_SEARCH

    def query(q: np.ndarray) -> np.ndarray:
        faiss.omp_set_num_threads(1)
        return index.search(q[None, :], K)[1][0]

    return index, query


LIBRARIES = {"usearch": _usearch, "hnswlib": _hnswlib, "faiss-cpu": _faiss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", choices=sorted(LIBRARIES))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    data = rng.normal(size=(args.n, args.dim)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    queries = rng.normal(size=(args.queries, args.dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    truth = np.argsort(-(queries @ data.T), axis=1)[:, :K]
    print(f"n={args.n} dim={args.dim} queries={args.queries} threads={args.threads} "
          f"M={M} ef_construction={EF_CONSTRUCTION} ef_search={EF_SEARCH}")
    print(f"{'library':<10} {'build s':>8} {'p50 query ms':>13} {'recall@10':>10}")
    for name, build in LIBRARIES.items():
        if args.only and name not in args.only:
            continue
        try:
            start = time.perf_counter()
            _, query = build(data, args.threads)
            built = time.perf_counter() - start
        except ImportError:
            print(f"{name:<10} not installed")
            continue
        times, hits = [], 0
        for q, want in zip(queries, truth):
            t0 = time.perf_counter()
            found = query(q)
            times.append(time.perf_counter() - t0)
            hits += len(set(np.asarray(found).ravel().tolist()) & set(want.tolist()))
        print(f"{name:<10} {built:8.1f} {np.median(times) * 1e3:13.3f} {hits / (K * len(queries)):10.3f}",
              flush=True)


if __name__ == "__main__":
    main()
