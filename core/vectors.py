"""Exact k-nearest-neighbour search over embedding matrices, in facepipe's metric definitions.

Kernel-level on purpose: gallery stores (plugins) need the same four distances as
:mod:`facepipe.pipeline.metrics` but may import only the kernel.  The formulas are the pipeline's
(zero vectors: cosine 1.0, angular 0.5; ``euclidean_l2`` normalises with ``|x| + 1e-10``); a test
holds the two modules to each other.  Work is done in float64 on blocks of rows, so temporary
memory stays bounded whatever the gallery's size.
"""

from __future__ import annotations

import math

import numpy as np

from facepipe.errors import ConfigError, InvalidEmbeddingsShapeError

#: the metrics every store must answer in (facepipe's names)
STORE_METRICS: tuple[str, ...] = ("cosine", "euclidean", "euclidean_l2", "angular")

__all__ = ["STORE_METRICS", "metric_name", "prepare_rows", "distances", "exact_top_k"]


def metric_name(metric: str) -> str:
    """The canonical name of one of :data:`STORE_METRICS` (``euclidean-l2`` accepted)."""
    key = str(metric).strip().lower().replace("-", "_")
    if key not in STORE_METRICS:
        raise ConfigError(f"unknown store metric {metric!r}; expected one of {', '.join(STORE_METRICS)}")
    return key


def prepare_rows(x: np.ndarray, metric: str) -> np.ndarray:
    """Rows as the metric compares them (float64): unit rows for cosine/angular (zero rows stay
    zero), ``x / (|x| + 1e-10)`` for euclidean_l2, raw rows for euclidean."""
    rows = np.asarray(x, dtype=np.float64)
    if rows.ndim != 2:
        raise InvalidEmbeddingsShapeError(f"expected an (n, d) array of embeddings, got shape {rows.shape}")
    if not np.all(np.isfinite(rows)):
        raise InvalidEmbeddingsShapeError("embeddings hold NaN or infinite values; they must be finite")
    metric = metric_name(metric)
    if metric == "euclidean":
        return rows
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    if metric == "euclidean_l2":
        return rows / (norms + 1e-10)[:, None]
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return rows * inv[:, None]


def _finish(dots: np.ndarray, q: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        return np.clip(1.0 - dots, 0.0, 2.0)
    if metric == "angular":
        return np.clip(np.arccos(np.clip(dots, -1.0, 1.0)) / math.pi, 0.0, 1.0)
    sq = np.einsum("ij,ij->i", q, q)[:, None] + np.einsum("ij,ij->i", b, b)[None, :] - 2.0 * dots
    return np.sqrt(np.maximum(sq, 0.0))


def distances(queries: np.ndarray, rows: np.ndarray, metric: str, *, prepared: bool = False) -> np.ndarray:
    """``(m, n)`` float64 distances between ``queries`` (m, d) and ``rows`` (n, d).
    ``prepared=True``: both were already passed through :func:`prepare_rows`."""
    metric = metric_name(metric)
    q = queries if prepared else prepare_rows(queries, metric)
    b = rows if prepared else prepare_rows(rows, metric)
    return _finish(q @ b.T, q, b, metric)


def exact_top_k(queries: np.ndarray, matrix: np.ndarray, k: int, metric: str, *,
                block_rows: int = 32768) -> tuple[np.ndarray, np.ndarray]:
    """The exact ``k`` nearest rows of ``matrix`` (n, d) for each query (m, d).

    Returns ``(indices, distances)``, both ``(m, min(k, n))``, nearest first (ties by row index).
    ``matrix`` is read ``block_rows`` rows at a time, so temporaries are ``O(m * block_rows)``.
    """
    metric = metric_name(metric)
    q = prepare_rows(queries, metric)
    n = int(matrix.shape[0])
    m = q.shape[0]
    k = max(0, min(int(k), n))
    best_idx = np.zeros((m, 0), dtype=np.int64)
    best_dist = np.zeros((m, 0), dtype=np.float64)
    if k == 0 or m == 0:
        return np.zeros((m, k), dtype=np.int64), np.zeros((m, k), dtype=np.float64)
    for start in range(0, n, block_rows):
        block = prepare_rows(matrix[start:start + block_rows], metric)
        dist = _finish(q @ block.T, q, block, metric)
        idx = np.broadcast_to(np.arange(start, start + block.shape[0]), dist.shape)
        # merge with the best so far, then keep k (stable on (distance, index) so ties are reproducible)
        all_dist = np.concatenate([best_dist, dist], axis=1)
        all_idx = np.concatenate([best_idx, idx], axis=1)
        if all_dist.shape[1] > k:
            part = np.argpartition(all_dist, k - 1, axis=1)[:, :k]
            all_dist = np.take_along_axis(all_dist, part, axis=1)
            all_idx = np.take_along_axis(all_idx, part, axis=1)
        best_dist, best_idx = all_dist, all_idx
    order = np.lexsort((best_idx, best_dist), axis=1) if m else best_idx
    return np.take_along_axis(best_idx, order, axis=1), np.take_along_axis(best_dist, order, axis=1)
