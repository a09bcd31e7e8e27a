"""PostgreSQL store URLs: parse, validate, and show them without their password.

``postgresql://user:password@host:port/database?table=faces&sslmode=...``: ``table`` is facepipe's
(the gallery's table name); every other query parameter goes to libpq unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from facepipe.errors import StoreURLError

SCHEMES = ("postgresql", "postgres")
DEFAULT_TABLE = "facepipe_faces"
# unquoted PostgreSQL identifiers, at most 63 bytes; the index names append a short suffix
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,47}")


@dataclass(frozen=True)
class PgURL:
    """A parsed store URL: the libpq conninfo, the table, and the URL as it may be shown."""

    conninfo: str
    table: str
    shown: str


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def parse_url(url: str, table: str | None = None) -> PgURL:
    """Split a store URL into libpq's conninfo and the table name (``table`` overrides the URL's).

    Raises :class:`StoreURLError` for another scheme, a malformed port, a bad table name.
    """
    shown = redact(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as err:
        raise StoreURLError(f"malformed PostgreSQL store URL {shown}: {err}") from None
    if parts.scheme not in SCHEMES:
        raise StoreURLError(f"not a PostgreSQL URL: {shown} (expected postgresql://user:password@host:port/db)")
    query = parse_qsl(parts.query, keep_blank_values=True)
    from_url = [value for key, value in query if key == "table"]
    name = table or (from_url[-1] if from_url else DEFAULT_TABLE)
    if not _TABLE_NAME.fullmatch(name):
        raise StoreURLError(f"bad table name {name!r} in {shown}: use letters, digits and _ (at most 48, "
                            f"not starting with a digit)")
    libpq_query = urlencode([(key, value) for key, value in query if key != "table"])
    conninfo = urlunsplit(parts._replace(query=libpq_query))
    return PgURL(conninfo=conninfo, table=name.lower(), shown=shown)
