"""Batch bookkeeping: the faces of many images go through a model as one flat list, and the
results are handed back per image."""

from __future__ import annotations

from typing import Iterable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def chunks(n: int, size: int) -> Iterable[slice]:
    """Slices of at most ``size`` items covering ``range(n)``."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def flatten(per_image: Sequence[Sequence[T]]) -> list[T]:
    """All items of all images, image after image."""
    return [item for items in per_image for item in items]


def regroup(per_image: Sequence[Sequence[T]], flat_results: Sequence[R]) -> list[Sequence[R]]:
    """Split results computed on :func:`flatten`'s list back into one slice per image (a slice
    of an array stays an array)."""
    out, start = [], 0
    for items in per_image:
        out.append(flat_results[start:start + len(items)])
        start += len(items)
    return out
