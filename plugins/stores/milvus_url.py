"""Reading ``milvus://`` URLs into the pieces a Milvus client needs (no pymilvus import here).

Forms::

    milvus://host[:port][/collection]              plain gRPC, port 19530 by default
    milvus://host[:port]/database/collection       a database other than "default"
    milvus+https://[user:password@]host[:port]/... TLS (a cluster behind HTTPS, Zilliz Cloud), port 443
    ...?token=API_KEY                              a token instead of user:password

The collection defaults to ``facepipe``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from facepipe.errors import StoreURLError

SCHEMES = ("milvus", "milvus+https")
DEFAULT_COLLECTION = "facepipe"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_DEFAULT_PORT = {"milvus": 19530, "milvus+https": 443}


@dataclass(frozen=True)
class MilvusTarget:
    """Where a Milvus store lives: the client's ``uri``, credentials, database and collection."""

    uri: str
    collection: str
    database: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)


def parse_milvus_url(url: str) -> MilvusTarget:
    """Split a ``milvus://`` / ``milvus+https://`` URL; raises :class:`StoreURLError` when malformed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise StoreURLError(f"malformed Milvus URL {_redact(url)!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise StoreURLError(f"not a Milvus URL: {_redact(url)!r} (use milvus://host:port/collection)")
    if not parts.hostname:
        raise StoreURLError(f"Milvus URL {_redact(url)!r} names no host (use milvus://host:port/collection)")
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if len(segments) > 2:
        raise StoreURLError(f"Milvus URL {_redact(url)!r}: the path is /collection or /database/collection")
    collection = segments[-1] if segments else DEFAULT_COLLECTION
    database = segments[0] if len(segments) == 2 else ""
    for what, name in (("collection", collection), ("database", database)):
        if name and not _NAME.match(name):
            raise StoreURLError(f"Milvus {what} name {name!r} must be letters, digits and _ (not first a digit)")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"token"})
    if unknown:
        raise StoreURLError(f"Milvus URL {_redact(url)!r}: unknown parameter(s) {', '.join(unknown)} (known: token)")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    http = "https" if scheme == "milvus+https" else "http"
    return MilvusTarget(
        uri=f"{http}://{host}:{port or _DEFAULT_PORT[scheme]}",
        collection=collection,
        database=database,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        token=query.get("token", [""])[-1],
    )


def _redact(url: str) -> str:
    """The URL without its password or token, for error messages."""
    url = re.sub(r"(//[^/:@]*):[^@/]*@", r"\1:***@", url)
    return re.sub(r"(token=)[^&]*", r"\1***", url)
