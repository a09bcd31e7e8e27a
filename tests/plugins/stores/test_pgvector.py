"""The PostgreSQL + pgvector store against a real server on 127.0.0.1 (tests/helpers/postgres.py)."""

from __future__ import annotations

import math
import time
import uuid

import numpy as np
import pytest

from facepipe.errors import (InvalidEmbeddingsShapeError, StoreAuthError, StoreConnectionError, StoreMismatchError,
                             StoreURLError)
from facepipe.types import StoredFace, face_id
from tests.helpers import postgres

pytest.importorskip("psycopg", reason="pip install 'facepipe[pgvector]'")
if postgres.missing():
    pytest.skip(postgres.missing(), allow_module_level=True)

from facepipe.plugins.stores.pgvector import PgvectorConfig, PgvectorStore  # noqa: E402

FP = "ArcFace/retinaface/v1"


@pytest.fixture(scope="module")
def server(postgres_server):
    """The session's server (tests/conftest.py), shared with the gallery tests; tables are per test."""
    return postgres_server


def open_store(server, metric: str = "cosine", table: str | None = None, **options) -> PgvectorStore:
    table = table or f"t_{uuid.uuid4().hex[:12]}"
    return PgvectorStore(PgvectorConfig(url=server.url() + f"?table={table}", metric=metric, **options))


def faces_for(n: int, *, identities: int = 5, fingerprint: str = FP, start: int = 0) -> list[StoredFace]:
    return [StoredFace(id=face_id(f"img{i}", 0, fingerprint), identity=f"person{i % identities}",
                       fingerprint=fingerprint, image_sha256=f"img{i}", face_index=0, facial_area=(i, 2, 30, 40),
                       meta={"path": f"/photos/{i}.jpg"}) for i in range(start, start + n)]


def numpy_top_k(queries: np.ndarray, rows: np.ndarray, metric: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    q, b = queries.astype(np.float64), rows.astype(np.float64)
    if metric == "euclidean":
        d = np.linalg.norm(q[:, None, :] - b[None, :, :], axis=2)
    elif metric == "euclidean_l2":
        qn = q / (np.linalg.norm(q, axis=1, keepdims=True) + 1e-10)
        bn = b / (np.linalg.norm(b, axis=1, keepdims=True) + 1e-10)
        d = np.linalg.norm(qn[:, None, :] - bn[None, :, :], axis=2)
    else:
        qn, bn = (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300) for x in (q, b))
        cos = np.clip(qn @ bn.T, -1.0, 1.0)
        d = 1.0 - cos if metric == "cosine" else np.arccos(cos) / math.pi
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


def test_server_listens_on_loopback_only(server):
    import psycopg

    with psycopg.connect(server.url()) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"


def test_store_contract(server):
    store = open_store(server)
    try:
        assert (store.count(), store.identities(), store.search(np.ones((2, 8)), k=3)) == (0, [], [[], []])
        rng = np.random.default_rng(0)
        x = rng.normal(size=(20, 8)).astype(np.float32)
        faces = faces_for(20)
        assert store.add(x[:12], faces[:12]) == 12
        assert store.add(x, faces) == 8  # upsert: the first 12 are known, nothing replaced
        assert store.add(x, faces) == 0
        assert store.count() == 20 and store.fingerprint() == FP
        assert store.identities() == [f"person{i}" for i in range(5)]
        got = store.get([faces[3].id, "nope", faces[0].id])
        assert got == [faces[3], None, faces[0]] and got[0].meta == {"path": "/photos/3.jpg"}
        assert got[0].facial_area == (3, 2, 30, 40)
        hits = store.search(x[[4]], k=3)[0]
        assert hits[0][0] == faces[4].id and abs(hits[0][1]) < 1e-6
        assert [d for _, d in hits] == sorted(d for _, d in hits)
        assert store.delete([faces[4].id, "nope"]) == 1 and store.count() == 19
        assert store.search(x[[4]], k=1)[0][0][0] != faces[4].id
        # another process sees the same gallery
        again = PgvectorStore(store.config)
        assert again.count() == 19 and again.fingerprint() == FP
        again.close()
    finally:
        store.drop()
        store.close()


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "euclidean_l2", "angular"])
def test_exact_search_equals_numpy(server, metric):
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(600, 32)).astype(np.float32)
    rows[7] = 0.0  # facepipe's zero-vector distances: cosine 1, angular 0.5, euclidean_l2 |q|
    queries = rng.normal(size=(6, 32)).astype(np.float32)
    store = open_store(server, metric)
    try:
        store.add(rows, faces_for(600))
        hits = store.search(queries, k=10, exact=True)
        order, expected = numpy_top_k(queries, rows, metric, 10)
        ids = [f.id for f in faces_for(600)]
        for i in range(len(queries)):
            assert [h[0] for h in hits[i]] == [ids[j] for j in order[i]]
            assert np.allclose([h[1] for h in hits[i]], expected[i], atol=2e-5)
        zero = store.search(rows[[7]] * 0 + queries[[0]], k=600)[0]
        far = dict(zero)[ids[7]]
        want = {"cosine": 1.0, "angular": 0.5, "euclidean_l2": 1.0,
                "euclidean": float(np.linalg.norm(queries[0].astype(np.float64)))}[metric]
        assert far == pytest.approx(want, abs=1e-5)
    finally:
        store.drop()
        store.close()


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_hnsw_recall_at_10(server, metric):
    rng = np.random.default_rng(2)
    n, d = 3000, 64
    centres = rng.normal(size=(300, d))
    rows = (centres[rng.integers(0, 300, n)] + 0.6 * rng.normal(size=(n, d))).astype(np.float32)
    queries = (centres[rng.integers(0, 300, 50)] + 0.6 * rng.normal(size=(50, d))).astype(np.float32)
    store = open_store(server, metric)
    try:
        started = time.perf_counter()
        assert store.add(rows, faces_for(n)) == n
        added = time.perf_counter() - started
        exact = store.search(queries, k=10, exact=True)
        approx = store.search(queries, k=10, exact=False)
        recall = np.mean([len({h[0] for h in a} & {h[0] for h in e}) / 10 for a, e in zip(approx, exact)])
        print(f"{metric}: add {n}x{d} {added:.2f}s, recall@10 {recall:.3f}")
        assert recall >= 0.95
        with store._transaction() as cur:  # the approximate path built its HNSW index
            cur.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname LIKE '%%hnsw%%'",
                        (store.table,))
            assert cur.fetchall()
        for a in approx:  # distances are facepipe's, nearest first
            assert [h[1] for h in a] == sorted(h[1] for h in a)
    finally:
        store.drop()
        store.close()


def _quick(fn, error, seconds: float = 8.0) -> str:
    started = time.monotonic()
    with pytest.raises(error) as info:
        fn()
    assert time.monotonic() - started < seconds
    return str(info.value)


def test_bad_url_is_a_url_error(server):
    assert "expected postgresql://" in _quick(lambda: PgvectorStore(PgvectorConfig(url="mysql://h/db")), StoreURLError)
    message = _quick(lambda: PgvectorStore(PgvectorConfig(url="postgresql://u:pw@127.0.0.1:notaport/db")),
                     StoreURLError)
    assert "pw" not in message.replace("postgresql", "")
    _quick(lambda: open_store(server, table="bad-name; drop"), StoreURLError)
    _quick(lambda: open_store(server, metric="manhattan"), StoreURLError)


def test_unreachable_server_is_a_connection_error(server):
    url = server.url(port=postgres.free_port())
    message = _quick(lambda: PgvectorStore(PgvectorConfig(url=url)), StoreConnectionError)
    assert "***" in message and postgres.PASSWORD not in message


def test_wrong_password_is_an_auth_error(server):
    message = _quick(lambda: PgvectorStore(PgvectorConfig(url=server.url(password="wrong-pw"))), StoreAuthError)
    assert "wrong-pw" not in message and "127.0.0.1" in message


def test_unknown_database_is_a_connection_error(server):
    message = _quick(lambda: PgvectorStore(PgvectorConfig(url=server.url("no_such_db"))), StoreConnectionError)
    assert "no_such_db" in message and postgres.PASSWORD not in message


def test_mismatches_are_typed(server):
    store = open_store(server, "cosine")
    try:
        store.add(np.ones((2, 16), np.float32), faces_for(2))
        _quick(lambda: store.add(np.ones((1, 8), np.float32), faces_for(1, start=5)), StoreMismatchError)
        _quick(lambda: store.search(np.ones((1, 8), np.float32)), StoreMismatchError)
        _quick(lambda: store.add(np.ones((1, 16), np.float32), faces_for(1, start=5, fingerprint="Facenet/x")),
               StoreMismatchError)
        _quick(lambda: store.add(np.ones((2, 16), np.float32), faces_for(1, start=5)), InvalidEmbeddingsShapeError)
        _quick(lambda: store.add(np.full((1, 16), np.nan, np.float32), faces_for(1, start=5)),
               InvalidEmbeddingsShapeError)
        url = store.config.url
        _quick(lambda: PgvectorStore(PgvectorConfig(url=url, fingerprint="Facenet/x")), StoreMismatchError)
        _quick(lambda: PgvectorStore(PgvectorConfig(url=url, metric="euclidean")), StoreMismatchError)
        other = PgvectorStore(PgvectorConfig(url=url, metric="angular"))  # same unit rows: fine
        assert other.count() == 2
        other.close()
    finally:
        store.drop()
        store.close()


def test_registry_builds_the_store(server):
    from facepipe.registry import default_registry

    spec = default_registry().get("store", "pgvector")
    assert set(spec.schemes) == {"postgresql", "postgres"} and spec.approximate and not spec.local
    store = default_registry().create("store", "pgvector", {"url": server.url() + "?table=t_registry"})
    assert isinstance(store, PgvectorStore) and store.table == "t_registry" and store.count() == 0
    store.close()


def test_check_store_conformance(server):
    from facepipe.testing import check_store

    opened: list[PgvectorStore] = []

    def factory(metric: str = "cosine", fingerprint: str | None = None) -> PgvectorStore:
        opened.append(open_store(server, metric, fingerprint=fingerprint))
        return opened[-1]

    try:
        check_store(factory)
    finally:
        import psycopg

        with psycopg.connect(server.url(), autocommit=True) as conn:  # check_store closes the stores
            for store in opened:
                store.close()
                conn.execute(f"DROP TABLE IF EXISTS {store.table}")
                conn.execute("DELETE FROM facepipe_store_meta WHERE tablename = %s", (store.table,))
