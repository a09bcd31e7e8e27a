"""Module-level convenience functions over a shared pipeline per configuration.

``facepipe.verify(a, b)`` uses the offline default pipeline; pass ``config=`` (anything
:meth:`Pipeline.from_config` accepts) to choose plugins.  The last :data:`PIPELINE_CACHE_SIZE`
pipelines are kept, one per configuration; they are cheap, because their models come from the
process-wide :mod:`facepipe.model_cache` (one instance per model and plugin options, whatever
the pipeline-level options).  An evicted pipeline is not closed (a caller may still hold it): it
gives its models back when it is garbage-collected, and a model no other pipeline uses is freed.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from facepipe.pipeline.config import PipelineConfig, parse_config
from facepipe.pipeline.orchestrator import Pipeline

#: how many pipelines (configurations) get_pipeline keeps, least recently used dropped first
PIPELINE_CACHE_SIZE = 16

_pipelines: OrderedDict[str, Pipeline] = OrderedDict()
_lock = threading.Lock()


def get_pipeline(config: Any = None) -> Pipeline:
    """The cached pipeline for ``config`` (built on first use; the least recently used of more
    than :data:`PIPELINE_CACHE_SIZE` is dropped)."""
    cfg: PipelineConfig = parse_config(config)
    key = json.dumps(cfg.model_dump(mode="json"), sort_keys=True)
    with _lock:
        pipeline = _pipelines.get(key)
        if pipeline is None:
            pipeline = _pipelines[key] = Pipeline(cfg)
            while len(_pipelines) > PIPELINE_CACHE_SIZE:
                _pipelines.popitem(last=False)
        else:
            _pipelines.move_to_end(key)
        return pipeline


def cached_pipelines() -> int:
    """How many pipelines :func:`get_pipeline` holds now."""
    with _lock:
        return len(_pipelines)


def clear_models() -> int:
    """Forget the cached pipelines and close every shared model (frees their memory; the next
    call loads what it needs again).  Returns how many models were closed."""
    from facepipe.model_cache import clear_models as close_all

    with _lock:
        _pipelines.clear()
    return close_all()


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
