"""Builds an analyzer's registration record from what its class already states (config class,
weight file, the action it answers), so each plugin module only adds what is its own."""

from __future__ import annotations

from typing import Any

from facepipe.specs import AnalyzerSpec

#: the licence line of deepface's own Keras attribute models
DEEPFACE_LICENSE = "MIT (deepface); weights: deepface release, terms unknown"


def analyzer_spec(analyzer: type, *, name: str, description: str, license: str, **fields: Any) -> AnalyzerSpec:
    """The :class:`AnalyzerSpec` of ``analyzer`` (an Analyzer subclass with ``action``,
    ``config_class`` and ``weight_file``); ``fields`` add or override spec fields."""
    fields.setdefault("weights", (analyzer.weight_file,))
    fields.setdefault("actions", (analyzer.action,))
    return AnalyzerSpec(
        name=name,
        factory=f"{analyzer.__module__}:{analyzer.__qualname__}",
        config=analyzer.config_class,
        license=license,
        description=description,
        **fields,
    )


def deepface_analyzer_spec(analyzer: type, *, name: str, description: str, **fields: Any) -> AnalyzerSpec:
    """:func:`analyzer_spec` for one of deepface's Keras attribute models (alias ``deepface-<action>``)."""
    fields.setdefault("aliases", (f"deepface-{analyzer.action}",))
    fields.setdefault("requires", ("keras", "h5py", "cv2"))
    fields.setdefault("extra", "keras")
    fields.setdefault("license", DEEPFACE_LICENSE)
    return analyzer_spec(analyzer, name=name, description=description, **fields)
