"""deepface's database arguments (database_type, connection_details, DEEPFACE_* variables) → facepipe
gallery URLs, and its search-option checks; no store needed."""

from __future__ import annotations

import inspect

import pytest

from facepipe.apps import deepface_gallery as dfg
from facepipe.errors import ConfigError, StoreURLError, UnimplementedError


@pytest.fixture(autouse=True)
def _no_deepface_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in set(dfg.DATABASE_ENV.values()):
        monkeypatch.delenv(name, raising=False)


def test_sqlite_is_the_embedded_store_folder() -> None:
    assert dfg.store_url("sqlite", "/data/faces") == "/data/faces"
    assert dfg.store_url("sqlite", {"path": "faces.db"}) == "faces.db"


@pytest.mark.parametrize("database_type", ["pgvector", "postgres"])
def test_postgres_urls_from_strings_and_dicts(database_type: str) -> None:
    url = "postgresql://me:pw@db:5432/faces"
    assert dfg.store_url(database_type, url) == url
    assert dfg.store_url(database_type, "host=db port=5433 dbname=faces user=me") == "postgresql://me@db:5433/faces"
    details = {"host": "db", "port": 5432, "user": "me", "password": "p@ss/word", "dbname": "faces"}
    assert dfg.store_url(database_type, details) == "postgresql://me:p%40ss%2Fword@db:5432/faces"


def test_milvus_http_uri_becomes_the_milvus_scheme() -> None:
    assert dfg.store_url("milvus", "http://milvus:19530") == "milvus://milvus:19530"
    assert dfg.store_url("milvus", "milvus://milvus:19530") == "milvus://milvus:19530"
    with pytest.raises(StoreURLError, match="string"):
        dfg.store_url("milvus", {"host": "milvus"})
    with pytest.raises(StoreURLError, match="Milvus"):
        dfg.store_url("milvus", "redis://x")


@pytest.mark.parametrize(("database_type", "variable", "value", "url"), [
    ("sqlite", "DEEPFACE_SQLITE_PATH", "/srv/faces", "/srv/faces"),
    ("pgvector", "DEEPFACE_POSTGRES_URI", "postgresql://u@h/db", "postgresql://u@h/db"),
    ("postgres", "DEEPFACE_POSTGRES_URI", "postgresql://u@h/db", "postgresql://u@h/db"),
    ("milvus", "DEEPFACE_MILVUS_URI", "http://m:19530", "milvus://m:19530"),
])
def test_environment_variables(monkeypatch: pytest.MonkeyPatch, database_type: str, variable: str, value: str,
                               url: str) -> None:
    monkeypatch.setenv(variable, value)
    assert dfg.store_url(database_type) == url
    assert dfg.store_url(database_type, "/given" if database_type == "sqlite" else url) != ""  # details win


def test_missing_details_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="DEEPFACE_POSTGRES_URI"):
        dfg.store_url("pgvector")


def test_other_databases_are_typed_errors() -> None:
    with pytest.raises(UnimplementedError, match="mongo"):
        dfg.store_url("mongo", "mongodb://x")
    with pytest.raises(ConfigError, match="Unsupported database type"):
        dfg.store_url("nosuchdb", "x")


def test_search_method_and_metric_rules() -> None:
    assert dfg.resolve_metric("cosine", False, "exact") == "cosine"
    assert dfg.resolve_metric("euclidean", True, "exact") == "euclidean_l2"
    assert dfg.resolve_metric("angular", True, "ann") == "cosine"
    assert dfg.resolve_metric("angular", False, "ann") == "euclidean"
    with pytest.raises(ConfigError, match="Unsupported search method"):
        dfg.resolve_metric("cosine", False, "fuzzy")


def test_default_img_name_follows_deepface() -> None:
    assert dfg.default_img_name("people/img1.jpg") == "people/img1.jpg"
    assert len(dfg.default_img_name(b"raw")) == 36  # a uuid4


def test_facade_signatures_and_defaults_are_deepfaces() -> None:
    from facepipe.apps import deepface as DeepFace

    expected = {
        "register": ["img", "img_name", "model_name", "detector_backend", "enforce_detection", "align",
                     "l2_normalize", "expand_percentage", "normalization", "anti_spoofing", "database_type",
                     "connection_details", "connection"],
        "search": ["img", "model_name", "detector_backend", "distance_metric", "enforce_detection", "align",
                   "l2_normalize", "expand_percentage", "normalization", "anti_spoofing", "similarity_search", "k",
                   "database_type", "connection_details", "connection", "search_method", "return_type"],
        "identify": ["img", "identity_id", "model_name", "detector_backend", "distance_metric", "enforce_detection",
                     "align", "l2_normalize", "expand_percentage", "normalization", "anti_spoofing",
                     "database_type", "connection_details", "connection"],
        "build_index": ["model_name", "detector_backend", "align", "l2_normalize", "database_type", "connection",
                        "connection_details", "max_neighbors_per_node"],
    }
    for name, params in expected.items():
        signature = inspect.signature(getattr(DeepFace, name))
        assert list(signature.parameters) == params, name
        assert signature.parameters["database_type"].default == "postgres"
        assert signature.parameters["model_name"].default == "VGG-Face"
    search = inspect.signature(DeepFace.search).parameters
    assert search["search_method"].default == "exact" and search["k"].default is None
    assert inspect.signature(DeepFace.build_index).parameters["max_neighbors_per_node"].default == 32
