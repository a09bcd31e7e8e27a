"""The work of one ingest batch, shared by the in-process run and the Ray actors: photos, the
rows of their embedded faces, and detecting + embedding a batch (see
:mod:`facepipe.gallery.ingest`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facepipe.errors import ConfigError, FacepipeError


@dataclass(frozen=True)
class Photo:
    """One photo to register: where it is, whose it is, and the sha256 of its decoded pixels."""

    path: str
    identity: str
    sha256: str


@dataclass(frozen=True)
class FaceRow:
    """One embedded face on its way to the store (``face_index`` -1: a photo without a face)."""

    photo: Photo
    face_index: int
    area: tuple[int, int, int, int] = (0, 0, 0, 0)
    confidence: float = 0.0
    embedding: np.ndarray | None = None


def embed_photos(pipeline: Any, photos: Sequence[Photo], contents: Sequence[bytes]
                 ) -> tuple[list[FaceRow], list[str]]:
    """Detect and embed the faces of a batch of photos (their bytes): the rows, one marker row
    (``face_index`` -1) per photo without a face, and the paths that could not be decoded."""
    try:
        per_image = pipeline.faces(list(contents), on_no_face="skip")
    except FacepipeError:
        if len(photos) == 1:
            return [], [photos[0].path]
        rows: list[FaceRow] = []
        failed: list[str] = []
        for photo, content in zip(photos, contents):  # find the bad photo, keep the others
            more, bad = embed_photos(pipeline, [photo], [content])
            rows += more
            failed += bad
        return rows, failed
    embeddings = pipeline.embed_per_image(per_image)
    rows = []
    for photo, faces, vectors in zip(photos, per_image, embeddings):
        if not faces:
            rows.append(FaceRow(photo, -1))
        for index, (face, vector) in enumerate(zip(faces, vectors)):
            area = (int(face.area.x), int(face.area.y), int(face.area.w), int(face.area.h))
            rows.append(FaceRow(photo, index, area, float(face.confidence), np.asarray(vector, np.float32)))
    return rows, []


def _load_registry(path: str) -> Any:
    """Call ``"module:function"`` and return the registry it builds."""
    import importlib

    module, _, name = path.partition(":")
    if not module or not name:
        raise ConfigError(f"a registry import path looks like 'module:function', not {path!r}")
    return getattr(importlib.import_module(module), name)()


def load_registry(path: str | None) -> Any:
    """The registry named by an import path (None: the installed plugins)."""
    return _load_registry(path) if path else None


def group_by_photo(rows: Iterable[FaceRow]) -> Iterator[list[FaceRow]]:
    """Consecutive rows of the same photo, together."""
    current: list[FaceRow] = []
    for row in rows:
        if current and row.photo.sha256 != current[0].photo.sha256:
            yield current
            current = []
        current.append(row)
    if current:
        yield current


__all__ = ["FaceRow", "Photo", "embed_photos", "group_by_photo", "load_registry"]
