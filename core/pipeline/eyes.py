"""Finding the eye locator: the function that finds the eyes in a face box for detectors that
give none, so the face can still be aligned.

A detector plugin offers one by declaring ``DetectorSpec(eye_locator="module:function")``; the
pipeline takes the first installed one (detectors sorted by name), so the core names no plugin.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Callable, Optional, Tuple

import numpy as np

from facepipe.errors import PluginConflictError

log = logging.getLogger("facepipe.pipeline")

Point = Optional[Tuple[int, int]]
#: ``locate(image, (x, y, w, h)) -> (left_eye, right_eye)``; an eye not found is None
EyeLocator = Callable[[np.ndarray, Tuple[int, int, int, int]], Tuple[Point, Point]]


def find_eye_locator(registry: Any) -> EyeLocator | None:
    """The first eye locator a usable detector plugin declares, or None when none is installed."""
    for name in registry.names("detector"):
        try:
            spec = registry.get("detector", name)
        except PluginConflictError:
            continue
        target = getattr(spec, "eye_locator", None)
        if not target or registry.status(spec) != "ok":
            continue
        module_name, _, attr = target.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:  # a broken plugin must not stop detection
            log.warning("eye locator %s of the detector %s is unusable: %s", target, spec.name, exc)
    return None
