"""Milvus gallery store: embeddings in a Milvus collection, exact (FLAT) and HNSW search.

One collection per gallery.  Each face is a row with its metadata and its embedding twice: under
a FLAT index for exact search and under an HNSW index for approximate search (a vector field has
one index in Milvus).  Distances come back in facepipe's definitions whatever Milvus computes
(``COSINE`` similarity or squared ``L2``).  The fingerprint, the metric family and the dimension
live in the collection's properties and schema and are checked on open and on every call.

Needs ``pip install 'facepipe[milvus]'`` (pymilvus), imported only when a store is opened.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from pydantic import Field

from facepipe.errors import StoreAuthError, StoreConnectionError, StoreError, StoreMismatchError
from facepipe import hookimpl
from facepipe.plugin_config import StoreConfig
from facepipe.specs import StoreSpec
from facepipe.types import Store, StoredFace
from facepipe.plugins.stores.milvus_url import SCHEMES, MilvusTarget, parse_milvus_url

FLAT_FIELD = "embedding"
ANN_FIELD = "embedding_ann"
FINGERPRINT_KEY = "facepipe.fingerprint"
METRIC_KEY = "facepipe.metric_type"
MAX_TOPK = 16384  # Milvus' limit on k and on query windows
_BATCH = 1000
_FIELDS = ["id", "identity", "fingerprint", "image_sha256", "face_index", "facial_area", "meta"]
# facepipe metric -> the Milvus metric whose order is the same
_MILVUS_METRIC = {"cosine": "COSINE", "euclidean_l2": "COSINE", "angular": "COSINE", "euclidean": "L2"}


class MilvusStoreConfig(StoreConfig):
    """Options of the Milvus store; ``url`` is ``milvus://host:port/collection``."""

    timeout: float = Field(5.0, gt=0, description="seconds to wait for the server on connect and per call")
    hnsw_m: int = Field(16, ge=4, le=64, description="HNSW graph degree (approximate index)")
    ef_construction: int = Field(200, ge=8, description="HNSW build-time candidate list")
    ef: int = Field(128, ge=1, description="HNSW search-time candidate list (raised to k when smaller)")


def to_facepipe_distance(metric: str, raw: np.ndarray) -> np.ndarray:
    """Milvus scores (cosine similarity or squared L2) as facepipe distances of ``metric``."""
    raw = raw.astype(np.float64)
    if metric == "euclidean":
        return np.sqrt(np.maximum(raw, 0.0))
    cos = np.clip(raw, -1.0, 1.0)
    if metric == "cosine":
        return 1.0 - cos
    if metric == "euclidean_l2":
        return np.sqrt(np.maximum(2.0 - 2.0 * cos, 0.0))
    return np.arccos(cos) / math.pi  # angular


def milvus_string(value: str) -> str:
    """``value`` as a double-quoted string literal of a Milvus filter expression.

    Backslashes and double quotes are escaped, and newline, carriage return and tab written as
    ``\\n``, ``\\r``, ``\\t`` (the escapes both Milvus' server parser and Milvus Lite's accept; other
    characters, other control characters included, are read literally), so no value can end the
    literal early or change the expression around it."""
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return '"' + "".join(escapes.get(ch, ch) for ch in value) + '"'


class MilvusStore(Store):
    """A gallery in a Milvus collection (a server, a cluster or Milvus Lite's server)."""

    config_class = MilvusStoreConfig
    config: MilvusStoreConfig

    def __init__(self, config: MilvusStoreConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        if self.config.metric not in _MILVUS_METRIC:
            raise StoreError(f"unknown metric {self.config.metric!r}; one of {', '.join(_MILVUS_METRIC)}")
        self.target: MilvusTarget = parse_milvus_url(self.config.url)
        self._metric_type = _MILVUS_METRIC[self.config.metric]
        self._client = self._connect()
        self._fingerprint: str | None = self.config.fingerprint
        self.dim: int | None = None
        if self._call(self._client.has_collection, self.target.collection):
            self._open_existing()

    # -- connection and errors ---------------------------------------------------------------

    def _connect(self) -> Any:
        try:
            from pymilvus import MilvusClient
        except ImportError:  # pragma: no cover - the registry reports the missing extra first
            from facepipe.errors import ExtraNotInstalledError

            raise ExtraNotInstalledError("the Milvus store needs pymilvus: pip install 'facepipe[milvus]'") from None
        t = self.target
        return self._call(MilvusClient, uri=t.uri, user=t.user, password=t.password, token=t.token,
                          db_name=t.database, timeout=self.config.timeout)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a client call, turning pymilvus' errors into facepipe's typed store errors."""
        from pymilvus.exceptions import MilvusException

        try:
            return fn(*args, **kwargs)
        except MilvusException as exc:
            raise self._translate(exc) from None

    def _translate(self, exc: Any) -> StoreError:
        message = str(getattr(exc, "message", "") or exc)
        low = message.lower()
        where = f"Milvus at {self.target.uri}"
        if any(w in low for w in ("auth", "credential", "password", "token", "permission denied", "unauthenticated")):
            return StoreAuthError(f"{where} refused the credentials: {message}")
        if any(w in low for w in ("fail connecting", "unavailable", "deadline", "timed out", "timeout", "connect")):
            return StoreConnectionError(f"cannot reach {where} within {self.config.timeout:g} s: {message}")
        return StoreError(f"{where}: {message}")

    def fingerprint(self) -> str | None:
        """The collection's fingerprint (the config's, the stored one, or the first add's)."""
        return self._fingerprint

    def close(self) -> None:
        client, self._client = getattr(self, "_client", None), None
        if client is not None:
            client.close()

    # -- collection --------------------------------------------------------------------------

    def _open_existing(self) -> None:
        info = self._call(self._client.describe_collection, self.target.collection)
        fields = {f["name"]: f for f in info["fields"]}
        if FLAT_FIELD not in fields or ANN_FIELD not in fields:
            raise StoreMismatchError(f"Milvus collection {self.target.collection!r} is not a facepipe gallery")
        self.dim = int(fields[FLAT_FIELD]["params"]["dim"])
        props = info.get("properties") or {}
        stored_metric = props.get(METRIC_KEY)
        if stored_metric and stored_metric != self._metric_type:
            raise StoreMismatchError(
                f"Milvus collection {self.target.collection!r} was built for {stored_metric} distances; "
                f"metric {self.config.metric!r} needs {self._metric_type} (use another collection)")
        stored_fp = props.get(FINGERPRINT_KEY) or None
        if self._fingerprint and stored_fp and stored_fp != self._fingerprint:
            raise StoreMismatchError(
                f"Milvus collection {self.target.collection!r} holds embeddings of fingerprint {stored_fp!r}, "
                f"not {self._fingerprint!r}")
        self._fingerprint = self._fingerprint or stored_fp
        state = self._call(self._client.get_load_state, self.target.collection)
        if "Loaded" not in str(state.get("state", "")):
            self._call(self._client.load_collection, self.target.collection)

    def _create(self, dim: int, fingerprint: str) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=256)
        schema.add_field("identity", DataType.VARCHAR, max_length=4096)
        schema.add_field("fingerprint", DataType.VARCHAR, max_length=1024)
        schema.add_field("image_sha256", DataType.VARCHAR, max_length=128)
        schema.add_field("face_index", DataType.INT64)
        schema.add_field("facial_area", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4)
        schema.add_field("meta", DataType.JSON)
        schema.add_field(FLAT_FIELD, DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field(ANN_FIELD, DataType.FLOAT_VECTOR, dim=dim)
        index = self._client.prepare_index_params()
        index.add_index(field_name=FLAT_FIELD, index_type="FLAT", metric_type=self._metric_type)
        index.add_index(field_name=ANN_FIELD, index_type="HNSW", metric_type=self._metric_type,
                        params={"M": self.config.hnsw_m, "efConstruction": self.config.ef_construction})
        self._call(self._client.create_collection, self.target.collection, schema=schema, index_params=index,
                   consistency_level="Strong",
                   properties={FINGERPRINT_KEY: fingerprint, METRIC_KEY: self._metric_type})
        self.dim, self._fingerprint = dim, fingerprint

    def _exists(self) -> bool:
        return self.dim is not None

    # -- checks ------------------------------------------------------------------------------

    def _matrix(self, x: np.ndarray, what: str) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] == 0:
            raise StoreMismatchError(f"{what} must be an (n, d) array, got shape {np.shape(x)}")
        if not np.isfinite(arr).all():
            raise StoreError(f"{what} hold NaN or infinite values")
        if self.dim is not None and arr.shape[1] != self.dim:
            raise StoreMismatchError(
                f"{what} have dimension {arr.shape[1]}, Milvus collection {self.target.collection!r} holds {self.dim}")
        return arr

    # -- Store API ---------------------------------------------------------------------------

    def add(self, embeddings: np.ndarray, faces: Sequence[StoredFace]) -> int:
        vectors = self._matrix(embeddings, "embeddings")
        if len(vectors) != len(faces):
            raise StoreMismatchError(f"{len(vectors)} embeddings for {len(faces)} faces")
        if not faces:
            return 0
        fingerprint = self._fingerprint or faces[0].fingerprint
        wrong = next((f.fingerprint for f in faces if f.fingerprint != fingerprint), None)
        if wrong is not None:
            raise StoreMismatchError(f"a face of fingerprint {wrong!r} for a store of fingerprint {fingerprint!r}")
        if not self._exists():
            self._create(vectors.shape[1], fingerprint)
        fresh: dict[str, int] = {}
        for i, face in enumerate(faces):
            fresh.setdefault(face.id, i)  # the first of duplicate ids in one batch wins
        ids = list(fresh)
        for start in range(0, len(ids), _BATCH):
            for row in self._call(self._client.get, self.target.collection, ids=ids[start:start + _BATCH],
                                  output_fields=["id"]):
                fresh.pop(row["id"], None)
        rows = [self._row(faces[i], vectors[i]) for i in fresh.values()]
        for start in range(0, len(rows), _BATCH):
            self._call(self._client.insert, self.target.collection, rows[start:start + _BATCH])
        return len(rows)

    @staticmethod
    def _row(face: StoredFace, vector: np.ndarray) -> dict[str, Any]:
        values = vector.tolist()
        return {"id": face.id, "identity": face.identity, "fingerprint": face.fingerprint,
                "image_sha256": face.image_sha256, "face_index": int(face.face_index),
                "facial_area": [int(v) for v in face.facial_area], "meta": dict(face.meta),
                FLAT_FIELD: values, ANN_FIELD: values}

    def search(self, queries: np.ndarray, k: int = 10, *, exact: bool = True) -> list[list[tuple[str, float]]]:
        if k < 1:
            raise StoreError(f"k must be at least 1, got {k}")
        vectors = self._matrix(queries, "queries")
        if not self._exists() or len(vectors) == 0:
            return [[] for _ in vectors]
        limit = min(k, MAX_TOPK)
        params: dict[str, Any] = {"metric_type": self._metric_type}
        if not exact:
            params["params"] = {"ef": max(self.config.ef, limit)}
        hits = self._call(self._client.search, self.target.collection, data=vectors.tolist(), limit=limit,
                          anns_field=FLAT_FIELD if exact else ANN_FIELD, search_params=params,
                          output_fields=["id"], consistency_level="Strong")
        out = []
        for row in hits:
            raw = np.array([h["distance"] for h in row], dtype=np.float64)
            dist = to_facepipe_distance(self.config.metric, raw)
            pairs = [(str(h["id"]), float(d)) for h, d in zip(row, dist)]
            pairs.sort(key=lambda p: p[1])  # Milvus orders similarities descending; keep nearest first
            out.append(pairs)
        return out

    def get(self, ids: Sequence[str]) -> list[StoredFace | None]:
        if not self._exists() or not ids:
            return [None for _ in ids]
        found: dict[str, StoredFace] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _BATCH):
            for row in self._call(self._client.get, self.target.collection, ids=unique[start:start + _BATCH],
                                  output_fields=_FIELDS):
                found[row["id"]] = StoredFace(
                    id=row["id"], identity=row["identity"], fingerprint=row["fingerprint"],
                    image_sha256=row["image_sha256"], face_index=int(row["face_index"]),
                    facial_area=tuple(int(v) for v in row["facial_area"]),  # type: ignore[arg-type]
                    meta=dict(row["meta"] or {}))
        return [found.get(i) for i in ids]

    def delete(self, ids: Sequence[str]) -> int:
        existing = [face.id for face in self.get(list(dict.fromkeys(ids))) if face is not None]
        for start in range(0, len(existing), _BATCH):
            self._call(self._client.delete, self.target.collection, ids=existing[start:start + _BATCH])
        return len(existing)

    def count(self) -> int:
        if not self._exists():
            return 0
        rows = self._call(self._client.query, self.target.collection, filter="", output_fields=["count(*)"],
                          consistency_level="Strong")
        return int(rows[0]["count(*)"])

    def identities(self) -> list[str]:
        if not self._exists():
            return []
        names: set[str] = set()
        it = self._call(self._client.query_iterator, self.target.collection, batch_size=_BATCH, filter="",
                        output_fields=["identity"], consistency_level="Strong")
        try:
            while batch := self._call(it.next):
                names.update(row["identity"] for row in batch)
        finally:
            it.close()
        return sorted(names)

    def ids_of(self, identity: str) -> list[str]:
        if not self._exists():
            return []
        ids: list[str] = []
        it = self._call(self._client.query_iterator, self.target.collection, batch_size=_BATCH,
                        filter=f"identity == {milvus_string(str(identity))}", output_fields=["id"],
                        consistency_level="Strong")
        try:
            while batch := self._call(it.next):
                ids.extend(str(row["id"]) for row in batch)
        finally:
            it.close()
        return sorted(ids)

    def drop(self) -> None:
        """Delete the whole collection (tests, re-indexing); the store is empty afterwards."""
        if self._exists():
            self._call(self._client.drop_collection, self.target.collection)
        self.dim = None
        self._fingerprint = self.config.fingerprint


@hookimpl
def facepipe_register_stores(register):  # type: ignore[no-untyped-def]
    register(StoreSpec(
        name="milvus",
        factory=f"{__name__}:MilvusStore",
        config=MilvusStoreConfig,
        description="Milvus collection (server, cluster or Milvus Lite): exact FLAT and approximate HNSW search",
        license="Apache-2.0 (pymilvus)",
        requires=("pymilvus",),
        extra="milvus",
        schemes=SCHEMES,
        approximate=True,
    ))
