"""``find``: who in a folder of photos looks like the face(s) in a query image.

The folder is indexed once and kept up to date incrementally by :class:`FaceIndex`:

* Sub-folders are walked (``os.walk``, symlinked folders not followed; symlinked files are read).
  ``.jpg`` / ``.jpeg`` / ``.png`` files (any case) are indexed when their *content* is JPEG or
  PNG (magic bytes; a WebP file named ``.jpg`` is ignored).
* The index is a SQLite file (no pickle) in ``<folder>/.facepipe-index/`` — or, when the folder
  is not writable, under ``$FACEPIPE_HOME/indexes/``.  Its name carries a key of everything the
  embeddings depend on (model, detector, alignment, expansion, normalisation, plugin configs,
  weights checksums, facepipe's embedding version), so a pipeline with other settings gets its
  own index and incompatible vectors are never mixed.
* Files are identified by the sha256 of their bytes; ``(size, mtime)`` only lets an unchanged
  file skip re-hashing.  Embeddings are stored per content, with paths relative to the folder:
  renaming, moving or copying the folder (or a file inside it) costs no model call.
* A refresh embeds new and changed contents in chunks (bounded in files and decoded bytes),
  batched through the pipeline, and commits after each chunk, so an interrupted run keeps its
  progress.  A file lock serialises processes; a damaged index (unreadable, truncated, wrong
  schema, wrong dimensions, failed row checksum) is logged and rebuilt.
* Images without a face, and files that cannot be decoded (logged), are remembered but never
  appear in results (deepface lists no-face images with an infinite distance; facepipe skips
  them).

:func:`find` is what ``facepipe.find`` and the CLI call: one :class:`FindResult` per face of the query,
rows in deepface's format.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import threading
import time
import weakref
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from facepipe.errors import (
    ConfigError,
    DimensionMismatchError,
    EmptyDatasourceError,
    ImageError,
    IndexCorruptError,
    InvalidEmbeddingsShapeError,
    PathNotFoundError,
)
from facepipe.files import sha256_file
from facepipe.progress import Progress, ProgressArg
from facepipe.gallery.index_store import (
    ContentRow,
    FaceRow,
    FileRow,
    IndexLock,
    IndexStore,
    dumps_contract,
    quarantine,
)

if TYPE_CHECKING:  # pragma: no cover
    from facepipe.pipeline.orchestrator import Pipeline
    from facepipe.pipeline.results import Face

log = logging.getLogger("facepipe.gallery.find")

__all__ = [
    "COLUMNS", "FaceIndex", "FaceRecord", "FindResult", "Hits", "IMAGE_EXTENSIONS", "INDEX_DIR_NAME",
    "RefreshStats", "find", "index_contract", "list_images",
]

#: deepface's column order of a ``find`` DataFrame.
COLUMNS = ("identity", "hash", "target_x", "target_y", "target_w", "target_h", "threshold",
           "source_x", "source_y", "source_w", "source_h", "distance", "confidence")
#: File name endings that are considered (the content must also be JPEG or PNG).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
#: The index folder created inside the indexed folder (never indexed itself).
INDEX_DIR_NAME = ".facepipe-index"
#: Bump when facepipe's detection/alignment/preprocessing changes what embeddings come out.
EMBEDDING_VERSION = 2  # 2: crops scaled to [0, 1] before resizing (deepface order)
# A file modified this close to the moment it was hashed may have changed again within the same
# mtime tick: its cached hash is not trusted (git's "racy clean" problem).
_RACY_NS = 2_000_000_000
# Config fields that change speed or placement, never the numbers that come out.
_NEUTRAL_FIELDS = frozenset({"batch_size", "device", "threads", "num_threads", "providers", "weights_path"})


def _neutral(field_name: str) -> bool:
    # folders (caches and the like) change where files live, not what comes out
    return field_name in _NEUTRAL_FIELDS or field_name.endswith("_dir")



# ----------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class RefreshStats:
    """What a refresh did.  ``added`` / ``removed`` / ``changed`` / ``unchanged`` count files;
    ``embedded`` counts the file contents that went through the model (0 when files were only
    renamed, copied or moved) and ``faces`` the faces embedded; ``ignored`` counts files with an
    image extension whose content is not JPEG/PNG; ``errors`` undecodable images."""

    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0
    embedded: int = 0
    faces: int = 0
    ignored: int = 0
    errors: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class FaceRecord:
    """A searchable face of the index: ``identity`` is the file's path relative to the folder
    (``/`` separators); ``x, y, w, h`` its box in that image."""

    identity: str
    sha256: str
    face_index: int
    x: int
    y: int
    w: int
    h: int
    confidence: float

    def path(self, root: str | os.PathLike[str]) -> str:
        """The file's path joined with ``root`` (as deepface builds its ``identity`` column)."""
        return os.path.join(os.fspath(root), *self.identity.split("/"))


@dataclass(frozen=True)
class Hits:
    """Matches of one query: positions in :attr:`FaceIndex.records` and their distances, closest first."""

    indices: np.ndarray
    distances: np.ndarray


@dataclass
class FindResult:
    """Matches of one query face.  ``rows`` are dicts with deepface's keys, closest first."""

    rows: list[dict[str, Any]]
    face: Any = field(default=None, repr=False)  # the query Face
    threshold: float = 0.0

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def to_dicts(self) -> list[dict[str, Any]]:
        """The rows (copies), in deepface's column order."""
        return [{c: row[c] for c in COLUMNS} for row in self.rows]

    def to_pandas(self) -> Any:
        """A DataFrame with deepface's columns, in deepface's order (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_pandas() needs pandas: pip install 'facepipe[pandas]'") from exc
        return pd.DataFrame(self.to_dicts(), columns=list(COLUMNS))


@dataclass
class _Snapshot:
    """What was loaded from one generation of the index (aligned columns)."""

    key: tuple[Any, ...]
    identities: list[str]
    faces: list[FaceRow]
    embeddings: np.ndarray
    n_files: int
    unsearchable: dict[str, str]
    _records: list[FaceRecord] | None = None

    def record(self, i: int) -> FaceRecord:
        f = self.faces[i]
        return FaceRecord(self.identities[i], f.sha256, f.face_index, f.x, f.y, f.w, f.h, f.confidence)

    @property
    def records(self) -> list[FaceRecord]:
        if self._records is None:
            self._records = [self.record(i) for i in range(len(self.faces))]
        return self._records


@dataclass
class _Chunk:
    """A decoded and detected chunk of work, waiting for its embeddings."""

    items: list[tuple[_Work, np.ndarray | None, str]]
    faces: dict[str, list[Face] | None]  # by content; None: detection failed


@dataclass
class _Work:
    """One file content to run through the model, and the files that hold it."""

    sha256: str
    files: list[FileRow]
    path: str


# ----------------------------------------------------------------------------------- contract
def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower()) or "x"


def _file_digest(manager: Any, path: Path) -> str:
    """sha256 of a weights file, remembered by the weights manager when it can."""
    st = path.stat()
    remembered = getattr(manager, "_sha256", None)
    if callable(remembered):
        return str(remembered(path, st))
    return sha256_file(path)


def _plugin_fingerprint(pipeline: Pipeline, slot: str, kind: str, name: str) -> dict[str, Any]:
    """A plugin's effective options (speed-only ones left out) and the checksums of its weights."""
    from facepipe.weights import default_manager

    config = pipeline.plugin_configs[slot]
    files = {k for k, v in config if isinstance(v, Path)}  # their content is digested below, not their place
    options = {k: v for k, v in config.model_dump(mode="json").items() if not _neutral(k) and k not in files}
    manager = pipeline.weights if pipeline.weights is not None else default_manager()
    weights: dict[str, str] = {}
    override = getattr(config, "weights_path", None)
    for key, value in config:  # explicit local files (weights_path, cascade paths...)
        if isinstance(value, Path) and value.is_file():
            weights[f"option:{key}"] = _file_digest(manager, value)
    if override is None:
        spec = pipeline.registry.get(kind, name)  # type: ignore[arg-type]
        for wf in spec.weights:
            if wf.sha256:  # the manager only hands out files that match it
                weights[wf.name] = wf.sha256.lower()
                continue
            status = manager.status(wf)
            # Missing: fetch it now (the model needs it anyway) so the key never says "missing".
            path = Path(status["path"]) if status["where"] != "missing" else manager.path(wf)
            weights[wf.name] = _file_digest(manager, path)
    return {"options": options, "weights": weights}


def index_contract(pipeline: Pipeline, *, align: bool | None = None,
                   expand_percentage: float | None = None) -> dict[str, Any]:
    """Everything the stored embeddings depend on (the index is keyed by its hash)."""
    cfg = pipeline.config
    recognizer_config = pipeline.plugin_configs["recognizer"]
    return {
        "embedding_version": EMBEDDING_VERSION,
        "model": pipeline.model_name,
        "detector": pipeline.detector_name,
        "align": bool(cfg.align if align is None else align),
        "expand_percentage": float(cfg.expand_percentage if expand_percentage is None else expand_percentage),
        "normalization": getattr(recognizer_config, "normalization", "base"),
        "max_faces": cfg.max_faces,
        "detect_max_side": cfg.detect_max_side,
        "pad_before_detect": cfg.pad_before_detect,
        "eye_fallback": cfg.eye_fallback,
        "recognizer": _plugin_fingerprint(pipeline, "recognizer", "recognizer", cfg.recognizer.name),
        "detector_plugin": _plugin_fingerprint(pipeline, "detector", "detector", cfg.detector.name),
    }


def _unjudged(faces: list[Face]) -> list[Face]:
    """The gallery's faces without anti-spoofing verdicts: only queries are judged (as in deepface),
    so a photo of a photo in the folder is still indexed instead of failing the refresh."""
    from dataclasses import replace

    return [replace(f, is_real=None, antispoof_score=None) if f.is_real is not None else f for f in faces]


def _embedding_size(pipeline: Pipeline) -> int:
    size = int(getattr(pipeline.recognizer, "embedding_size", 0) or 0)
    if size > 0:
        return size
    # A plugin that does not declare its size: ask the model once with a blank crop.
    from facepipe.pipeline.align import FacialArea
    from facepipe.pipeline.results import Face

    blank = np.full((64, 64, 3), 128, dtype=np.uint8)
    return int(pipeline.embed_faces([Face(0, FacialArea(0, 0, 64, 64), 0.0, blank, detected=False)]).shape[1])


# ----------------------------------------------------------------------------------- folder walk
def _check_folder(db_path: str | os.PathLike[str]) -> Path:
    root = Path(os.fspath(db_path)).expanduser()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise PathNotFoundError(f"db_path {os.fspath(db_path)!r} {what}; give the folder holding the photos "
                                "to search (sub-folders are searched too)")
    return root


def _walk(root: Path, skip_dirs: Sequence[Path]) -> Iterator[tuple[str, str, os.stat_result]]:
    """``(relpath, path, stat)`` of every file with an image extension, sorted, ``/``-separated."""
    skip = {os.path.normcase(os.path.abspath(p)) for p in skip_dirs}
    top = os.fspath(root)

    def on_error(exc: OSError) -> None:
        log.warning("cannot read the folder %s (%s); its photos are not indexed", exc.filename, exc.strerror)

    for dirpath, dirnames, filenames in os.walk(top, onerror=on_error, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames
                             if os.path.normcase(os.path.abspath(os.path.join(dirpath, d))) not in skip)
        # os.walk builds every dirpath by joining names onto `top`, so the relative folder is a suffix
        sub = dirpath[len(top):].lstrip(os.sep)
        prefix = sub.replace(os.sep, "/") + "/" if sub else ""
        for name in sorted(filenames):
            if not name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            full = os.path.join(dirpath, name)
            try:
                st = os.stat(full)
            except OSError as exc:
                log.warning("skipping %s: %s", full, exc.strerror or exc)
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            rel = prefix + name
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:  # a name that is not valid in the file system's encoding
                log.warning("skipping %r: its name cannot be stored (rename it to valid UTF-8)", full)
                continue
            yield rel, full, st


def list_images(db_path: str | os.PathLike[str]) -> list[str]:
    """Paths of the files ``find`` indexes in a folder (content sniffed: JPEG or PNG only)."""
    root = _check_folder(db_path)
    out = []
    for rel, full, _ in _walk(root, [root / INDEX_DIR_NAME]):
        try:
            with open(full, "rb") as fh:
                head = fh.read(16)
        except OSError:
            continue
        if _is_indexable(head):
            out.append(os.path.join(os.fspath(db_path), *rel.split("/")))
    return out


def _is_indexable(head: bytes) -> bool:
    from facepipe.pipeline.image import sniff_format

    return sniff_format(head) in ("JPEG", "PNG")


def _hash_image_file(path: str) -> tuple[str, os.stat_result, bool] | None:
    """``(sha256, stat, stable)`` of a JPEG/PNG file, or None when its content is something else.

    ``stable`` is False when the file changed while it was read."""
    with open(path, "rb") as fh:
        before = os.fstat(fh.fileno())
        head = fh.read(16)
        if not _is_indexable(head):
            return None
        h = hashlib.sha256(head)
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
        after = os.fstat(fh.fileno())
    stable = (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns)
    return h.hexdigest(), after, stable


# ----------------------------------------------------------------------------------- the index
class FaceIndex:
    """An incremental face index of one folder for one pipeline.

    ``FaceIndex.open(db_path, pipeline)`` finds (or plans) the index file; :meth:`refresh` brings
    it up to date with the folder; :attr:`records` / :attr:`embeddings` are the searchable faces
    (aligned: row ``i`` of ``embeddings`` belongs to ``records[i]``); :meth:`search` ranks them.
    Safe to share between threads; processes coordinate through a lock file.
    """

    def __init__(self, root: Path, pipeline: Pipeline, *, align: bool | None = None,
                 expand_percentage: float | None = None, index_dir: str | os.PathLike[str] | None = None,
                 chunk_files: int = 64, chunk_bytes: int = 256 * 2**20) -> None:
        if chunk_files < 1 or chunk_bytes < 1:
            raise ConfigError("chunk_files and chunk_bytes must be positive")
        self.root = root
        self.pipeline = pipeline
        self.align = pipeline.config.align if align is None else bool(align)
        self.expand_percentage = (pipeline.config.expand_percentage if expand_percentage is None
                                  else float(expand_percentage))
        if self.expand_percentage < 0:
            raise ConfigError(f"expand_percentage must be >= 0, got {self.expand_percentage}")
        self.chunk_files = chunk_files
        self.chunk_bytes = chunk_bytes
        self.contract = index_contract(pipeline, align=self.align, expand_percentage=self.expand_percentage)
        self._contract_json = dumps_contract(self.contract)
        digest = hashlib.sha256(self._contract_json.encode()).hexdigest()[:16]
        self.key = f"{_slug(pipeline.model_name)}-{_slug(pipeline.detector_name)}-{digest}"
        self.dim = _embedding_size(pipeline)
        self.index_dir = self._choose_dir(index_dir)
        self.path = self.index_dir / f"{self.key}.sqlite"
        self._flock = IndexLock(self.index_dir / f"{self.key}.lock")
        self._store: IndexStore | None = None
        self._snapshot: _Snapshot | None = None
        self._mutex = threading.RLock()
        self._pid = os.getpid()

    @classmethod
    def open(cls, db_path: str | os.PathLike[str], pipeline: Pipeline, **options: Any) -> "FaceIndex":
        """The index of the folder ``db_path`` for ``pipeline`` (nothing is built until used).

        Options: ``align``, ``expand_percentage`` (default: the pipeline's), ``index_dir`` (where
        the index lives; default ``<db_path>/.facepipe-index``), ``chunk_files`` (64) and
        ``chunk_bytes`` (256 MiB of decoded pixels) bounding one batch of a refresh.
        Raises :class:`PathNotFoundError` when ``db_path`` is not a folder.
        """
        return cls(_check_folder(db_path), pipeline, **options)

    def __enter__(self) -> "FaceIndex":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection (the index stays on disk)."""
        with self._mutex:
            if self._store is not None:
                self._store.close()
                self._store = None
            self._snapshot = None

    @property
    def exists(self) -> bool:
        """Whether the index file has been created."""
        return self.path.is_file()

    # --------------------------------------------------------------------------- location
    def _choose_dir(self, index_dir: str | os.PathLike[str] | None) -> Path:
        if index_dir is not None:
            return Path(os.fspath(index_dir)).expanduser()
        local = self.root / INDEX_DIR_NAME
        if _writable_dir(local):
            return local
        from facepipe.weights import facepipe_home

        where = hashlib.sha256(os.path.realpath(self.root).encode()).hexdigest()[:16]
        fallback = facepipe_home() / "indexes" / where
        log.warning("cannot write the index into %s; keeping it in %s instead", local, fallback)
        return fallback

    # --------------------------------------------------------------------------- store access
    def _open_store(self, *, create: bool) -> IndexStore:
        """The current store (reopened when another process replaced the file)."""
        if self._pid != os.getpid():  # a forked child must not use the parent's connection
            self._store, self._snapshot, self._pid = None, None, os.getpid()
        if self._store is not None and self._store.is_current():
            return self._store
        if self._store is not None:
            self._store.close()
            self._store = None
        self._store = IndexStore.open(self.path, self._contract_json, self.dim, create=create)
        return self._store

    def _discard(self, reason: BaseException) -> None:
        """Log, move the damaged file aside and forget it (caller holds the exclusive lock)."""
        if self._store is not None:
            self._store.close()
            self._store = None
        self._snapshot = None
        moved = quarantine(self.path)
        log.warning("the face index %s is damaged (%s); it is rebuilt from the photos%s", self.path, reason,
                    f" (the damaged file was kept as {moved})" if moved else "")

    # --------------------------------------------------------------------------- refresh
    def refresh(self, progress: ProgressArg = None) -> RefreshStats:
        """Bring the index up to date with the folder: embed new and changed files, drop removed
        ones.  ``progress``: None = decided by :func:`facepipe.progress.show_progress` (a bar on a
        terminal), True/False, or a callable ``(done, total)`` called after each chunk."""
        with self._mutex, self._flock.hold(exclusive=True):
            return self._refresh_locked(progress, rebuild_if=None)

    def _refresh_locked(self, progress: ProgressArg, rebuild_if: Any) -> RefreshStats:
        if rebuild_if is not None and self.path.exists() and _identity(self.path) == rebuild_if:
            self._discard(IndexCorruptError("damaged rows found while reading it"))
        for attempt in (1, 2):
            try:
                store = self._open_store(create=True)
                store.quick_check()
                return self._update(store, progress)
            except IndexCorruptError as exc:
                if attempt == 2:
                    raise
                self._discard(exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _update(self, store: IndexStore, progress: ProgressArg) -> RefreshStats:
        start = time.perf_counter()
        known = store.files()
        contents = store.contents()
        entries: dict[str, FileRow] = {}
        ignored = 0
        for rel, full, st in _walk(self.root, [self.index_dir]):
            old = known.get(rel)
            if (old is not None and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns
                    and st.st_mtime_ns < old.hashed_at_ns - _RACY_NS):
                entries[rel] = old
                continue
            try:
                hashed = _hash_image_file(full)
            except OSError as exc:
                log.warning("skipping %s: %s", full, exc.strerror or exc)
                continue
            if hashed is None:
                ignored += 1
                log.debug("ignoring %s: its content is not JPEG or PNG", full)
                continue
            sha, fst, stable = hashed
            hashed_at = time.time_ns() if stable else 0
            entries[rel] = FileRow(rel, fst.st_size, fst.st_mtime_ns, sha, hashed_at)

        added = sum(1 for rel in entries if rel not in known)
        removed = [rel for rel in known if rel not in entries]
        changed = sum(1 for rel, row in entries.items() if rel in known and known[rel].sha256 != row.sha256)
        unchanged = len(entries) - added - changed

        work: dict[str, _Work] = {}
        keep: list[FileRow] = []
        for rel, row in entries.items():
            if row.sha256 in contents:
                if known.get(rel) != row:
                    keep.append(row)
            else:
                item = work.setdefault(row.sha256, _Work(row.sha256, [], os.path.join(self.root, rel)))
                item.files.append(row)
        stale = [rel for rel in known if rel not in entries or rel in entries and entries[rel].sha256 not in contents]
        if stale or keep:
            with store.transaction():
                store.delete_files(stale)
                store.put_files(keep)
                store.drop_unreferenced()

        embedded, n_faces, errors = self._embed_all(store, list(work.values()), progress)
        stats = RefreshStats(added=added, removed=len(removed), changed=changed, unchanged=unchanged,
                             embedded=embedded, faces=n_faces, ignored=ignored, errors=errors,
                             seconds=time.perf_counter() - start)
        if added or removed or changed or errors:
            log.info("face index of %s: %d added, %d removed, %d changed, %d unchanged; %d embedded "
                     "(%d faces) in %.2f s", self.root, added, len(removed), changed, unchanged, embedded,
                     n_faces, stats.seconds)
        return stats

    def _embed_all(self, store: IndexStore, work: list[_Work], progress: ProgressArg) -> tuple[int, int, int]:
        """Run the work through the pipeline, chunk by chunk, committing each chunk.

        Two stages overlap: a worker thread reads, decodes and detects the next chunk while this
        thread embeds and stores the current one (OpenCV, dlib and the ML runtimes release the
        GIL), so at most two chunks are in memory at once.
        """
        if not work:
            return 0, 0, 0
        total = sum(len(w.files) for w in work)
        bar = Progress(total, "Indexing faces", unit="file", progress=progress)
        embedded = n_faces = errors = 0
        pending = iter(work)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facepipe-index")
        try:
            future = pool.submit(self._prepare, pending)
            while True:
                chunk = future.result()
                if chunk is None:
                    break
                future = pool.submit(self._prepare, pending)
                e, f, x = self._store_chunk(store, chunk)
                embedded, n_faces, errors = embedded + e, n_faces + f, errors + x
                bar.advance(sum(len(w.files) for w, _, _ in chunk.items))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
        return embedded, n_faces, errors

    def _prepare(self, pending: Iterator[_Work]) -> _Chunk | None:
        """Read and decode the next chunk of work (bounded in files and decoded bytes) and detect
        its faces; None when the work is done."""
        items: list[tuple[_Work, np.ndarray | None, str]] = []
        size = 0
        for item in pending:
            image, message = self._read(item)
            items.append((item, image, message))
            size += image.nbytes if image is not None else 0
            if len(items) >= self.chunk_files or size >= self.chunk_bytes:
                break
        if not items:
            return None
        decoded = [(item, image) for item, image, _ in items if image is not None]
        found = self._detect([image for _, image in decoded])
        return _Chunk(items, {item.sha256: faces for (item, _), faces in zip(decoded, found)})

    def _read(self, item: _Work) -> tuple[np.ndarray | None, str]:
        """Decode the content (checking it is still the hashed one); (None, why) when it cannot be."""
        from facepipe.pipeline.image import load_image

        rel = item.files[0].relpath
        try:
            with open(item.path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            return None, f"unreadable: {exc.strerror or exc}"
        if hashlib.sha256(data).hexdigest() != item.sha256:
            return None, "changed while being indexed"
        try:
            return load_image(data, name=rel).image, ""
        except ImageError as exc:
            log.warning("skipping %s: %s", os.path.join(self.root, rel), exc)
            return None, str(exc)[:500]

    def _detect(self, images: list[np.ndarray]) -> list[list[Face] | None]:
        """Faces of each image; an image whose detection fails is None (the others still count)."""
        options = {"align": self.align, "expand_percentage": self.expand_percentage, "on_no_face": "skip"}
        if not images:
            return []
        try:
            return [_unjudged(faces) for faces in self.pipeline.faces(images, **options)]
        except Exception:  # noqa: BLE001 - isolate the image that breaks the batch
            out: list[list[Face] | None] = []
            for image in images:
                try:
                    out.append(_unjudged(self.pipeline.faces([image], **options)[0]))
                except Exception as exc:  # noqa: BLE001
                    log.warning("face detection failed on an image (%s: %s); it is skipped",
                                type(exc).__name__, exc)
                    out.append(None)
            return out

    def _store_chunk(self, store: IndexStore, chunk: _Chunk) -> tuple[int, int, int]:
        """Embed the faces of a prepared chunk and store it in one transaction."""
        per_item = chunk.faces
        batch = chunk.items
        groups = [found or [] for found in per_item.values()]
        n_found = sum(len(g) for g in groups)
        per_group = self.pipeline.embed_per_image(groups) if n_found else [np.zeros((0, self.dim))] * len(groups)
        vectors_of = dict(zip(per_item, per_group))
        if any(v.ndim != 2 or v.shape[0] != len(g) or (len(g) and v.shape[1] != self.dim)
               for v, g in zip(per_group, groups)):
            shapes = sorted({v.shape for v in per_group})
            raise DimensionMismatchError(
                f"the recognizer returned embeddings of shapes {shapes} for {n_found} faces, "
                f"expected {self.dim} dimensions")
        if n_found and not all(np.isfinite(v).all() for v in per_group):
            from facepipe.pipeline.metrics import InvalidEmbeddingValuesError

            raise InvalidEmbeddingValuesError(
                f"{self.pipeline.model_name} returned NaN or infinite embeddings; nothing was stored "
                "(check the model's weights)")
        embedded = n_faces = errors = 0
        with store.transaction():
            for item, image, message in batch:
                if image is None and message == "changed while being indexed":
                    continue  # indexed by the next refresh, with its new content
                if image is None and message.startswith("unreadable"):
                    log.warning("skipping %s: %s", item.path, message)
                    continue
                faces = per_item.get(item.sha256) if image is not None else None
                if faces is None:
                    errors += 1
                    content = ContentRow(item.sha256, "error", 0, message or "face detection failed")
                    store.put_content(content)
                elif not faces:
                    store.put_content(ContentRow(item.sha256, "noface", 0, ""))
                else:
                    rows = [FaceRow(item.sha256, i, f.area.x, f.area.y, f.area.w, f.area.h, float(f.confidence))
                            for i, f in enumerate(faces)]
                    store.put_content(ContentRow(item.sha256, "ok", len(rows), ""), rows,
                                      vectors_of[item.sha256])
                    n_faces += len(rows)
                if image is not None:
                    embedded += 1
                store.put_files(item.files)
        return embedded, n_faces, errors

    # --------------------------------------------------------------------------- reading
    def _snap(self) -> _Snapshot:
        with self._mutex:
            for attempt in (1, 2):
                damaged: Any = None
                with self._flock.hold(exclusive=False):
                    try:
                        store = self._open_store(create=False)
                        key = (_identity(self.path), store.generation)
                        if self._snapshot is not None and self._snapshot.key == key:
                            return self._snapshot
                        self._snapshot = _load(store, key)
                        return self._snapshot
                    except FileNotFoundError:
                        damaged = "missing"
                    except IndexCorruptError as exc:
                        if attempt == 2:
                            raise
                        damaged = _identity(self.path)
                        log.warning("the face index %s cannot be read (%s)", self.path, exc)
                # No index yet, or a damaged one: build it (exclusive lock), then read again.
                with self._flock.hold(exclusive=True):
                    if damaged == "missing":
                        log.info("building the face index of %s", self.root)
                    self._refresh_locked(None, rebuild_if=None if damaged == "missing" else damaged)
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def records(self) -> list[FaceRecord]:
        """The searchable faces, by file path then face number (builds the index if absent)."""
        return self._snap().records

    @property
    def embeddings(self) -> np.ndarray:
        """float32 ``(len(records), dim)``, row ``i`` = ``records[i]``."""
        return self._snap().embeddings

    @property
    def n_files(self) -> int:
        """How many image files the index holds (with or without faces)."""
        return self._snap().n_files

    @property
    def unsearchable(self) -> dict[str, str]:
        """Indexed files that have no searchable face: relative path -> ``"noface"`` / ``"error"``."""
        return dict(self._snap().unsearchable)

    def distances(self, embeddings: Any) -> np.ndarray:
        """``(n_queries, len(records))`` distances with the pipeline's metric (not rounded)."""
        snap = self._snap()
        queries = np.asarray(embeddings, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise DimensionMismatchError(
                f"query embeddings have shape {queries.shape}, the index holds {self.dim}-d embeddings "
                f"of {self.pipeline.model_name}")
        if not snap.faces:
            return np.zeros((queries.shape[0], 0), dtype=np.float64)
        return np.asarray(self.pipeline.metric.pairwise(queries, snap.embeddings), dtype=np.float64)

    def search(self, embeddings: Any, *, k: int | None = None, max_distance: float | None = None) -> list[Hits]:
        """For each query embedding: the records closest first, at most ``k``, within ``max_distance``."""
        matrix = self.distances(embeddings)
        out = []
        for row in matrix:
            order = np.argsort(row, kind="stable")
            if max_distance is not None:
                order = order[row[order] <= max_distance]
            if k is not None:
                order = order[:k]
            out.append(Hits(order, row[order]))
        return out


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def _load(store: IndexStore, key: tuple[Any, ...]) -> _Snapshot:
    """Join files, contents and faces into searchable records (every row checked)."""
    files = store.files()
    contents = store.contents()
    face_rows, matrix = store.faces()
    by_content: dict[str, list[int]] = {}
    for i, face in enumerate(face_rows):
        by_content.setdefault(face.sha256, []).append(i)
    identities: list[str] = []
    take: list[int] = []
    unsearchable: dict[str, str] = {}
    for rel in sorted(files):
        sha = files[rel].sha256
        content = contents.get(sha)
        if content is None:
            raise IndexCorruptError(f"{store.path}: the content of {rel!r} is missing")
        positions = by_content.get(sha, ())
        if len(positions) != content.n_faces or (content.status == "ok") != bool(positions):
            raise IndexCorruptError(f"{store.path}: the faces of {rel!r} are incomplete")
        if not positions:
            unsearchable[rel] = content.status
        identities.extend([rel] * len(positions))
        take.extend(positions)
    embeddings = matrix[np.asarray(take, dtype=np.intp)] if take else np.zeros((0, store.dim), np.float32)
    return _Snapshot(key, identities, [face_rows[i] for i in take], embeddings, len(files), unsearchable)


# ----------------------------------------------------------------------------------- find
_CACHE_SIZE = 8
_cache_lock = threading.Lock()
# A few open indexes per pipeline; an entry goes away with its pipeline (weak key) or on pipeline.close().
_index_caches: "weakref.WeakKeyDictionary[Pipeline, OrderedDict[Any, FaceIndex]]" = weakref.WeakKeyDictionary()


def _close_all(cache: "OrderedDict[Any, FaceIndex]") -> None:
    for index in cache.values():
        index.close()


def _cached_index(pipeline: Pipeline, db_path: str | os.PathLike[str], index_dir: Any,
                  options: dict[str, Any]) -> FaceIndex:
    """The pipeline's open FaceIndex for this folder and these options (a few are kept per pipeline,
    so repeated queries reuse the loaded embeddings while the index's generation is unchanged)."""
    root = _check_folder(db_path)
    key = (os.path.realpath(root), None if index_dir is None else os.path.realpath(os.fspath(index_dir)),
           tuple(sorted(options.items())))
    with _cache_lock:
        cache = _index_caches.get(pipeline)
        if cache is None:
            cache = _index_caches[pipeline] = OrderedDict()
            pipeline.on_close(lambda: _close_all(_index_caches.pop(pipeline, {})))
        index = cache.get(key)
        if index is not None and index.root == root:
            cache.move_to_end(key)
            return index
        index = FaceIndex(root, pipeline, index_dir=index_dir, **options)
        cache[key] = index
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)[1].close()
        return index


def find(pipeline: Pipeline, img: Any, db_path: str | os.PathLike[str], *, threshold: float | None = None,
         k: int | None = None, similarity_search: bool = False, refresh: bool = True,
         progress: ProgressArg = None, index_dir: str | os.PathLike[str] | None = None,
         distance_fn: Callable[[np.ndarray, np.ndarray], Any] | None = None,
         **face_options: Any) -> list[FindResult]:
    """Search the folder ``db_path`` for the faces of ``img``: one :class:`FindResult` per query face.

    ``threshold``: the distance limit (default: the pipeline's, i.e. the model's pre-tuned value);
    rows farther than it are dropped unless ``similarity_search``.  Rows are sorted by distance;
    ``k`` keeps the closest ``k``.  ``refresh=False`` uses the index as it is (it is still built
    when absent).  ``face_options`` (``align``, ``expand_percentage``, ``max_faces``,
    ``on_no_face``) apply to the query; ``align`` and ``expand_percentage`` also select the index.
    ``confidence`` is decided with the threshold in use, as :meth:`Pipeline.verify` does.

    ``distance_fn`` replaces the pipeline's metric: it gets the query embeddings ``(M, D)`` and
    the folder's ``(N, D)`` (float64) and returns the ``(M, N)`` distances, used unrounded.  It
    needs an explicit ``threshold``, and its rows carry the confidence of a metric without a fitted
    model (51 / 49; 100 / 0 at distance 0).

    Raises :class:`PathNotFoundError` (no such folder), :class:`EmptyDatasourceError` (no
    JPEG/PNG photo in it), and the query's errors (e.g. :class:`FaceNotDetectedError`).
    """
    if k is not None and (isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1):
        raise ConfigError(f"k must be a positive integer or None, got {k!r}")
    if distance_fn is not None and threshold is None:
        raise ConfigError("a custom distance_fn has no pre-tuned threshold; pass threshold=")
    index_options: dict[str, Any] = {key: face_options[key] for key in ("align", "expand_percentage")
                                     if key in face_options}
    index = _cached_index(pipeline, db_path, index_dir, index_options)
    if refresh or not index.exists:
        index.refresh(progress=progress)
    snap = index._snap()
    if snap.n_files == 0:
        raise EmptyDatasourceError(
            f"No item found in {os.fspath(db_path)!r}: it holds no JPEG or PNG photo (sub-folders included)")
    faces = pipeline.faces([img], **face_options)[0]
    vectors = pipeline.embed_faces(faces)
    limit = pipeline.threshold(threshold)
    if distance_fn is not None:
        matrix = _custom_distances(distance_fn, vectors, snap.embeddings)
    else:
        matrix = index.distances(vectors) if len(faces) else np.zeros((0, len(snap.faces)))
        matrix = np.round(matrix, 6)
    results = []
    for face, row in zip(faces, matrix):
        order = np.argsort(row, kind="stable")  # records are sorted by path, so ties keep that order
        if not similarity_search:
            order = order[row[order] <= limit]
        if k is not None:
            order = order[:k]
        rows = []
        for i in order:
            rec, distance = snap.record(int(i)), float(row[i])
            rows.append({
                "identity": rec.path(db_path), "hash": rec.sha256,
                "target_x": rec.x, "target_y": rec.y, "target_w": rec.w, "target_h": rec.h,
                "source_x": face.area.x, "source_y": face.area.y, "source_w": face.area.w, "source_h": face.area.h,
                "threshold": limit, "distance": distance,
                "confidence": _confidence(pipeline, distance, distance <= limit, custom=distance_fn is not None),
            })
        results.append(FindResult(rows, face, limit))
    return results


def _custom_distances(distance_fn: Callable[[np.ndarray, np.ndarray], Any], queries: Any,
                      gallery: np.ndarray) -> np.ndarray:
    """The caller's ``(M, N)`` distance matrix, checked for shape."""
    q = np.asarray(queries, dtype=np.float64).reshape(-1, gallery.shape[1])
    if len(q) == 0 or len(gallery) == 0:
        return np.zeros((len(q), len(gallery)))
    matrix = np.asarray(distance_fn(q, np.asarray(gallery, dtype=np.float64)), dtype=np.float64)
    if matrix.shape != (len(q), len(gallery)):
        raise InvalidEmbeddingsShapeError(
            f"the custom distance returned shape {matrix.shape}; expected (queries, gallery) = "
            f"({len(q)}, {len(gallery)})")
    return matrix


def _confidence(pipeline: Pipeline, distance: float, verified: bool, *, custom: bool) -> float:
    if not custom:
        return pipeline.confidence(distance, verified)
    from facepipe.pipeline.decision import confidence

    return confidence(distance, None, verified)  # no fitted model for a caller's metric
