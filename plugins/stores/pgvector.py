"""PostgreSQL + pgvector gallery store (``postgresql://`` URLs), exact and HNSW search.

One table per gallery (``?table=`` in the URL, default ``facepipe_faces``), created at the first
add when the dimension is known; a metadata table ``facepipe_store_meta`` remembers each gallery's
dimension, fingerprint and vector form, checked on every add and search.

Vectors are stored as the metric compares them, so pgvector's operators give facepipe's
distances: *unit* rows (``x / |x|``, zero rows stay zero) serve cosine and angular through the
negated inner product ``<#>`` (a zero row is then at cosine 1.0, angular 0.5, as in facepipe) and
euclidean_l2 through ``<->``; *raw* rows serve euclidean through ``<->``.  Exact search is a
sequential scan (index scans switched off in the transaction); approximate search builds the HNSW
index of the operator class on first use (``vector_ip_ops`` or ``vector_l2_ops``), then
PostgreSQL keeps it current.
"""

from __future__ import annotations

import contextlib
import math
import threading
from typing import Any, Iterator, Sequence

import numpy as np
from pydantic import Field

from facepipe.errors import (InvalidEmbeddingsShapeError, StoreAuthError, StoreConnectionError, StoreError,
                             StoreMismatchError, StoreURLError)
from facepipe import hookimpl
from facepipe.plugin_config import StoreConfig
from facepipe.specs import StoreSpec
from facepipe.types import Store, StoredFace

from ._pg_url import parse_url

META_TABLE = "facepipe_store_meta"
METRICS = ("cosine", "euclidean", "euclidean_l2", "angular")
#: SQLSTATEs of refused credentials / unknown database
_AUTH_STATES = {"28P01", "28000"}
_NO_DATABASE = "3D000"


class PgvectorConfig(StoreConfig):
    """Where the PostgreSQL server is and how the gallery's table is searched."""

    table: str | None = Field(None, description="table of the gallery (default: the URL's ?table=, "
                                                "else facepipe_faces)")
    connect_timeout: int = Field(5, ge=2, le=120, description="seconds to wait for the server")
    ef_search: int = Field(100, ge=10, le=1000, description="HNSW candidate list of approximate searches")
    hnsw_m: int = Field(16, ge=2, le=100, description="HNSW links per node (index build)")
    hnsw_ef_construction: int = Field(64, ge=8, le=1000, description="HNSW candidate list while building")


def _form(metric: str) -> str:
    return "raw" if metric == "euclidean" else "unit"


def _prepare(x: np.ndarray, metric: str) -> np.ndarray:
    """Rows in the stored form: unit rows (zero rows stay zero) or, for euclidean, raw rows."""
    rows = np.asarray(x, dtype=np.float64)
    if metric == "euclidean":
        return rows
    norms = np.linalg.norm(rows, axis=1)
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return rows * inv[:, None]


def _literal(row: np.ndarray) -> str:
    return "[" + ",".join(map(repr, row.astype(np.float32).tolist())) + "]"


def _distance(native: float, metric: str) -> float:
    """facepipe's distance from pgvector's: ``<#>`` gives −dot, ``<->`` the L2 distance."""
    if metric == "cosine":
        return min(max(1.0 + native, 0.0), 2.0)
    if metric == "angular":
        return math.acos(min(max(-native, -1.0), 1.0)) / math.pi
    return max(native, 0.0)


class PgvectorStore(Store):
    """A gallery in a PostgreSQL table with a pgvector column (see the module docstring)."""

    config_class = PgvectorConfig
    config: PgvectorConfig

    def __init__(self, config: PgvectorConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        self.metric = str(self.config.metric).strip().lower().replace("-", "_")
        if self.metric not in METRICS:
            raise StoreURLError(f"unknown store metric {self.config.metric!r}; expected one of {', '.join(METRICS)}")
        self.url = parse_url(self.config.url, self.config.table)
        self.table = self.url.table
        self._lock = threading.RLock()
        self._conn = self._connect()
        self._dimension: int | None = None
        self._fingerprint: str | None = self.config.fingerprint
        self._load_meta()

    # --- connection -------------------------------------------------------------------------------
    def _connect(self) -> Any:
        try:
            import psycopg
        except ImportError:
            from facepipe.errors import ExtraNotInstalledError

            raise ExtraNotInstalledError("the pgvector store needs psycopg: pip install 'facepipe[pgvector]'") from None
        try:
            conn = psycopg.connect(self.url.conninfo, connect_timeout=self.config.connect_timeout, autocommit=True)
        except psycopg.ProgrammingError as err:  # libpq could not parse the conninfo
            raise StoreURLError(f"bad PostgreSQL URL {self.url.shown}: {err}") from None
        except psycopg.Error as err:
            raise self._connect_error(err) from None
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.Error as err:
            conn.close()
            raise StoreError(f"pgvector is not available on {self.url.shown} ({str(err).strip()}); install the "
                             f"extension on the server (Debian: postgresql-NN-pgvector, or build "
                             f"github.com/pgvector/pgvector) or CREATE EXTENSION vector as a superuser") from None
        return conn

    def _connect_error(self, err: Exception) -> StoreError:
        message = str(err).strip()
        state = getattr(err, "sqlstate", None)
        if state in _AUTH_STATES or "authentication failed" in message or "no password supplied" in message:
            return StoreAuthError(f"PostgreSQL refused the credentials for {self.url.shown}: {message}")
        if state == _NO_DATABASE or ("database" in message and "does not exist" in message):
            return StoreConnectionError(f"no such database at {self.url.shown}: {message} (create it first)")
        return StoreConnectionError(f"cannot reach PostgreSQL at {self.url.shown}: {message}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A cursor in a transaction; server errors become typed store errors."""
        import psycopg

        with self._lock:
            if self._conn is None:
                raise StoreError(f"the store {self.url.shown} is closed")
            try:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    yield cur
            except psycopg.OperationalError as err:
                raise StoreConnectionError(f"lost PostgreSQL at {self.url.shown}: {str(err).strip()}") from None
            except psycopg.Error as err:
                raise StoreError(f"PostgreSQL error on {self.url.shown} (table {self.table}): "
                                 f"{str(err).strip()}") from None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # --- metadata ---------------------------------------------------------------------------------
    def _load_meta(self) -> None:
        with self._transaction() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (tablename text PRIMARY KEY, "
                        "dimension integer NOT NULL, fingerprint text, form text NOT NULL)")
            cur.execute(f"SELECT dimension, fingerprint, form FROM {META_TABLE} WHERE tablename = %s", (self.table,))
            row = cur.fetchone()
        if row is None:
            return
        dimension, fingerprint, form = row
        if form != _form(self.metric):
            raise StoreMismatchError(
                f"table {self.table} at {self.url.shown} holds {form} vectors, metric {self.metric} needs "
                f"{_form(self.metric)} ones (euclidean keeps vector lengths; cosine, angular, euclidean_l2 unit rows)")
        if self.config.fingerprint and fingerprint and self.config.fingerprint != fingerprint:
            raise StoreMismatchError(f"table {self.table} at {self.url.shown} holds embeddings of {fingerprint!r}, "
                                     f"not {self.config.fingerprint!r}")
        self._dimension, self._fingerprint = int(dimension), fingerprint or self._fingerprint

    def _known(self) -> bool:
        """Whether the gallery's table exists (another process may have created it since)."""
        if self._dimension is None:
            self._load_meta()
        return self._dimension is not None

    def fingerprint(self) -> str | None:
        return self._fingerprint

    def _create(self, cur: Any, dimension: int, fingerprint: str) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.table,))
        cur.execute(f"SELECT dimension, fingerprint FROM {META_TABLE} WHERE tablename = %s", (self.table,))
        row = cur.fetchone()
        if row is None:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {self.table} (id text PRIMARY KEY, identity text NOT NULL, "
                        "fingerprint text NOT NULL, image_sha256 text NOT NULL DEFAULT '', face_index integer "
                        "NOT NULL DEFAULT 0, facial_area integer[] NOT NULL, meta jsonb NOT NULL DEFAULT '{}', "
                        f"embedding vector({dimension}) NOT NULL)")
            cur.execute(f"INSERT INTO {META_TABLE} VALUES (%s, %s, %s, %s)",
                        (self.table, dimension, fingerprint, _form(self.metric)))
            row = (dimension, fingerprint)
        self._dimension, self._fingerprint = int(row[0]), row[1]

    def _check(self, x: np.ndarray, what: str) -> np.ndarray:
        rows = np.asarray(x, dtype=np.float64)
        if rows.ndim == 1:
            rows = rows[None, :]
        if rows.ndim != 2 or rows.shape[1] == 0:
            raise InvalidEmbeddingsShapeError(f"expected an (n, d) array of {what}, got shape {rows.shape}")
        if not np.all(np.isfinite(rows)):
            raise InvalidEmbeddingsShapeError(f"{what} hold NaN or infinite values")
        if self._dimension is not None and rows.shape[1] != self._dimension:
            raise StoreMismatchError(f"{what} have dimension {rows.shape[1]}, table {self.table} at "
                                     f"{self.url.shown} holds dimension {self._dimension}")
        return rows

    # --- the Store contract -----------------------------------------------------------------------
    def add(self, embeddings: np.ndarray, faces: Sequence[StoredFace]) -> int:
        rows = self._check(embeddings, "embeddings")
        faces = list(faces)
        if len(faces) != rows.shape[0]:
            raise InvalidEmbeddingsShapeError(f"{rows.shape[0]} embeddings for {len(faces)} faces")
        if not faces:
            return 0
        fingerprints = {face.fingerprint for face in faces}
        expected = self._fingerprint or faces[0].fingerprint
        if fingerprints != {expected}:
            others = sorted(fingerprints - {expected})
            raise StoreMismatchError(f"table {self.table} holds embeddings of {expected!r}; got faces of {others}")
        from psycopg.types.json import Jsonb

        prepared = _prepare(rows, self.metric)
        with self._transaction() as cur:
            if self._dimension is None:
                self._create(cur, rows.shape[1], expected)
                self._check(rows, "embeddings")
                if self._fingerprint != expected:
                    raise StoreMismatchError(f"table {self.table} holds embeddings of {self._fingerprint!r}")
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS facepipe_staging (LIKE {self.table}) ON COMMIT DROP")
            columns = "id, identity, fingerprint, image_sha256, face_index, facial_area, meta, embedding"
            with cur.copy(f"COPY facepipe_staging ({columns}) FROM STDIN") as copy:
                for face, row in zip(faces, prepared):
                    copy.write_row((face.id, face.identity, face.fingerprint, face.image_sha256,
                                    int(face.face_index), [int(v) for v in face.facial_area],
                                    Jsonb(face.meta or {}), _literal(row)))
            cur.execute(f"INSERT INTO {self.table} ({columns}) SELECT {columns} FROM facepipe_staging "
                        "ON CONFLICT (id) DO NOTHING")
            return max(cur.rowcount, 0)

    def search(self, queries: np.ndarray, k: int = 10, *, exact: bool = True) -> list[list[tuple[str, float]]]:
        rows = self._check(queries, "queries")
        if k <= 0 or not self._known():
            return [[] for _ in range(rows.shape[0])]
        operator = "<->" if self.metric.startswith("euclidean") else "<#>"
        exact = exact or k > 1000  # pgvector's HNSW returns at most ef_search (<= 1000) rows
        order = f"embedding {operator} %s::vector" + (", id" if exact else "")
        sql = f"SELECT id, embedding {operator} %s::vector FROM {self.table} ORDER BY {order} LIMIT %s"
        if not exact:
            self._ensure_index(operator)
        results: list[list[tuple[str, float]]] = []
        with self._transaction() as cur:
            if exact:
                cur.execute("SET LOCAL enable_indexscan = off")
            else:
                cur.execute(f"SET LOCAL hnsw.ef_search = {max(self.config.ef_search, k)}")
            for row in _prepare(rows, self.metric):
                literal = _literal(row)
                cur.execute(sql, (literal, literal, k))
                results.append([(face_id, _distance(native, self.metric)) for face_id, native in cur.fetchall()])
        return results

    def _ensure_index(self, operator: str) -> None:
        opclass, suffix = ("vector_l2_ops", "hnsw_l2") if operator == "<->" else ("vector_ip_ops", "hnsw_ip")
        with self._transaction() as cur:
            cur.execute(f"CREATE INDEX IF NOT EXISTS {self.table}_{suffix} ON {self.table} USING hnsw "
                        f"(embedding {opclass}) WITH (m = {self.config.hnsw_m}, "
                        f"ef_construction = {self.config.hnsw_ef_construction})")

    def get(self, ids: Sequence[str]) -> list[StoredFace | None]:
        ids = [str(i) for i in ids]
        if not ids or not self._known():
            return [None] * len(ids)
        with self._transaction() as cur:
            cur.execute(f"SELECT id, identity, fingerprint, image_sha256, face_index, facial_area, meta "
                        f"FROM {self.table} WHERE id = ANY(%s)", (ids,))
            found = {row[0]: StoredFace(id=row[0], identity=row[1], fingerprint=row[2], image_sha256=row[3],
                                        face_index=row[4], facial_area=tuple(row[5]), meta=row[6])
                     for row in cur.fetchall()}
        return [found.get(i) for i in ids]

    def delete(self, ids: Sequence[str]) -> int:
        ids = [str(i) for i in ids]
        if not ids or not self._known():
            return 0
        with self._transaction() as cur:
            cur.execute(f"DELETE FROM {self.table} WHERE id = ANY(%s)", (ids,))
            return max(cur.rowcount, 0)

    def count(self) -> int:
        if not self._known():
            return 0
        with self._transaction() as cur:
            cur.execute(f"SELECT count(*) FROM {self.table}")
            return int(cur.fetchone()[0])

    def identities(self) -> list[str]:
        if not self._known():
            return []
        with self._transaction() as cur:
            cur.execute(f'SELECT DISTINCT identity COLLATE "C" AS identity FROM {self.table} ORDER BY 1')
            return [row[0] for row in cur.fetchall()]

    def ids_of(self, identity: str) -> list[str]:
        if not self._known():
            return []
        with self._transaction() as cur:
            cur.execute(f'SELECT id COLLATE "C" AS id FROM {self.table} WHERE identity = %s ORDER BY 1',
                        (str(identity),))
            return [row[0] for row in cur.fetchall()]

    def drop(self) -> None:
        """Remove the gallery's table and metadata (tests, ``facepipe gallery drop``)."""
        with self._transaction() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {self.table}")
            cur.execute(f"DELETE FROM {META_TABLE} WHERE tablename = %s", (self.table,))
        self._dimension, self._fingerprint = None, self.config.fingerprint


@hookimpl
def facepipe_register_stores(register):  # type: ignore[no-untyped-def]
    register(StoreSpec(
        name="pgvector",
        factory=f"{__name__}:PgvectorStore",
        config=PgvectorConfig,
        description="PostgreSQL + pgvector: a table per gallery, exact scans and HNSW (ip / l2 operator classes)",
        license="PostgreSQL (pgvector), LGPL-3.0 (psycopg)",
        requires=("psycopg",),
        extra="pgvector",
        schemes=("postgresql", "postgres"),
        approximate=True,
    ))
