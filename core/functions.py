"""Module-level convenience functions over a shared pipeline per configuration.

``facepipe.verify(a, b)`` uses the offline default pipeline; pass ``config=`` (anything
:meth:`Pipeline.from_config` accepts) to choose plugins.  Pipelines are cached per configuration,
so models are built once per process.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from facepipe.pipeline.config import PipelineConfig, parse_config
from facepipe.pipeline.orchestrator import Pipeline

_pipelines: dict[str, Pipeline] = {}
_lock = threading.Lock()


def get_pipeline(config: Any = None) -> Pipeline:
    """The cached pipeline for ``config`` (built on first use)."""
    cfg: PipelineConfig = parse_config(config)
    key = json.dumps(cfg.model_dump(mode="json"), sort_keys=True)
    with _lock:
        pipeline = _pipelines.get(key)
        if pipeline is None:
            pipeline = _pipelines[key] = Pipeline(cfg)
        return pipeline


def extract_faces(img: Any, *, config: Any = None, **options: Any) -> Any:
    """Faces of an image (or of each image of a batch); see :meth:`Pipeline.extract_faces`."""
    return get_pipeline(config).extract_faces(img, **options)


def represent(img: Any, *, config: Any = None, **options: Any) -> Any:
    """Embeddings of the faces of an image or batch; see :meth:`Pipeline.represent`."""
    return get_pipeline(config).represent(img, **options)


def verify(img1: Any, img2: Any, *, config: Any = None, **options: Any) -> Any:
    """Do two images (or embeddings) show the same person? See :meth:`Pipeline.verify`."""
    return get_pipeline(config).verify(img1, img2, **options)


def analyze(img: Any, actions: Any = None, *, config: Any = None, **options: Any) -> Any:
    """Attributes of every face; see :meth:`Pipeline.analyze`."""
    return get_pipeline(config).analyze(img, actions, **options)


def find(img: Any, db_path: Any, *, config: Any = None, **options: Any) -> Any:
    """Search a folder of photos for the faces of ``img``; see :func:`facepipe.gallery.find.find`."""
    from facepipe.gallery.find import find as find_in_folder

    return find_in_folder(get_pipeline(config), img, db_path, **options)


def build_model(kind: str, name: str, options: dict[str, Any] | None = None) -> Any:
    """Build one plugin (detector, recognizer, analyzer, metric) by name."""
    from facepipe.registry import default_registry

    return default_registry().create(kind, name, options)  # type: ignore[arg-type]
