"""The pipeline layer: image input, detection → alignment → embedding → decision, and results.

It stands on the plugin kernel (``facepipe.registry``, ``facepipe.types``, ...) and never imports a
plugin.  ``Pipeline`` and ``PipelineConfig`` resolve on first access, so importing one submodule
(``facepipe.pipeline.config`` for ``facepipe config schema``) does not load the others.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Pipeline": "facepipe.pipeline.orchestrator",
    "VerifyMatrix": "facepipe.pipeline.orchestrator",
    "PipelineConfig": "facepipe.pipeline.config",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'facepipe.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = list(_LAZY)
