"""The embedded gallery store: a folder holding SQLite (the truth) and an ANN index (a cache).

``Gallery("faces/")`` opens it.  ``faces/gallery.sqlite`` (WAL journal) keeps every face: id,
identity, provenance, meta and its float32 vector.  Each add or delete is one transaction, so a
writer killed at any moment leaves the store as it was before or after that call, never between.
A ``generation`` counter in SQLite grows with each committed change.

The approximate index (usearch HNSW, optional: ``pip install 'facepipe[gallery]'``) lives beside
it as ``ann-<unit|raw>-g<generation>.usearch``: the name says which state of SQLite it was built
from, so a stale or half-written file is never used - it is rebuilt from SQLite instead.  Its
hits are re-ranked with exact distances, so reported distances are always facepipe's.  Without
usearch, ``exact=False`` searches exactly and logs that once.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from facepipe import hookimpl
from facepipe.errors import InvalidEmbeddingsShapeError, StoreError, StoreMismatchError, StoreURLError
from facepipe.hookspecs import Register
from facepipe.plugin_config import StoreConfig
from facepipe.specs import StoreSpec
from facepipe.types import Store, StoredFace
from facepipe.vectors import exact_top_k, metric_name, prepare_rows
from pydantic import Field

log = logging.getLogger("facepipe.stores.embedded")

DATABASE = "gallery.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS faces (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    identity TEXT NOT NULL,
    image_sha256 TEXT NOT NULL,
    face_index INTEGER NOT NULL,
    facial_area TEXT NOT NULL,
    meta TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_identity ON faces (identity);
"""


#: galleries up to this many faces are searched exactly, even with exact=False
SMALL_GALLERY = 4096


class EmbeddedStoreConfig(StoreConfig):
    """Options of the embedded store."""

    block_rows: int = Field(32768, ge=1, description="gallery rows per block of exact search (bounds memory)")
    candidates: int = Field(4, ge=1, le=64,
                            description="approximate search fetches k x this many candidates, then re-ranks exactly")
    busy_timeout_s: float = Field(30.0, ge=0, description="how long a writer waits for another process's write")


class EmbeddedStore(Store):
    """SQLite + optional usearch index in one folder (see the module docstring)."""

    config_class = EmbeddedStoreConfig
    config: EmbeddedStoreConfig

    def __init__(self, config: EmbeddedStoreConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        self.metric = metric_name(self.config.metric)
        self.folder = _folder(self.config.url)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.folder / DATABASE, timeout=self.config.busy_timeout_s,
                                       isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable commits, crash-safe file
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the gallery at {self.folder}: {exc}") from exc
        self._lock = threading.RLock()
        self._matrix: tuple[int, np.ndarray, np.ndarray, list[str]] | None = None  # gen, rows, rowids, ids
        self._ann: tuple[int, Any] | None = None  # generation, AnnIndex
        self._ann_dirty = False
        self._warned_exact = False
        stored = self._info("fingerprint")
        if self.config.fingerprint is not None and stored is not None and stored != self.config.fingerprint:
            self._db.close()
            raise StoreMismatchError(
                f"the gallery at {self.folder} holds embeddings of fingerprint {stored!r}, not "
                f"{self.config.fingerprint!r}: it was built with another model or preprocessing; "
                "use another folder, or the pipeline it was built with")

    # ------------------------------------------------------------------------------ info table
    def _info(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM info WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _generation(self) -> int:
        return int(self._info("generation") or 0)

    def fingerprint(self) -> str | None:
        return self._info("fingerprint") or self.config.fingerprint

    def dimension(self) -> int | None:
        """The embedding length the store holds (None while empty of any add)."""
        dim = self._info("dim")
        return None if dim is None else int(dim)

    # ------------------------------------------------------------------------------ writes
    def add(self, embeddings: np.ndarray, faces: Sequence[StoredFace]) -> int:
        vectors = _as_rows(embeddings)
        if len(vectors) != len(faces):
            raise InvalidEmbeddingsShapeError(f"{len(vectors)} embeddings for {len(faces)} faces; give one per face")
        if not len(faces):
            return 0
        with self._lock, self._write() as db:
            fingerprint = self._info("fingerprint") or self.config.fingerprint or faces[0].fingerprint
            other = next((f for f in faces if f.fingerprint != fingerprint), None)
            if other is not None:
                raise StoreMismatchError(
                    f"face {other.id} has fingerprint {other.fingerprint!r} but the gallery at {self.folder} "
                    f"holds {fingerprint!r}: embeddings of different models or preprocessing cannot be compared")
            dim = self.dimension()
            if dim is not None and vectors.shape[1] != dim:
                raise StoreMismatchError(
                    f"embeddings of {vectors.shape[1]} dimensions, but the gallery at {self.folder} holds {dim}")
            added = 0
            new_rows: list[int] = []
            for face, vector in zip(faces, vectors):
                cur = db.execute(
                    "INSERT OR IGNORE INTO faces (id, identity, image_sha256, face_index, facial_area, meta, vector) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (face.id, face.identity, face.image_sha256, int(face.face_index),
                     json.dumps([int(v) for v in face.facial_area]), json.dumps(face.meta, sort_keys=True),
                     vector.tobytes()))
                if cur.rowcount:
                    added += 1
                    new_rows.append(int(cur.lastrowid or 0))
            if added:
                db.execute("INSERT OR REPLACE INTO info VALUES ('fingerprint', ?)", (fingerprint,))
                db.execute("INSERT OR REPLACE INTO info VALUES ('dim', ?)", (str(vectors.shape[1]),))
                self._bump(db)
        if added:
            self._after_write(added=np.asarray(new_rows, dtype=np.int64))
        return added

    def delete(self, ids: Sequence[str]) -> int:
        ids = list(ids)
        if not ids:
            return 0
        with self._lock, self._write() as db:
            rowids: list[int] = []
            for part in range(0, len(ids), 500):  # SQLite caps the number of parameters
                chunk = ids[part:part + 500]
                marks = ",".join("?" * len(chunk))
                rowids += [r[0] for r in db.execute(f"SELECT rowid FROM faces WHERE id IN ({marks})", chunk)]
                db.execute(f"DELETE FROM faces WHERE id IN ({marks})", chunk)
            if rowids:
                self._bump(db)
        if rowids:
            self._after_write(removed=np.asarray(rowids, dtype=np.int64))
        return len(rowids)

    def _write(self) -> "_Transaction":
        return _Transaction(self._db)

    def _bump(self, db: sqlite3.Connection) -> None:
        db.execute("INSERT OR REPLACE INTO info VALUES ('generation', ?)", (str(self._generation() + 1),))

    def _after_write(self, added: np.ndarray | None = None, removed: np.ndarray | None = None) -> None:
        """Keep this process's ANN index in step with its own write (one generation on)."""
        generation = self._generation()
        if self._ann is None or self._ann[0] != generation - 1:
            return  # another process wrote in between: the index is rebuilt on the next use
        ann = self._ann[1]
        if added is not None and len(added):
            rows = self._rows_of(added)
            ann.add(added, prepare_rows(rows, self.metric).astype(np.float32))
        if removed is not None and len(removed):
            ann.remove(removed)
        self._ann = (generation, ann)
        self._ann_dirty = True

    def _rows_of(self, rowids: np.ndarray) -> np.ndarray:
        dim = self.dimension() or 0
        out = np.empty((len(rowids), dim), dtype=np.float32)
        for k, rowid in enumerate(rowids.tolist()):
            (blob,) = self._db.execute("SELECT vector FROM faces WHERE rowid = ?", (rowid,)).fetchone()
            out[k] = np.frombuffer(blob, dtype=np.float32)
        return out

    # ------------------------------------------------------------------------------ reads
    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM faces").fetchone()[0])

    def identities(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT identity FROM faces ORDER BY identity")]

    def ids_of(self, identity: str) -> list[str]:
        rows = self._db.execute("SELECT id FROM faces WHERE identity = ? ORDER BY id", (str(identity),))
        return [r[0] for r in rows]

    def get(self, ids: Sequence[str]) -> list[StoredFace | None]:
        fingerprint = self.fingerprint() or ""
        found: dict[str, StoredFace] = {}
        ids = list(ids)
        for part in range(0, len(ids), 500):
            chunk = ids[part:part + 500]
            rows = self._db.execute(
                "SELECT id, identity, image_sha256, face_index, facial_area, meta FROM faces "
                f"WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            for id_, identity, sha, index, area, meta in rows:
                found[id_] = StoredFace(id=id_, identity=identity, fingerprint=fingerprint, image_sha256=sha,
                                        face_index=int(index), facial_area=tuple(json.loads(area)),
                                        meta=json.loads(meta))
        return [found.get(i) for i in ids]

    def _snapshot(self) -> tuple[int, np.ndarray, np.ndarray, list[str]]:
        """``(generation, vectors, rowids, ids)`` of the current SQLite state (cached per generation)."""
        generation = self._generation()
        if self._matrix is None or self._matrix[0] != generation:
            with _Transaction(self._db, immediate=False):  # one consistent read of the table and its generation
                generation = self._generation()
                rows = self._db.execute("SELECT rowid, id, vector FROM faces ORDER BY rowid").fetchall()
            dim = self.dimension() or 0
            matrix = np.empty((len(rows), dim), dtype=np.float32)
            for k, (_, _, blob) in enumerate(rows):
                matrix[k] = np.frombuffer(blob, dtype=np.float32)
            self._matrix = (generation, matrix, np.asarray([r[0] for r in rows], dtype=np.int64),
                            [r[1] for r in rows])
        return self._matrix

    def search(self, queries: np.ndarray, k: int = 10, *, exact: bool = True) -> list[list[tuple[str, float]]]:
        q = _as_rows(queries)
        with self._lock:
            generation, matrix, rowids, ids = self._snapshot()
            if not len(ids) or k <= 0:
                return [[] for _ in range(len(q))]
            if q.shape[1] != matrix.shape[1]:
                raise StoreMismatchError(
                    f"queries of {q.shape[1]} dimensions, but the gallery at {self.folder} holds {matrix.shape[1]}")
            if not exact:
                ann = self._ann_for(generation, matrix, rowids)  # kept current even while the gallery is small
                # A small gallery is searched exactly: it costs little, and an HNSW graph can leave a
                # node unreachable (seen on 400 random 32-d rows), which exactness rules out.
                if ann is not None and len(ids) > SMALL_GALLERY:
                    return self._approximate(ann, q, k, matrix, rowids, ids)
            index, dist = exact_top_k(q, matrix, k, self.metric, block_rows=self.config.block_rows)
        return [[(ids[j], float(d)) for j, d in zip(row_i, row_d)] for row_i, row_d in zip(index, dist)]

    # ------------------------------------------------------------------------------ approximate
    def _ann_for(self, generation: int, matrix: np.ndarray, rowids: np.ndarray) -> Any:
        from facepipe.plugins.stores import _ann

        if not _ann.available():
            if not self._warned_exact:
                log.info("usearch is not installed: exact=False searches exactly "
                         "(pip install 'facepipe[gallery]' for the approximate index)")
                self._warned_exact = True
            return None
        if self._ann is not None and self._ann[0] == generation:
            return self._ann[1]
        unit = self.metric != "euclidean"
        path = self._ann_path(generation, unit)
        dim = matrix.shape[1]
        if path.is_file():
            try:
                self._ann, self._ann_dirty = (generation, _ann.AnnIndex.load(path, dim, unit)), False
                return self._ann[1]
            except Exception as exc:  # a damaged cache file is rebuilt, never trusted
                log.warning("rebuilding the approximate index %s: %s", path, exc)
        ann = _ann.AnnIndex(dim, unit)
        ann.add(rowids, prepare_rows(matrix, self.metric).astype(np.float32))
        self._ann, self._ann_dirty = (generation, ann), True
        self._save_ann()
        return ann

    def _ann_path(self, generation: int, unit: bool) -> Path:
        return self.folder / f"ann-{'unit' if unit else 'raw'}-g{generation}.usearch"

    def _save_ann(self) -> None:
        if self._ann is None or not self._ann_dirty:
            return
        generation, ann = self._ann
        unit = self.metric != "euclidean"
        path = self._ann_path(generation, unit)
        try:
            ann.save(path)
        except OSError as exc:  # a cache: failing to write it costs a rebuild later, nothing else
            log.warning("could not save the approximate index %s: %s", path, exc)
            return
        self._ann_dirty = False
        for old in self.folder.glob(f"ann-{'unit' if unit else 'raw'}-g*.usearch"):
            if old != path:
                old.unlink(missing_ok=True)

    def _approximate(self, ann: Any, q: np.ndarray, k: int, matrix: np.ndarray, rowids: np.ndarray,
                     ids: list[str]) -> list[list[tuple[str, float]]]:
        # rowids are sorted (the snapshot reads ORDER BY rowid): a binary search maps the index's keys
        # to matrix rows without building an N-entry dict per search.
        if not len(rowids):
            return [[] for _ in q]
        prepared_q = prepare_rows(q, self.metric).astype(np.float32)
        out = []
        for query, keys in zip(q, ann.search(prepared_q, min(len(ids), k * self.config.candidates))):
            keys = np.asarray(keys, dtype=np.int64)
            found = np.minimum(np.searchsorted(rowids, keys), len(rowids) - 1)
            rows = found[rowids[found] == keys]
            if not len(rows):
                out.append([])
                continue
            index, dist = exact_top_k(query[None, :], matrix[rows], k, self.metric)
            out.append([(ids[int(rows[j])], float(d)) for j, d in zip(index[0], dist[0])])
        return out

    def close(self) -> None:
        with self._lock:
            if getattr(self, "_db", None) is None:
                return
            self._save_ann()
            self._db.close()
            self._db = None  # type: ignore[assignment]


class _Transaction:
    """``BEGIN IMMEDIATE`` (a write) or ``BEGIN`` (a consistent read) ... ``COMMIT``, rolled back on error."""

    def __init__(self, db: sqlite3.Connection, *, immediate: bool = True) -> None:
        self.db, self.immediate = db, immediate

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.db.execute("BEGIN IMMEDIATE" if self.immediate else "BEGIN")
        except sqlite3.Error as exc:
            raise StoreError(f"the gallery database is not available: {exc}") from exc
        return self.db

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _folder(url: str) -> Path:
    text = str(url)
    if text.startswith("file://"):
        text = text[len("file://"):]
    elif "://" in text:
        raise StoreURLError(f"the embedded store opens folders, not URLs like {url!r}")
    if not text.strip():
        raise StoreURLError("the embedded store needs a folder path")
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise StoreURLError(f"{path} is a file; the embedded store needs a folder (it creates {DATABASE} in it)")
    return path


def _as_rows(x: Any) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidEmbeddingsShapeError(f"embeddings must be an (n, d) array of numbers ({exc})") from None
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise InvalidEmbeddingsShapeError(f"embeddings must be an (n, d) array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidEmbeddingsShapeError("embeddings hold NaN or infinite values; they must be finite")
    return np.ascontiguousarray(arr)


@hookimpl
def facepipe_register_stores(register: Register) -> None:
    """Register the embedded store (folder paths; ``file://`` too)."""
    register(StoreSpec(
        name="embedded",
        factory="facepipe.plugins.stores.embedded:EmbeddedStore",
        config=EmbeddedStoreConfig,
        aliases=("sqlite",),
        schemes=("file",),
        local=True,
        approximate=True,
        description="SQLite (WAL) folder store with an optional usearch HNSW index; deepface's database_type='sqlite'",
        license="MIT",
    ))
