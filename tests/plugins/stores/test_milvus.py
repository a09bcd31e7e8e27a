"""The Milvus store against a real Milvus Lite server on 127.0.0.1."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from facepipe.errors import StoreConnectionError, StoreMismatchError, StoreURLError
from facepipe.pipeline.metrics import pairwise
from facepipe.registry import default_registry
from facepipe.types import StoredFace, face_id
from tests.helpers.extras import need
from tests.helpers.milvus import free_port

need("pymilvus", "milvus")
need("milvus_lite", "test")

_names = itertools.count()


def open_store(base: str, **options: object):  # type: ignore[no-untyped-def]
    """A store on a new, empty collection of the test server."""
    return default_registry().create("store", "milvus", {"url": f"{base}/c{next(_names)}", **options})


def faces(n: int, fingerprint: str = "fp") -> list[StoredFace]:
    return [StoredFace(id=face_id(f"{i:064x}", 0, fingerprint), identity=f"p{i % 10}", fingerprint=fingerprint)
            for i in range(n)]


def test_conformance(milvus_url: str) -> None:
    from facepipe.testing import check_store

    check_store(lambda metric, fingerprint: open_store(milvus_url, metric=metric, fingerprint=fingerprint))


def test_milvus_string_escapes_quotes_backslashes_and_controls() -> None:
    from facepipe.plugins.stores.milvus import milvus_string

    assert milvus_string("bob") == '"bob"'
    assert milvus_string('a"b') == '"a\\"b"'
    assert milvus_string("a\\b") == '"a\\\\b"'
    assert milvus_string("a\nb\r\tc\x01") == '"a\\nb\\r\\tc\x01"'
    assert milvus_string("żółć") == '"żółć"'


def test_ids_of_cannot_be_widened_by_the_name(milvus_url: str) -> None:
    names = ['x" || identity != "', "x' || identity != '", 'x\\" || true || "', "ctl\x01\x7f\t\r\nend", ""]
    rows = [StoredFace(id=f"id{i}", identity=name, fingerprint="fp") for i, name in enumerate(names + ["x"])]
    store = open_store(milvus_url, metric="cosine")
    store.add(np.eye(len(rows), 8, dtype=np.float32) + 0.1, rows)
    for row in rows:
        assert store.ids_of(row.identity) == [row.id], repr(row.identity)
    assert store.ids_of('x" || "1" == "1') == []
    store.close()


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_exact_topk_equals_numpy(milvus_url: str, metric: str) -> None:
    rng = np.random.default_rng(1)
    gallery = rng.normal(size=(2000, 64)).astype(np.float32)
    queries = rng.normal(size=(20, 64)).astype(np.float32)
    store = open_store(milvus_url, metric=metric)
    rows = faces(len(gallery))
    assert store.add(gallery, rows) == len(gallery)
    truth = pairwise(queries, gallery, metric)
    for qi, hits in enumerate(store.search(queries, k=10, exact=True)):
        want = np.argsort(truth[qi], kind="stable")[:10]
        assert [h for h, _ in hits] == [rows[j].id for j in want]
        np.testing.assert_allclose([d for _, d in hits], truth[qi][want], atol=1e-4)
    store.close()


def test_ann_recall_at_10(milvus_url: str) -> None:
    rng = np.random.default_rng(2)
    gallery = rng.normal(size=(5000, 128)).astype(np.float32)
    queries = rng.normal(size=(100, 128)).astype(np.float32)
    store = open_store(milvus_url, metric="cosine")
    rows = faces(len(gallery))
    store.add(gallery, rows)
    truth = np.argsort(pairwise(queries, gallery, "cosine"), axis=1)[:, :10]
    hits = store.search(queries, k=10, exact=False)
    found = sum(len({h for h, _ in row} & {rows[j].id for j in want}) for row, want in zip(hits, truth))
    recall = found / truth.size
    assert recall >= 0.95, f"HNSW recall@10 {recall:.3f}"
    store.close()


def test_reopen_keeps_fingerprint_and_dimension(milvus_url: str) -> None:
    url = f"{milvus_url}/reopened"
    first = default_registry().create("store", "milvus", {"url": url})
    first.add(np.ones((1, 8), np.float32), faces(1, "fp-X"))
    first.close()
    again = default_registry().create("store", "milvus", {"url": url})
    assert again.fingerprint() == "fp-X" and again.count() == 1
    with pytest.raises(StoreMismatchError, match="dimension 9"):
        again.add(np.ones((1, 9), np.float32), faces(1, "fp-X"))
    with pytest.raises(StoreMismatchError, match="fingerprint"):
        default_registry().create("store", "milvus", {"url": url, "fingerprint": "fp-Y"})
    with pytest.raises(StoreMismatchError, match="COSINE"):
        default_registry().create("store", "milvus", {"url": url, "metric": "euclidean"})
    again.close()


def test_unreachable_server_fails_fast() -> None:
    started = time.monotonic()
    with pytest.raises(StoreConnectionError, match="cannot reach"):
        default_registry().create("store", "milvus", {"url": f"milvus://127.0.0.1:{free_port()}/x", "timeout": 2})
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("url", ["milvus:///faces", "milvus://h:99999/x", "milvus://h/1bad", "milvus://h/a/b/c",
                                 "milvus://h/x?pasword=1"])
def test_bad_url(url: str) -> None:
    with pytest.raises(StoreURLError):
        default_registry().create("store", "milvus", {"url": url})


def test_url_forms() -> None:
    from facepipe.plugins.stores.milvus_url import parse_milvus_url

    assert parse_milvus_url("milvus://db.local").uri == "http://db.local:19530"
    target = parse_milvus_url("milvus+https://me:s%40cret@c.example/prod/faces?token=t")
    assert (target.uri, target.database, target.collection) == ("https://c.example:443", "prod", "faces")
    assert (target.user, target.password, target.token) == ("me", "s@cret", "t")
    assert "s@cret" not in repr(target)


def test_spec_is_registered() -> None:
    spec = default_registry().get("store", "milvus")
    assert spec.schemes == ("milvus", "milvus+https") and spec.approximate and not spec.local


def test_import_facepipe_stays_free_of_pymilvus() -> None:
    import subprocess
    import sys

    code = "import sys, facepipe, facepipe.types; assert 'pymilvus' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
