"""What the deepface facade, the REST service and the CLI do with a gallery: register the faces of
an image, search with the faces of an image, compare with one stored face.

The one place the apps meet :class:`facepipe.gallery.Gallery`; results are plain records the three
front ends turn into their own shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from facepipe.errors import ConfigError, StoreError
from facepipe.types import StoredFace


class FaceIdNotFoundError(StoreError):
    """No stored face has this id."""


@dataclass(frozen=True)
class Match:
    """A stored face near a query face."""

    face: StoredFace
    distance: float


@dataclass(frozen=True)
class QueryFace:
    """One face of the query image and its matches, nearest first."""

    facial_area: dict[str, Any]
    matches: list[Match]


def open_gallery(url: str, pipeline: Any) -> Any:
    """The gallery at ``url`` (a folder for the embedded store) for ``pipeline``'s embeddings."""
    from facepipe.gallery.gallery import Gallery

    if not isinstance(url, str) or not url.strip():
        raise ConfigError("a gallery needs a folder path or a store URL (postgresql://..., milvus://...)")
    return Gallery(url, metric=pipeline.metric_name, fingerprint=pipeline.fingerprint, registry=pipeline.registry)


def register(pipeline: Any, gallery: Any, image: np.ndarray, identity: str) -> int:
    """Add every face of ``image`` (decoded BGR) as ``identity``; returns how many were new."""
    from facepipe.errors import FaceNotDetectedError

    before = len(gallery)
    if not pipeline.register(image, identity, gallery):
        raise FaceNotDetectedError("no face was found in the image to register")
    return len(gallery) - before


def search(pipeline: Any, gallery: Any, image: np.ndarray, k: int | None = None, *,
           exact: bool = True) -> list[QueryFace]:
    """The nearest stored faces (up to ``k``; all when None) of every face of ``image``."""
    total = len(gallery)
    per_face = pipeline.search(image, gallery, k=max(min(k or total, total), 1), exact=exact)
    ids = sorted({hit.id for found in per_face for hit in found.hits})
    stored = dict(zip(ids, gallery.get(ids)))
    return [QueryFace(found.face.area.to_dict(),
                      [Match(stored[h.id], float(h.distance)) for h in found.hits if stored.get(h.id) is not None])
            for found in per_face]


def compare(pipeline: Any, gallery: Any, image: np.ndarray, stored_id: str) -> tuple[QueryFace, Match]:
    """The query face nearest to the stored face ``stored_id`` (FaceIdNotFoundError when unknown)."""
    (stored,) = gallery.get([stored_id])
    if stored is None:
        raise FaceIdNotFoundError(f"No embedding found in the database for identity_id={stored_id!r}")
    best: tuple[QueryFace, Match] | None = None
    for query in search(pipeline, gallery, image, None):
        for match in query.matches:
            if match.face.id == stored_id and (best is None or match.distance < best[1].distance):
                best = (query, match)
    if best is None:
        from facepipe.errors import FaceNotDetectedError

        raise FaceNotDetectedError("no face was found in the image to compare")
    return best


def delete(gallery: Any, ids: Sequence[str] = (), identity: str | None = None) -> int:
    """Remove faces by id and/or every face of ``identity``; returns how many existed."""
    targets = list(ids)
    if identity is not None:
        targets += _ids_of(gallery, identity)
    return int(gallery.delete(sorted(set(targets)))) if targets else 0


def new_identity() -> str:
    """deepface's name for a face registered without one: a random uuid."""
    import uuid

    return str(uuid.uuid4())


def build_index(gallery: Any) -> str:
    """Build the gallery's approximate index where its store builds one on request."""
    builder = getattr(gallery, "build_index", None)
    if callable(builder):
        builder()
        return "Index built successfully"
    return "Nothing to build: this store keeps its index up to date as faces are added"


def _ids_of(gallery: Any, identity: str) -> list[str]:
    """The ids of an identity's faces (every store lists them: :meth:`facepipe.types.Store.ids_of`)."""
    return list(gallery.ids_of(identity))
