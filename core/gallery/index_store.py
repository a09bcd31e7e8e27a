"""On-disk storage of a face index: one SQLite file per embedding contract, no pickle.

Layout of one index file (``<index_dir>/<key>.sqlite``):

``meta(name, value)``
    ``schema`` (:data:`SCHEMA_VERSION`), ``contract`` (JSON of everything the embeddings depend
    on: model, detector, alignment, plugin configs, weights digests...), ``dim`` (embedding
    length) and ``generation`` (bumped by every write, so readers can cache what they loaded).
``files(relpath, size, mtime_ns, sha256, hashed_at_ns, crc)``
    The indexed files, by path relative to the indexed folder (``/`` separators), with the stat
    data that lets an unchanged file skip re-hashing.
``contents(sha256, status, n_faces, message, crc)``
    One row per distinct file *content* that went through the model: ``ok``, ``noface`` or
    ``error`` (undecodable image).  Embeddings are keyed by content, so a renamed, moved, copied
    or duplicated file is never embedded again.
``faces(sha256, face_index, x, y, w, h, confidence, embedding, crc)``
    One row per face: the box in the original image and the float32 embedding as a blob.

Every row carries a CRC-32 of its values, checked when it is read, so damage inside a page that
SQLite itself cannot notice is still detected: damaged data is never used, it raises
:class:`~facepipe.errors.IndexCorruptError` and the caller rebuilds the index.

Readers and writers hold a lock on ``<key>.lock`` (see :class:`IndexLock`).  Writes happen in SQLite
transactions, so a crash leaves the last committed state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from facepipe.errors import IndexCorruptError
from facepipe.files import atomic_path, file_lock

log = logging.getLogger("facepipe.gallery.find")

#: Bumped whenever the table layout or the meaning of a column changes.
SCHEMA_VERSION = 1
#: Run SQLite's ``quick_check`` before a refresh when the file is at most this big.
QUICK_CHECK_MAX_BYTES = 256 * 2**20

_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    relpath TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL, hashed_at_ns INTEGER NOT NULL, crc INTEGER NOT NULL
);
CREATE TABLE contents (
    sha256 TEXT PRIMARY KEY, status TEXT NOT NULL, n_faces INTEGER NOT NULL,
    message TEXT NOT NULL, crc INTEGER NOT NULL
);
CREATE TABLE faces (
    sha256 TEXT NOT NULL, face_index INTEGER NOT NULL,
    x INTEGER NOT NULL, y INTEGER NOT NULL, w INTEGER NOT NULL, h INTEGER NOT NULL,
    confidence REAL NOT NULL, embedding BLOB NOT NULL, crc INTEGER NOT NULL,
    PRIMARY KEY (sha256, face_index)
);
"""
_TABLES = {"meta", "files", "contents", "faces"}
CONTENT_STATUSES = ("ok", "noface", "error")


# ----------------------------------------------------------------------------------- row types
class FileRow(NamedTuple):
    """An indexed file: where it is (relative path), its stat data and its content hash."""

    relpath: str
    size: int
    mtime_ns: int
    sha256: str
    hashed_at_ns: int


class FaceRow(NamedTuple):
    """One stored face (its embedding is returned separately, as a row of a matrix)."""

    sha256: str
    face_index: int
    x: int
    y: int
    w: int
    h: int
    confidence: float


class ContentRow(NamedTuple):
    """The outcome of running one file content through the pipeline."""

    sha256: str
    status: str  # "ok" | "noface" | "error"
    n_faces: int
    message: str = ""


# One CRC-32 per row over a canonical text of its values (and the raw embedding bytes): cheap
# enough to check on every load (~1 us a row), and it catches damage SQLite cannot see.
def file_crc(relpath: str, size: int, mtime_ns: int, sha256: str, hashed_at_ns: int) -> int:
    return zlib.crc32(f"file|{relpath}|{size}|{mtime_ns}|{sha256}|{hashed_at_ns}".encode())


def content_crc(sha256: str, status: str, n_faces: int, message: str) -> int:
    return zlib.crc32(f"content|{sha256}|{status}|{n_faces}|{message}".encode())


def face_crc(sha256: str, face_index: int, x: int, y: int, w: int, h: int, confidence: float,
             embedding: bytes) -> int:
    head = f"face|{sha256}|{face_index}|{x}|{y}|{w}|{h}|{float(confidence)!r}".encode()
    return zlib.crc32(embedding, zlib.crc32(head))


# ----------------------------------------------------------------------------------- locking
class IndexLock:
    """A lock between processes (and threads) on a lock file next to the index.

    Built on :func:`facepipe.files.file_lock`, so it works on every platform and goes away with
    a crashed process.  The lock is exclusive for readers too: readers hold it only while they
    load a snapshot, so sharing it would save little.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def hold(self, exclusive: bool) -> Iterator[None]:
        """Hold the lock for the ``with`` block (waits, logging once if another process holds it).

        ``exclusive`` says whether the caller writes; both kinds take the same exclusive lock.
        """
        waiting = f"waiting for another process that is updating the face index {self.path.stem}"
        with file_lock(self.path, waiting_message=waiting):
            yield


# ----------------------------------------------------------------------------------- the store
class IndexStore:
    """One SQLite index file.  Not thread-safe on its own: :class:`facepipe.gallery.find.FaceIndex`
    serialises access.  Every read checks row CRCs; any inconsistency raises
    :class:`IndexCorruptError`, and SQLite's own errors are re-raised as that type too.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, contract_json: str, dim: int) -> None:
        self.path = path
        self._conn = conn
        self.contract_json = contract_json
        self.dim = dim
        st = os.stat(path)
        self._identity = (st.st_dev, st.st_ino)
        self._lock = threading.RLock()

    # --------------------------------------------------------------------------- open / create
    @classmethod
    def open(cls, path: Path, contract_json: str, dim: int, *, create: bool) -> "IndexStore":
        """Open (``create``: or create) the index file and check it belongs to this contract.

        Raises :class:`IndexCorruptError` when the file exists but is not a valid index of this
        contract, and :class:`FileNotFoundError` when it is absent and ``create`` is false.
        """
        exists = path.exists()
        if not exists and not create:
            raise FileNotFoundError(path)
        if not exists:
            cls._create(path, contract_json, dim)
        try:
            conn = sqlite3.connect(str(path), timeout=60.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise IndexCorruptError(f"cannot open {path}: {exc}") from exc
        try:
            cls._validate(conn, path, contract_json, dim)
            return cls(path, conn, contract_json, dim)
        except BaseException:
            conn.close()
            raise

    @staticmethod
    def _create(path: Path, contract_json: str, dim: int) -> None:
        """Write a new, empty index to a temporary file and move it into place atomically."""
        with atomic_path(path) as tmp:
            conn = sqlite3.connect(str(tmp), isolation_level=None)
            try:
                conn.executescript(_SCHEMA)
                conn.executemany("INSERT INTO meta (name, value) VALUES (?, ?)", [
                    ("schema", str(SCHEMA_VERSION)), ("contract", contract_json), ("dim", str(int(dim))),
                    ("generation", "0"), ("created", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
                ])
            finally:
                conn.close()

    @staticmethod
    def _validate(conn: sqlite3.Connection, path: Path, contract_json: str, dim: int) -> None:
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not _TABLES <= tables:
                raise IndexCorruptError(f"{path} does not have the tables of a facepipe index "
                                        f"(found {sorted(tables) or 'none'})")
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        except sqlite3.Error as exc:
            raise IndexCorruptError(f"{path} is not a readable SQLite database: {exc}") from exc
        if meta.get("schema") != str(SCHEMA_VERSION):
            raise IndexCorruptError(f"{path} has index schema {meta.get('schema')!r}, expected {SCHEMA_VERSION}")
        if meta.get("contract") != contract_json:
            raise IndexCorruptError(f"{path} was built for other model settings than the ones in use")
        if meta.get("dim") != str(int(dim)):
            raise IndexCorruptError(f"{path} holds {meta.get('dim')}-d embeddings, the model makes {dim}-d ones")
        if not str(meta.get("generation", "")).isdigit():
            raise IndexCorruptError(f"{path} has an invalid generation counter")

    def quick_check(self) -> None:
        """SQLite's structural check (skipped for files over :data:`QUICK_CHECK_MAX_BYTES`)."""
        if self.path.stat().st_size > QUICK_CHECK_MAX_BYTES:
            return
        with self._errors():
            result = [row[0] for row in self._conn.execute("PRAGMA quick_check")]
        if result != ["ok"]:
            raise IndexCorruptError(f"{self.path} failed SQLite's quick_check: {'; '.join(result[:3])}")

    def is_current(self) -> bool:
        """False when the file on disk was replaced (e.g. rebuilt by another process)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self._identity

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and _is_environment_error(exc):
                raise  # a full disk or a read-only folder is not corruption
            raise IndexCorruptError(f"{self.path} is damaged: {exc}") from exc

    # --------------------------------------------------------------------------- reads
    @property
    def generation(self) -> int:
        with self._lock, self._errors():
            row = self._conn.execute("SELECT value FROM meta WHERE name = 'generation'").fetchone()
        if row is None or not str(row[0]).isdigit():
            raise IndexCorruptError(f"{self.path} has lost its generation counter")
        return int(row[0])

    def files(self) -> dict[str, FileRow]:
        """Every indexed file by relative path (CRC-checked)."""
        with self._lock, self._errors():
            rows = self._conn.execute(
                "SELECT relpath, size, mtime_ns, sha256, hashed_at_ns, crc FROM files").fetchall()
        out: dict[str, FileRow] = {}
        try:
            for relpath, size, mtime_ns, sha, hashed_at, crc in rows:
                if file_crc(relpath, size, mtime_ns, sha, hashed_at) != crc or relpath in out:
                    raise IndexCorruptError(f"{self.path}: the record of {relpath!r} is damaged")
                out[relpath] = FileRow(relpath, size, mtime_ns, sha, hashed_at)
        except (TypeError, ValueError) as exc:  # a value of the wrong type in a damaged row
            if isinstance(exc, IndexCorruptError):
                raise
            raise IndexCorruptError(f"{self.path}: a file record is damaged ({exc})") from None
        return out

    def contents(self) -> dict[str, ContentRow]:
        """Every processed content by sha256 (CRC-checked)."""
        with self._lock, self._errors():
            rows = self._conn.execute("SELECT sha256, status, n_faces, message, crc FROM contents").fetchall()
        out: dict[str, ContentRow] = {}
        try:
            for sha, status, n_faces, message, crc in rows:
                if (content_crc(sha, status, n_faces, message) != crc or status not in CONTENT_STATUSES
                        or sha in out):
                    raise IndexCorruptError(f"{self.path}: the record of content {str(sha)[:12]} is damaged")
                out[sha] = ContentRow(sha, status, n_faces, message)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, IndexCorruptError):
                raise
            raise IndexCorruptError(f"{self.path}: a content record is damaged ({exc})") from None
        return out

    def faces(self) -> tuple[list[FaceRow], np.ndarray]:
        """Every stored face and its embedding: ``(rows, float32 (n, dim))``, CRC-checked."""
        with self._lock, self._errors():
            rows = self._conn.execute(
                "SELECT sha256, face_index, x, y, w, h, confidence, embedding, crc FROM faces "
                "ORDER BY sha256, face_index").fetchall()
        width = self.dim * 4
        out: list[FaceRow] = []
        blobs: list[bytes] = []
        try:
            for sha, index, x, y, w, h, conf, blob, crc in rows:
                if len(blob) != width or face_crc(sha, index, x, y, w, h, conf, blob) != crc:
                    raise IndexCorruptError(
                        f"{self.path}: face {index} of content {str(sha)[:12]} is damaged (embedding of "
                        f"{len(blob)} bytes, expected {width})")
                out.append(FaceRow(sha, index, x, y, w, h, conf))
                blobs.append(blob)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, IndexCorruptError):
                raise
            raise IndexCorruptError(f"{self.path}: a face record is damaged ({exc})") from None
        matrix = np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32).reshape(len(out), self.dim)
        if matrix.size and not np.isfinite(matrix).all():
            raise IndexCorruptError(f"{self.path} holds non-finite embeddings")
        return out, matrix

    # --------------------------------------------------------------------------- writes
    @contextlib.contextmanager
    def transaction(self) -> Iterator["IndexStore"]:
        """A write transaction (``BEGIN IMMEDIATE``); bumps ``generation`` on commit."""
        with self._lock:
            with self._errors():
                self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
                with self._errors():
                    self._conn.execute(
                        "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) "
                        "WHERE name = 'generation'")
                    self._conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise

    def put_files(self, rows: Iterable[FileRow]) -> None:
        with self._errors():
            self._conn.executemany(
                "INSERT OR REPLACE INTO files (relpath, size, mtime_ns, sha256, hashed_at_ns, crc) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(r.relpath, r.size, r.mtime_ns, r.sha256, r.hashed_at_ns,
                  file_crc(r.relpath, r.size, r.mtime_ns, r.sha256, r.hashed_at_ns)) for r in rows])

    def delete_files(self, relpaths: Iterable[str]) -> None:
        with self._errors():
            self._conn.executemany("DELETE FROM files WHERE relpath = ?", [(p,) for p in relpaths])

    def put_content(self, content: ContentRow, faces: Sequence[FaceRow] = (),
                    embeddings: np.ndarray | None = None) -> None:
        """Store one processed content and its faces (replacing what was stored for it)."""
        if embeddings is None:
            embeddings = np.zeros((0, self.dim), dtype=np.float32)
        if len(faces) != len(embeddings) or (len(faces) and embeddings.shape[1] != self.dim):
            raise ValueError(f"{len(faces)} faces but embeddings of shape {embeddings.shape} (dim {self.dim})")
        vectors = np.ascontiguousarray(embeddings, dtype="<f4")
        with self._errors():
            self._conn.execute("DELETE FROM faces WHERE sha256 = ?", (content.sha256,))
            self._conn.execute(
                "INSERT OR REPLACE INTO contents (sha256, status, n_faces, message, crc) VALUES (?, ?, ?, ?, ?)",
                (content.sha256, content.status, content.n_faces, content.message,
                 content_crc(content.sha256, content.status, content.n_faces, content.message)))
            values = []
            for face, vector in zip(faces, vectors):
                blob = vector.tobytes()
                values.append((face.sha256, face.face_index, face.x, face.y, face.w, face.h, face.confidence,
                               blob, face_crc(face.sha256, face.face_index, face.x, face.y, face.w, face.h,
                                              face.confidence, blob)))
            self._conn.executemany(
                "INSERT INTO faces (sha256, face_index, x, y, w, h, confidence, embedding, crc) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def drop_unreferenced(self) -> int:
        """Delete contents (and their faces) that no file refers to any more; returns how many."""
        with self._errors():
            cur = self._conn.execute(
                "DELETE FROM contents WHERE sha256 NOT IN (SELECT DISTINCT sha256 FROM files)")
            removed = cur.rowcount
            self._conn.execute("DELETE FROM faces WHERE sha256 NOT IN (SELECT sha256 FROM contents)")
        return max(removed, 0)


def _is_environment_error(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("readonly", "read-only", "disk is full", "disk i/o", "unable to open",
                                   "database is locked"))


def quarantine(path: Path) -> Path | None:
    """Move a damaged index file aside (``<name>.corrupt``, replacing an older one); returns
    where it went, or None when it could not be moved (then it is deleted)."""
    # A hot journal left next to the damaged file must not be replayed into the new index.
    for suffix in ("-journal", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            path.with_name(path.name + suffix).unlink()
    target = path.with_name(path.name + ".corrupt")
    try:
        os.replace(path, target)
        return target
    except FileNotFoundError:
        return None
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def dumps_contract(contract: dict[str, Any]) -> str:
    """The canonical JSON of a contract (sorted keys, no spaces)."""
    return json.dumps(contract, sort_keys=True, separators=(",", ":"), default=str)
