"""pytest fixtures for plugin authors (loaded automatically through the ``pytest11`` entry point)."""

from __future__ import annotations

import numpy as np
import pytest

from facepipe.registry import PluginRegistry
from facepipe.testing import hermetic_registry, sample_images


@pytest.fixture
def facepipe_sample_images() -> list[np.ndarray]:
    """A few small BGR uint8 images of different shapes."""
    return sample_images()


@pytest.fixture
def facepipe_registry() -> PluginRegistry:
    """An empty registry: add your plugin module with ``register_module`` for hermetic tests."""
    return PluginRegistry(autoload=False)


@pytest.fixture
def facepipe_hermetic_registry() -> PluginRegistry:
    """A registry with facepipe's numpy-only test plugins (``blob`` detector, ``grid`` recognizer)
    and the built-in metrics: use with ``facepipe.testing.HERMETIC_CONFIG``."""
    return hermetic_registry()
