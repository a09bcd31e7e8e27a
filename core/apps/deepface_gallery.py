"""deepface 0.0.103's database functions (``register``, ``search``, ``identify``, ``build_index``)
on facepipe's galleries.

deepface names a database with ``database_type`` + ``connection_details`` (or a ``DEEPFACE_*``
environment variable); facepipe names a gallery with one URL.  :func:`store_url` maps the first
onto the second; the functions below keep deepface's parameters, defaults and result keys.
Differences are listed in ``docs/compat.md``.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any, Mapping
from urllib.parse import quote, urlsplit

from facepipe.errors import ConfigError, EmptyDatasourceError, StoreURLError, UnimplementedError

#: deepface's database_type → the environment variable it reads when no connection_details are given
DATABASE_ENV = {
    "sqlite": "DEEPFACE_SQLITE_PATH",
    "postgres": "DEEPFACE_POSTGRES_URI",
    "pgvector": "DEEPFACE_POSTGRES_URI",
    "milvus": "DEEPFACE_MILVUS_URI",
}
#: deepface's other database types: named so the error can say they are not offered
OTHER_DATABASES = ("mongo", "weaviate", "neo4j", "pinecone", "qdrant", "oracle", "mssql", "db2", "redis",
                   "cassandra", "mysql")
SEARCH_METHODS = ("exact", "ann")
#: deepface's top-k for approximate searches when ``k`` is not given
ANN_DEFAULT_K = 20
#: deepface's search columns, in its order (exact search)
SEARCH_COLUMNS = ("id", "img_name", "model_name", "detector_backend", "aligned", "l2_normalized", "search_method",
                  "target_x", "target_y", "target_w", "target_h", "threshold", "distance_metric", "distance",
                  "confidence")


def store_url(database_type: str, connection_details: Mapping[str, Any] | str | None = None) -> str:
    """The facepipe gallery URL (or folder) of deepface's ``database_type`` + ``connection_details``.

    Without ``connection_details`` the database's ``DEEPFACE_*`` environment variable is read.
    """
    if database_type not in DATABASE_ENV:
        if database_type in OTHER_DATABASES:
            raise UnimplementedError(f"database_type={database_type!r} is not offered by facepipe; use one of "
                                     f"{', '.join(map(repr, DATABASE_ENV))}")
        raise ConfigError(f"Unsupported database type: {database_type}; use one of "
                          f"{', '.join(map(repr, DATABASE_ENV))}")
    details: Any = connection_details or os.environ.get(DATABASE_ENV[database_type]) or None
    if details is None:
        raise ConfigError(f"Database connection details must be given for {database_type!r}: pass "
                          f"connection_details or set the {DATABASE_ENV[database_type]} environment variable")
    if database_type == "sqlite":
        return _sqlite_path(details)
    if database_type == "milvus":
        return _milvus_url(details)
    return _postgres_url(details)


def _sqlite_path(details: Any) -> str:
    if isinstance(details, Mapping):
        details = details.get("path") or details.get("database")
    if not isinstance(details, (str, os.PathLike)) or not str(details):
        raise StoreURLError("sqlite connection_details must be a path (or a dict with 'path')")
    return os.fspath(details)


def _milvus_url(details: Any) -> str:
    if isinstance(details, Mapping):
        details = details.get("uri")
    if not isinstance(details, str) or not details:
        raise StoreURLError("Milvus URI must be given as a string (milvus://host:19530 or http://host:19530)")
    parts = urlsplit(details)
    if parts.scheme in ("http", "https", "tcp"):
        return "milvus://" + details.split("://", 1)[1]
    if parts.scheme != "milvus":
        raise StoreURLError(f"not a Milvus URI: {details!r}; use milvus://host:19530 or http://host:19530")
    return details


def _postgres_url(details: Any) -> str:
    if isinstance(details, str):
        if urlsplit(details).scheme in ("postgresql", "postgres"):
            return details
        # libpq keyword/value form: "host=db dbname=faces user=me"
        try:
            details = dict(item.split("=", 1) for item in details.split())
        except ValueError:
            raise StoreURLError(f"not a PostgreSQL URI or key=value string: {details!r}") from None
    if not isinstance(details, Mapping):
        raise StoreURLError("connection_details must be either a string or a dict.")
    user = quote(str(details.get("user", "")), safe="")
    password = details.get("password")
    auth = f"{user}:{quote(str(password), safe='')}@" if password is not None else (f"{user}@" if user else "")
    host = details.get("host", "localhost")
    port = f":{details['port']}" if details.get("port") else ""
    dbname = details.get("dbname") or details.get("database") or ""
    return f"postgresql://{auth}{host}{port}/{dbname}"


def default_img_name(source: Any) -> str:
    """deepface's stored name: the path of a .jpg/.jpeg/.png path, else a random uuid."""
    if isinstance(source, str) and source.endswith((".jpg", ".jpeg", ".png")):
        return source
    return str(uuid.uuid4())


def resolve_metric(distance_metric: str, l2_normalize: bool, search_method: str) -> str:
    """deepface's metric adjustments: ``ann`` measures cosine (l2-normalised) or euclidean; ``exact``
    with l2-normalised vectors turns euclidean into euclidean_l2."""
    if search_method not in SEARCH_METHODS:
        raise ConfigError(f"Unsupported search method: {search_method}; use 'exact' or 'ann'")
    if search_method == "ann":
        return "cosine" if l2_normalize else "euclidean"
    if l2_normalize and distance_metric == "euclidean":
        return "euclidean_l2"
    return distance_metric


def search_rows(pipeline: Any, matches: list[Any], *, similarity_search: bool, k: int | None,
                search_method: str, aligned: bool, l2_normalized: bool) -> list[dict[str, Any]]:
    """deepface's search rows of one query face from the gallery's ``matches`` (nearest first)."""
    threshold = pipeline.threshold()
    rows = []
    for match in matches:
        distance = float(match.distance)
        verified = distance <= threshold
        if not (similarity_search or verified):
            continue
        x, y, w, h = match.face.facial_area
        rows.append({"id": match.face.id, "img_name": match.face.identity, "model_name": pipeline.model_name,
                     "detector_backend": pipeline.detector_name, "aligned": aligned, "l2_normalized": l2_normalized,
                     "search_method": search_method, "target_x": x, "target_y": y, "target_w": w, "target_h": h,
                     "threshold": threshold, "distance_metric": pipeline.metric_name, "distance": distance,
                     "confidence": pipeline.confidence(distance, verified)})
    rows.sort(key=lambda row: row["distance"])
    return rows[:k] if k is not None and k > 0 else rows


def require_faces(count: int, pipeline: Any) -> None:
    """deepface refuses to search an empty database."""
    if count == 0:
        raise EmptyDatasourceError(f"No embeddings found in the database for model_name={pipeline.model_name!r}, "
                                   f"detector_backend={pipeline.detector_name!r}; register some faces before "
                                   "searching")


def identify_result(pipeline: Any, distance: float, stored: Any, query_area: dict[str, Any],
                    started: float) -> dict[str, Any]:
    """deepface's identify dict for the query face nearest to the stored face."""
    threshold = pipeline.threshold()
    verified = distance <= threshold
    return {"verified": bool(verified), "distance": float(distance), "threshold": float(threshold),
            "confidence": float(pipeline.confidence(distance, verified)), "model": pipeline.model_name,
            "detector_backend": pipeline.detector_name, "similarity_metric": pipeline.metric_name,
            "id": stored.id, "img_name": stored.identity,
            "facial_areas": {"img1": query_area, "img2": None},  # deepface: the stored face's box is not returned
            "time": round(time.time() - started, 2)}
