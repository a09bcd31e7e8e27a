"""Bulk registration: a folder of photos into a gallery store, in-process or on a Ray cluster.

``ingest(source, store, pipeline)`` walks ``source`` (JPEG and PNG files, sub-folders included),
names each photo's person (``identity_from="folder"``: the first sub-folder under ``source``, so
``source/alice/2019/a.jpg`` is ``alice``; photos directly in ``source`` and
``identity_from="filename"`` use the file name without its extension), detects and embeds every
face in batches and upserts them into the store in batches.

Idempotent and resumable, with no ledger: a face's id is :func:`facepipe.types.face_id` of (the
sha256 of the photo's decoded pixels, the face's index, the pipeline's fingerprint) - the same id
:meth:`facepipe.Pipeline.register` gives it - and all the faces of one photo go to the store in
the same ``add`` call (one transaction).  So before any work the store is asked
(``get``) for face 0 of every photo; a photo whose face 0 is there is complete and skipped.  A run
that was killed and started again only embeds what is missing, and never duplicates a row.
Photos in which no face was found hold no row and are looked at again by every run.

With ``ray=`` (an address, or ``"local"``) the detection and embedding run on Ray (see
:mod:`facepipe.gallery.ingest_ray`); the store is still written from this process.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from facepipe.errors import ConfigError, FacepipeError
from facepipe.progress import Progress, ProgressArg
from facepipe.gallery.ingest_work import FaceRow, Photo, _load_registry, embed_photos, load_registry
from facepipe.types import Store, StoredFace, face_id

log = logging.getLogger(__name__)

IdentityFrom = Literal["folder", "filename"]
#: how many ids one ``store.get`` call asks for while looking for finished photos
LOOKUP_CHUNK = 1000


@dataclass
class IngestReport:
    """What one run did.  ``skipped``: photos already in the store; ``no_face``: photos in which
    no face was found; ``failed``: photos that could not be read or decoded."""

    photos: int = 0
    skipped: int = 0
    embedded: int = 0
    faces_added: int = 0
    no_face: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def photos_per_second(self) -> float:
        """Photos embedded per second of the run (skipped ones not counted)."""
        return self.embedded / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"photos": self.photos, "skipped": self.skipped, "embedded": self.embedded,
                "faces_added": self.faces_added, "no_face": self.no_face, "failed": list(self.failed),
                "seconds": round(self.seconds, 3), "photos_per_second": round(self.photos_per_second, 2)}


# ------------------------------------------------------------------------------- the photos
def identity_of(path: str, source: str, identity_from: IdentityFrom) -> str:
    """The person a photo shows, by its place under ``source`` (see the module docstring)."""
    if identity_from not in ("folder", "filename"):
        raise ConfigError(f"identity_from must be 'folder' or 'filename', not {identity_from!r}")
    parts = Path(os.path.relpath(path, source)).parts
    if identity_from == "folder" and len(parts) > 1:
        return parts[0]
    return Path(parts[-1]).stem


def list_photos(source: str | os.PathLike[str], identity_from: IdentityFrom = "folder"
                ) -> tuple[list[Photo], list[str]]:
    """The JPEG/PNG photos under ``source`` (sorted, content sniffed), with identities and pixel
    hashes; photos that cannot be decoded are returned apart, as paths."""
    from facepipe.gallery.find import list_images

    root = os.fspath(source)
    photos, failed = [], []
    for path in list_images(root):
        digest = pixels_sha256(path)
        if digest is None:
            failed.append(path)
        else:
            photos.append(Photo(path, identity_of(path, root, identity_from), digest))
    return photos, failed


def pixels_sha256(path: str) -> str | None:
    """The content hash ``Pipeline.register`` uses (decoded pixels), or None when undecodable."""
    from facepipe.pipeline.image import load_image
    from facepipe.pipeline.orchestrator import _pixels_sha256

    try:
        return _pixels_sha256(load_image(path).image)
    except (FacepipeError, OSError) as exc:
        log.warning("skipping %s: %s", path, exc)
        return None


def pending_photos(store: Any, photos: Sequence[Photo], fingerprint: str) -> list[Photo]:
    """The photos whose face 0 the store does not hold (each content once)."""
    unique: dict[str, Photo] = {}
    for photo in photos:
        unique.setdefault(photo.sha256, photo)
    todo = list(unique.values())
    missing: list[Photo] = []
    for start in range(0, len(todo), LOOKUP_CHUNK):
        chunk = todo[start:start + LOOKUP_CHUNK]
        found = store.get([face_id(p.sha256, 0, fingerprint) for p in chunk])
        missing.extend(p for p, row in zip(chunk, found) if row is None)
    return missing


def fingerprint_of(pipeline: Any) -> str:
    """The pipeline's model fingerprint (:attr:`facepipe.Pipeline.fingerprint`)."""
    return str(pipeline.fingerprint)


# ------------------------------------------------------------------------------ embedding
def write_rows(store: Any, rows: Sequence[FaceRow], fingerprint: str, source: str) -> int:
    """Upsert the faces of ``rows`` (markers left out) in one ``store.add``; returns how many were new."""
    faces = [r for r in rows if r.face_index >= 0 and r.embedding is not None]
    if not faces:
        return 0
    records = [StoredFace(id=face_id(r.photo.sha256, r.face_index, fingerprint), identity=r.photo.identity,
                          fingerprint=fingerprint, image_sha256=r.photo.sha256, face_index=r.face_index,
                          facial_area=r.area,
                          meta={"path": os.path.relpath(r.photo.path, source), "confidence": r.confidence})
               for r in faces]
    return int(store.add(np.stack([r.embedding for r in faces]), records))


def _in_process(pipeline: Any, photos: Sequence[Photo], batch: int) -> Iterator[tuple[list[FaceRow], list[str]]]:
    for start in range(0, len(photos), batch):
        chunk = photos[start:start + batch]
        contents: list[bytes] = []
        readable: list[Photo] = []
        unread: list[str] = []
        for photo in chunk:
            try:
                contents.append(Path(photo.path).read_bytes())
                readable.append(photo)
            except OSError:
                unread.append(photo.path)
        rows, failed = embed_photos(pipeline, readable, contents) if readable else ([], [])
        yield rows, unread + failed


# ------------------------------------------------------------------------------ the run
def ingest(source: str | os.PathLike[str], store: Any, pipeline: Any = None, *,
           identity_from: IdentityFrom = "folder", batch: int = 32, ray: str | None = None,
           registry: Any = None, ray_workers: int = 2, progress: ProgressArg = None) -> IngestReport:
    """Register every face of the photos under ``source`` in ``store``; see the module docstring.

    ``store``: a :class:`facepipe.types.Store`, a :class:`facepipe.Gallery`, or a folder / store
    URL (opened as a Gallery with the pipeline's metric and fingerprint, closed at the end).

    ``pipeline``: a :class:`facepipe.Pipeline`, or a config (mapping / file) to build one from
    with ``registry``.  With ``ray``, the workers build their own pipeline from the config, so the
    ``registry`` must then be None (the installed plugins) or an import path
    ``"module:function"`` returning a registry.  ``ray_workers``: the actor pool's size.
    ``progress``: a bar on stderr (``facepipe.progress`` rules) or a ``(done, total)`` callback,
    counted in photos.
    """
    from facepipe.pipeline.orchestrator import Pipeline

    if batch < 1:
        raise ConfigError(f"batch must be >= 1, got {batch}")
    root = os.fspath(source)
    started = time.perf_counter()
    owned = not isinstance(pipeline, Pipeline)
    local_registry = _load_registry(registry) if isinstance(registry, str) else registry
    pipe = pipeline if not owned else Pipeline.from_config(pipeline, registry=local_registry)
    opened = None
    try:
        fingerprint = fingerprint_of(pipe)
        if isinstance(store, (str, os.PathLike)):
            from facepipe.gallery.gallery import Gallery

            store = opened = Gallery(os.fspath(store), metric=pipe.metric_name, fingerprint=fingerprint)
        store = store if isinstance(store, Store) else store.store  # a Gallery: its store plugin
        photos, unreadable = list_photos(root, identity_from)
        todo = pending_photos(store, photos, fingerprint)
        report = IngestReport(photos=len(photos) + len(unreadable), skipped=len(photos) - len(todo),
                              failed=unreadable)
        if ray is not None:
            from facepipe.gallery.ingest_ray import ray_batches

            if registry is not None and not isinstance(registry, str):
                raise ConfigError("with ray, registry must be None or an import path 'module:function'")
            batches: Iterable[tuple[list[FaceRow], list[str]]] = ray_batches(
                todo, pipeline_config(pipe), registry=registry, address=ray, batch=batch,
                workers=ray_workers, show_progress=False)
        else:
            batches = _in_process(pipe, todo, batch)
        with Progress(len(todo), "ingest", unit="photo", progress=progress) as bar:
            for rows, failed in batches:
                report.faces_added += write_rows(store, rows, fingerprint, root)
                done = {r.photo.sha256 for r in rows}
                report.embedded += len(done)
                report.no_face += sum(1 for r in rows if r.face_index < 0)
                report.failed += failed
                bar.advance(len(done) + len(failed))
    finally:
        if opened is not None:
            opened.close()
        if owned:
            pipe.close()
    report.seconds = time.perf_counter() - started
    return report


def pipeline_config(pipeline: Any) -> dict[str, Any]:
    """The pipeline's config as plain data, for workers that build their own pipeline."""
    return pipeline.config.model_dump(mode="json", exclude_unset=True)


__all__ = ["FaceRow", "IngestReport", "Photo", "embed_photos", "fingerprint_of", "identity_of", "ingest",
           "list_photos", "load_registry", "pending_photos", "pipeline_config", "pixels_sha256", "write_rows"]
