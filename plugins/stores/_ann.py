"""The approximate index of the embedded store: a usearch HNSW graph keyed by SQLite rowids.

Kept apart from the store so the store stays readable and usearch stays optional (imported here
only, on first approximate search).  The index is a cache: SQLite is the truth, and every hit is
re-ranked with exact distances by the store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facepipe.files import atomic_path

#: HNSW parameters (see benchmarks/ann_choice.py for what they give on 100k x 512)
CONNECTIVITY, EXPANSION_ADD, EXPANSION_SEARCH = 16, 128, 64


def available() -> bool:
    try:
        import usearch.index  # noqa: F401
    except ImportError:
        return False
    return True


class AnnIndex:
    """An HNSW index over prepared rows: inner product for unit rows, squared L2 for raw ones."""

    def __init__(self, dim: int, unit_rows: bool) -> None:
        from usearch.index import Index

        self.index = Index(ndim=dim, metric="ip" if unit_rows else "l2sq", dtype="f32",
                           connectivity=CONNECTIVITY, expansion_add=EXPANSION_ADD,
                           expansion_search=EXPANSION_SEARCH)

    @classmethod
    def load(cls, path: Path, dim: int, unit_rows: bool) -> "AnnIndex":
        ann = cls(dim, unit_rows)
        ann.index.load(str(path))
        return ann

    def add(self, keys: np.ndarray, rows: np.ndarray) -> None:
        if len(keys):
            self.index.add(np.asarray(keys, dtype=np.uint64), np.ascontiguousarray(rows, dtype=np.float32))

    def remove(self, keys: np.ndarray) -> None:
        for key in np.asarray(keys, dtype=np.uint64).tolist():
            self.index.remove(key)

    def search(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        """Candidate keys per query (possibly fewer than k)."""
        found = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        if not hasattr(found, "counts"):  # one query: usearch answers a flat Matches
            return [np.asarray(found.keys, dtype=np.int64)]
        keys = np.atleast_2d(np.asarray(found.keys))
        counts = np.atleast_1d(np.asarray(found.counts))
        return [keys[i, :counts[i]].astype(np.int64) for i in range(len(queries))]

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:  # a crash mid-write leaves the previous file, or none
            self.index.save(str(tmp))
