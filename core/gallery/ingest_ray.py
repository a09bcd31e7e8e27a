"""The Ray side of :func:`facepipe.gallery.ingest.ingest`: Ray Data reads the photos, a pool of
actors (one :class:`facepipe.Pipeline` each, built once) detects and embeds them in batches, and
the rows stream back to the driver, which writes the store.

``address="local"`` starts a private cluster for the run, bound to 127.0.0.1 only (head, object
store, workers; no dashboard) and stopped at the end; any other address is handed to
``ray.init`` (``"auto"``, ``"ray://host:10001"``, ...).  Ray is imported only here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from facepipe.errors import ConfigError
from facepipe.gallery.ingest_work import FaceRow, Photo, embed_photos, group_by_photo, load_registry

#: face_index of a row that stands for a photo without a face (-1) or that could not be decoded (-2)
NO_FACE, FAILED = -1, -2
LOOPBACK = "127.0.0.1"


class _Embedder:
    """A Ray Data actor: builds its pipeline once, then embeds batches of photo bytes."""

    def __init__(self, config: dict[str, Any], registry: str | None) -> None:
        from facepipe.pipeline.orchestrator import Pipeline

        self.pipeline = Pipeline.from_config(config, registry=load_registry(registry))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        contents = [bytes(b) for b in batch["bytes"]]
        photos = [Photo(str(p), "", "") for p in batch["path"]]  # the driver knows identity and hash
        rows, failed = embed_photos(self.pipeline, photos, contents)
        bad = set(failed)
        rows += [FaceRow(p, FAILED) for p in photos if p.path in bad]
        size = self.pipeline.embedding_size
        return {
            "path": np.array([r.photo.path for r in rows], dtype=object),
            "face_index": np.array([r.face_index for r in rows], dtype=np.int64),
            "area": np.array([r.area for r in rows], dtype=np.int64).reshape(len(rows), 4),
            "confidence": np.array([r.confidence for r in rows], dtype=np.float64),
            "embedding": np.stack([r.embedding if r.embedding is not None else np.zeros(size, np.float32)
                                   for r in rows]).astype(np.float32) if rows else np.zeros((0, size), np.float32),
        }


def _loopback_only() -> None:
    """Keep a local cluster on 127.0.0.1: Ray binds every address (``*`` and the routable one)
    unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, which it reads when ``ray`` is first imported
    (its own processes inherit the variable)."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:  # ray was imported before: its constant is already read
        constants.ENABLE_RAY_CLUSTER = False


def start_ray(address: str, workers: int) -> bool:
    """Connect to Ray (``"local"``: start a loopback-only cluster of ``workers`` CPUs, no
    dashboard); returns whether this call started it (and so must stop it)."""
    if address == "local":
        _loopback_only()
    import ray

    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": "WARNING"}
    if address == "local":
        ray.init(num_cpus=workers, include_dashboard=False, _node_ip_address=LOOPBACK, **options)
    else:
        ray.init(address=address, **options)
    return True


def ray_batches(photos: Sequence[Photo], config: dict[str, Any], *, registry: str | None, address: str,
                batch: int, workers: int = 2, show_progress: bool = False
                ) -> Iterator[tuple[list[FaceRow], list[str]]]:
    """Embed ``photos`` on Ray; yields ``(rows, failed paths)`` of whole photos, about ``batch``
    photos at a time (every face of a photo in the same item, so the store gets them in one add)."""
    if workers < 1:
        raise ConfigError(f"the Ray actor pool needs at least one worker, got {workers}")
    if not photos:
        return
    started = start_ray(address, workers)
    import ray

    try:
        ray.data.DataContext.get_current().enable_progress_bars = show_progress
        by_path = {_key(p.path): p for p in photos}
        dataset = ray.data.read_binary_files([p.path for p in photos], include_paths=True,
                                             num_cpus=0, concurrency=1)  # I/O: the CPUs go to the actors
        embedded = dataset.map_batches(_Embedder, fn_constructor_kwargs={"config": config, "registry": registry},
                                       batch_size=batch, batch_format="numpy", num_cpus=1,
                                       compute=ray.data.ActorPoolStrategy(size=workers))
        pending: list[FaceRow] = []
        for columns in embedded.iter_batches(batch_size=batch, batch_format="numpy"):
            pending += _rows(columns, by_path)
            groups = list(group_by_photo(pending))
            if not groups:
                continue
            pending = groups.pop()  # the last photo may go on in the next batch: hold it back
            yield _split(groups)
        if pending:
            yield _split([pending])
    finally:
        if started:
            ray.shutdown()


def _key(path: str) -> str:
    """A path as Ray Data reports it and as the driver knows it (Ray drops the leading /)."""
    return os.path.normpath(os.path.abspath(path)).lstrip(os.sep)


def _rows(columns: dict[str, np.ndarray], by_path: dict[str, Photo]) -> list[FaceRow]:
    rows = []
    for path, index, area, confidence, vector in zip(columns["path"], columns["face_index"], columns["area"],
                                                    columns["confidence"], columns["embedding"]):
        photo = by_path[_key(str(path))]
        index = int(index)
        rows.append(FaceRow(photo, index, tuple(int(v) for v in area), float(confidence),  # type: ignore[arg-type]
                            np.asarray(vector, np.float32) if index >= 0 else None))
    return rows


def _split(groups: list[list[FaceRow]]) -> tuple[list[FaceRow], list[str]]:
    rows = [r for group in groups for r in group if r.face_index != FAILED]
    failed = [group[0].photo.path for group in groups if group[0].face_index == FAILED]
    return rows, failed


__all__ = ["LOOPBACK", "ray_batches", "start_ray"]
