"""The embedded store (SQLite + usearch in a folder) passes the store conformance kit, and keeps
its promises: SQLite is the truth, the approximate index is a cache that is rebuilt when stale."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from facepipe.errors import InvalidEmbeddingsShapeError, StoreMismatchError, StoreURLError
from facepipe.plugins.stores import _ann
from facepipe.plugins.stores.embedded import EmbeddedStore, EmbeddedStoreConfig
from facepipe.testing import check_store
from facepipe.types import StoredFace


def _opener(root: Path):
    counter = itertools.count()

    def factory(**options):
        return EmbeddedStore(EmbeddedStoreConfig(url=str(root / f"g{next(counter)}"), **options))

    return factory


def test_conformance_kit(tmp_path: Path) -> None:
    check_store(_opener(tmp_path))


def test_conformance_kit_with_small_blocks(tmp_path: Path) -> None:
    """Exact search merges blocks correctly when the gallery spans many of them."""
    counter = itertools.count()

    def factory(**options):
        return EmbeddedStore(EmbeddedStoreConfig(url=str(tmp_path / f"b{next(counter)}"), block_rows=7, **options))

    check_store(factory, metrics=("cosine", "euclidean"))


def _same(a: list[list[tuple[str, float]]], b: list[list[tuple[str, float]]]) -> bool:
    """Same ids in the same order, distances equal up to floating-point rounding."""
    return [[i for i, _ in row] for row in a] == [[i for i, _ in row] for row in b] and all(
        abs(x - y) < 1e-9 for ra, rb in zip(a, b) for (_, x), (_, y) in zip(ra, rb))


def _faces(n: int, start: int = 0) -> list[StoredFace]:
    return [StoredFace(id=f"f{k}", identity=f"p{k % 3}", fingerprint="fp") for k in range(start, start + n)]


def _vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def test_reopen_keeps_everything_and_refuses_other_fingerprint(tmp_path: Path) -> None:
    vectors = _vectors(30)
    with_cfg = EmbeddedStoreConfig(url=str(tmp_path / "g"), fingerprint="fp")
    store = EmbeddedStore(with_cfg)
    assert store.add(vectors, _faces(30)) == 30
    before = store.search(vectors[:3], k=4)
    store.close()
    store.close()  # idempotent
    again = EmbeddedStore(EmbeddedStoreConfig(url=str(tmp_path / "g")))
    assert again.count() == 30 and again.fingerprint() == "fp" and _same(again.search(vectors[:3], k=4), before)
    again.close()
    with pytest.raises(StoreMismatchError, match="fingerprint"):
        EmbeddedStore(EmbeddedStoreConfig(url=str(tmp_path / "g"), fingerprint="other"))


@pytest.mark.skipif(not _ann.available(), reason="needs facepipe[gallery] (usearch is not installed)")
def test_ann_index_is_a_cache_rebuilt_when_stale(tmp_path: Path) -> None:
    folder = tmp_path / "g"
    vectors = _vectors(400, dim=32)
    store = EmbeddedStore(EmbeddedStoreConfig(url=str(folder)))
    store.add(vectors[:300], _faces(300))
    exact = store.search(vectors[:5], k=5)
    assert _same(store.search(vectors[:5], k=5, exact=False), exact)  # tiny graph: HNSW finds the true neighbours
    files = sorted(p.name for p in folder.glob("ann-*.usearch"))
    assert len(files) == 1 and files[0].endswith("-g1.usearch")
    # another process (a second handle) writes: this handle's index is stale and must not be trusted
    other = EmbeddedStore(EmbeddedStoreConfig(url=str(folder)))
    other.add(vectors[300:], _faces(100, start=300))
    other.delete(["f0"])
    other.close()
    hits = store.search(vectors[:5], k=5, exact=False)
    assert "f0" not in {h for row in hits for h, _ in row}
    assert _same(hits, store.search(vectors[:5], k=5))
    # in-process writes update the index incrementally; it is saved under the new generation on close
    store.add(vectors[:1] + 1.0, [StoredFace(id="new", identity="n", fingerprint=store.fingerprint() or "")])
    assert store.search(vectors[:1] + 1.0, k=1, exact=False)[0][0][0] == "new"
    store.close()
    assert [p.name for p in folder.glob("ann-*.usearch")] == ["ann-unit-g4.usearch"]
    # a damaged index file is rebuilt from SQLite, not trusted
    (folder / "ann-unit-g4.usearch").write_bytes(b"garbage")
    store = EmbeddedStore(EmbeddedStoreConfig(url=str(folder)))
    assert _same(store.search(vectors[:5], k=5, exact=False), store.search(vectors[:5], k=5))
    store.close()


def test_without_usearch_approximate_search_is_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(_ann, "available", lambda: False)
    store = EmbeddedStore(EmbeddedStoreConfig(url=str(tmp_path / "g")))
    vectors = _vectors(20)
    store.add(vectors, _faces(20))
    with caplog.at_level("INFO", logger="facepipe.stores.embedded"):
        assert _same(store.search(vectors[:2], k=3, exact=False), store.search(vectors[:2], k=3))
    assert "usearch is not installed" in caplog.text
    assert not list((tmp_path / "g").glob("ann-*"))
    store.close()


def test_bad_input_is_refused_with_typed_errors(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreURLError, match="is a file"):
        EmbeddedStore(EmbeddedStoreConfig(url=str(tmp_path / "afile")))
    with pytest.raises(StoreURLError):
        EmbeddedStore(EmbeddedStoreConfig(url="postgresql://host/db"))
    store = EmbeddedStore(EmbeddedStoreConfig(url=str(tmp_path / "g")))
    with pytest.raises(InvalidEmbeddingsShapeError):
        store.add(_vectors(2), _faces(3))
    bad = _vectors(2)
    bad[1, 0] = np.nan
    with pytest.raises(InvalidEmbeddingsShapeError, match="NaN"):
        store.add(bad, _faces(2))
    assert store.count() == 0
    store.close()


@pytest.mark.skipif(not _ann.available(), reason="needs facepipe[gallery] (usearch is not installed)")
def test_large_gallery_searches_the_ann_index(tmp_path: Path) -> None:
    # Above SMALL_GALLERY the approximate path runs: candidates from the graph, re-ranked exactly.
    from facepipe.plugins.stores.embedded import SMALL_GALLERY

    n = SMALL_GALLERY + 1000
    vectors = _vectors(n, dim=16)
    store = EmbeddedStore(EmbeddedStoreConfig(url=str(tmp_path / "g")))
    store.add(vectors, _faces(n))
    store.delete(["f7"])
    queries = vectors[:40] + 0.01
    approx, exact = store.search(queries, k=10, exact=False), store.search(queries, k=10)
    assert store._ann is not None  # the graph was built and used
    found = sum(len({i for i, _ in a} & {i for i, _ in e}) for a, e in zip(approx, exact))
    assert found / (10 * len(queries)) >= 0.9  # recall@10
    for row_a, row_e in zip(approx, exact):
        assert "f7" not in {i for i, _ in row_a}
        assert [d for _, d in row_a] == sorted(d for _, d in row_a)
        exact_of = dict(row_e)
        for i, d in row_a:  # a hit the exact top-10 also has carries the same distance
            if i in exact_of:
                assert abs(d - exact_of[i]) < 1e-9
    store.close()
