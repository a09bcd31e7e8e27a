"""pytest fixtures for plugin authors (loaded automatically through the ``pytest11`` entry point)."""

from __future__ import annotations

import numpy as np
import pytest

from facepipe.registry import PluginRegistry
from facepipe.testing import sample_images


@pytest.fixture
def facepipe_sample_images() -> list[np.ndarray]:
    """A few small BGR uint8 images of different shapes."""
    return sample_images()


@pytest.fixture
def facepipe_registry() -> PluginRegistry:
    """An empty registry: add your plugin module with ``register_module`` for hermetic tests."""
    return PluginRegistry(autoload=False)
