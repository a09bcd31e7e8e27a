"""``Gallery``: one object over any store plugin — a folder, PostgreSQL (pgvector), Milvus, ...

``Gallery("faces/")`` opens the registry's local store (the embedded SQLite one);
``Gallery("postgresql://user@host/db")`` or ``Gallery("milvus://host:19530")`` open the store
whose :class:`~facepipe.specs.StoreSpec` lists the URL's scheme.  Store options (``metric=``,
``fingerprint=`` and the store's own) go to the store's config, validated like any plugin's.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from facepipe.errors import InvalidEmbeddingsShapeError, StoreURLError
from facepipe.registry import PluginRegistry, default_registry
from facepipe.specs import StoreSpec
from facepipe.types import Store, StoredFace, face_id

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


@dataclass(frozen=True)
class Hit:
    """One search result: a stored face, its distance to the query, who it is.

    ``verified`` is set by :meth:`facepipe.Pipeline.search` (distance within the pipeline's
    threshold); a plain :meth:`Gallery.search` leaves it None.
    """

    id: str
    distance: float
    identity: str
    verified: bool | None = None


def store_spec_for(location: str, registry: PluginRegistry) -> StoreSpec:
    """The store spec that opens ``location``: by URL scheme, or the local store for a path."""
    specs: list[StoreSpec] = []
    for name in registry.names("store"):
        spec = registry.get("store", name)
        if isinstance(spec, StoreSpec):
            specs.append(spec)
    match = _SCHEME.match(location)
    if match is None:  # a plain folder path (Windows drive letters have no "://")
        local = [s for s in specs if s.local]
        if not local:
            raise StoreURLError(f"no local store is installed to open the folder {location!r}; installed stores: "
                                f"{', '.join(s.name for s in specs) or 'none'}")
        return local[0]
    scheme = match.group(1).lower()
    for spec in specs:
        if scheme in (s.lower() for s in spec.schemes):
            return spec
    known = sorted({s for spec in specs for s in spec.schemes})
    raise StoreURLError(
        f"no installed store opens {scheme}:// URLs ({location!r}); installed schemes: "
        f"{', '.join(known) or 'none'}, or a folder path for the embedded store "
        "(pgvector: pip install 'facepipe[pgvector]', Milvus: pip install 'facepipe[milvus]')")


class Gallery:
    """A searchable set of face embeddings kept by a store plugin (see the module docstring).

    ``fingerprint`` names the model and preprocessing the embeddings come from
    (:attr:`facepipe.Pipeline.fingerprint`); the store refuses embeddings of another one.
    """

    def __init__(self, location: str | Any, *, metric: str = "cosine", fingerprint: str | None = None,
                 registry: PluginRegistry | None = None, **options: Any) -> None:
        self.location = str(location)
        self.registry = registry if registry is not None else default_registry()
        self.spec = store_spec_for(self.location, self.registry)
        config = self.registry.validate_config(
            "store", self.spec.name, {"url": self.location, "metric": metric, "fingerprint": fingerprint, **options},
            path=f"store {self.spec.name}")
        self.store: Store = self.registry.create("store", self.spec.name, config)

    # ------------------------------------------------------------------------------ writes
    def add(self, embeddings: Any, *, ids: Sequence[str] | None = None, identities: Sequence[str] | None = None,
            meta: Sequence[Mapping[str, Any]] | None = None, faces: Sequence[StoredFace] | None = None,
            fingerprint: str | None = None) -> int:
        """Add (upsert) embeddings; returns how many were new.

        Either ``faces`` (full :class:`StoredFace` records) or per-row ``ids`` / ``identities`` /
        ``meta``.  Without ``ids``, an id is derived from the vector's bytes, so adding the same
        vectors twice adds nothing.  Identity defaults to ``meta[i]["identity"]``, else the id.
        """
        vectors = _rows(embeddings)
        if faces is None:
            faces = self._faces(vectors, ids, identities, meta, fingerprint)
        if len(faces) != len(vectors):
            raise InvalidEmbeddingsShapeError(f"{len(vectors)} embeddings for {len(faces)} faces; give one per face")
        return self.store.add(vectors, list(faces))

    def _faces(self, vectors: np.ndarray, ids: Sequence[str] | None, identities: Sequence[str] | None,
               meta: Sequence[Mapping[str, Any]] | None, fingerprint: str | None) -> list[StoredFace]:
        n = len(vectors)
        for name, values in (("ids", ids), ("identities", identities), ("meta", meta)):
            if values is not None and len(values) != n:
                raise InvalidEmbeddingsShapeError(f"{len(values)} {name} for {n} embeddings; give one per embedding")
        fp = fingerprint or self.store.fingerprint() or ""
        faces = []
        for i in range(n):
            extra = dict(meta[i]) if meta is not None else {}
            digest = hashlib.sha256(vectors[i].tobytes()).hexdigest()
            fid = str(ids[i]) if ids is not None else face_id(digest, 0, fp)
            identity = identities[i] if identities is not None else str(extra.get("identity", fid))
            faces.append(StoredFace(id=fid, identity=str(identity), fingerprint=fp, meta=extra))
        return faces

    def delete(self, ids: Sequence[str] | str) -> int:
        """Remove faces by id; returns how many existed."""
        return self.store.delete([ids] if isinstance(ids, str) else list(ids))

    # ------------------------------------------------------------------------------ reads
    def search(self, queries: Any, k: int = 10, *, exact: bool = True) -> list[list[Hit]]:
        """The ``k`` nearest faces of each query (a vector or an (m, d) array), nearest first."""
        q = _rows(queries)
        found = self.store.search(q, k=k, exact=exact)
        wanted = sorted({hit_id for row in found for hit_id, _ in row})
        who = {face.id: face.identity for face in self.store.get(wanted) if face is not None}
        return [[Hit(hit_id, float(d), who.get(hit_id, "")) for hit_id, d in row] for row in found]

    def get(self, ids: Sequence[str]) -> list[StoredFace | None]:
        return self.store.get(list(ids))

    def identities(self) -> list[str]:
        return self.store.identities()

    def ids_of(self, identity: str) -> list[str]:
        """The ids of every face stored under ``identity``, sorted (``[]`` for an unknown one)."""
        return self.store.ids_of(identity)

    @property
    def metric(self) -> str:
        return str(self.store.config.metric)  # type: ignore[attr-defined]

    def fingerprint(self) -> str | None:
        return self.store.fingerprint()

    def __len__(self) -> int:
        return self.store.count()

    def __repr__(self) -> str:
        return f"Gallery({self.location!r}, store={self.spec.name!r})"

    # ------------------------------------------------------------------------------ lifetime
    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _rows(x: Any) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidEmbeddingsShapeError(
            f"embeddings must be numbers in a vector or an (n, d) array ({exc})") from None
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InvalidEmbeddingsShapeError(f"embeddings must be a vector or an (n, d) array, got shape {arr.shape}")
    return arr
