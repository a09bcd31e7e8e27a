"""facepipe: face recognition and facial attribute analysis in which every model is a plugin.

``import facepipe`` is cheap: it imports no ML runtime.  Models load when a pipeline first
needs them.
"""

from __future__ import annotations

from typing import Any

from facepipe.errors import *  # noqa: F401,F403 - the typed errors are part of the public API
from facepipe.hookspecs import hookimpl
from facepipe.specs import (
    AnalyzerSpec,
    AntiSpooferSpec,
    DetectorSpec,
    MetricSpec,
    PackageFile,
    PluginSpec,
    RecognizerSpec,
    WeightFile,
)

__version__ = "0.1.0"

# Heavier public names are resolved on first access (PEP 562) so the import stays fast.
_LAZY = {
    "PluginRegistry": ("facepipe.registry", "PluginRegistry"),
    "default_registry": ("facepipe.registry", "default_registry"),
    "Pipeline": ("facepipe.pipeline.orchestrator", "Pipeline"),
    "PipelineConfig": ("facepipe.pipeline.config", "PipelineConfig"),
    "load_image": ("facepipe.pipeline.image", "load_image"),
    "WeightsManager": ("facepipe.weights", "WeightsManager"),
    "DeepFace": ("facepipe.apps.deepface", None),
    "extract_faces": ("facepipe.functions", "extract_faces"),
    "represent": ("facepipe.functions", "represent"),
    "verify": ("facepipe.functions", "verify"),
    "analyze": ("facepipe.functions", "analyze"),
    "find": ("facepipe.functions", "find"),
    "build_model": ("facepipe.functions", "build_model"),
    "clear_models": ("facepipe.functions", "clear_models"),
    "ModelCache": ("facepipe.model_cache", "ModelCache"),
    "Gallery": ("facepipe.gallery.gallery", "Gallery"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'facepipe' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(target[0])
    value = module if target[1] is None else getattr(module, target[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "hookimpl", "PluginRegistry", "default_registry", "PluginSpec", "DetectorSpec", "RecognizerSpec",
    "AnalyzerSpec", "AntiSpooferSpec", "MetricSpec", "WeightFile", "PackageFile", "__version__", *_LAZY,
]
