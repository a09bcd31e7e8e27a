"""Keras recognizers that differ only in ``normalization`` (or ``batch_size``) share one loaded
network: changing the input normalisation does not load a second copy of the weights."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

import numpy as np
import pytest

from facepipe import Pipeline
from facepipe.engines import keras_runner
from facepipe.engines.shared_networks import live_networks, shared_network
from facepipe.model_cache import ModelCache
from facepipe.registry import default_registry

pytest.importorskip("keras")


@pytest.fixture
def facenet(synthetic_weights, tmp_path: Path) -> Path:
    # A private copy: its network key is this test's alone, whatever other tests keep alive.
    copy = tmp_path / "facenet_weights.h5"
    shutil.copyfile(synthetic_weights("Facenet"), copy)
    return copy


def _count_loads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    loads: list[Path] = []
    load = keras_runner.KerasModelMixin.load_weights

    def counting(self, model, path):  # type: ignore[no-untyped-def]
        loads.append(path)
        return load(self, model, path)

    monkeypatch.setattr(keras_runner.KerasModelMixin, "load_weights", counting)
    return loads


def test_normalization_does_not_load_another_copy(facenet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads = _count_loads(monkeypatch)
    models = ModelCache()
    base = Pipeline({"recognizer": {"name": "Facenet", "weights_path": str(facenet)}}, models=models)
    other = Pipeline({"recognizer": {"name": "Facenet", "weights_path": str(facenet), "normalization": "Facenet",
                                     "batch_size": 8}, "metric": "euclidean"}, models=models)
    assert base.recognizer is not other.recognizer  # different options: different plugin instances ...
    assert base.recognizer.model is other.recognizer.model  # ... around one network
    assert len(loads) == 1
    # normalisation still applies per instance: the same crop gives other embeddings
    crop = np.random.default_rng(0).integers(0, 256, (160, 160, 3), dtype=np.uint8)
    a, b = base.recognizer.embed([crop]), other.recognizer.embed([crop])
    assert a.shape == b.shape == (1, 128) and not np.allclose(a, b)
    np.testing.assert_array_equal(a, Pipeline({"recognizer": {"name": "Facenet", "weights_path": str(facenet)},
                                               "align": False}, models=models).recognizer.embed([crop]))
    assert len(loads) == 1


def test_the_network_lives_while_an_instance_holds_it(facenet: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads = _count_loads(monkeypatch)
    registry = default_registry()
    first = registry.create("recognizer", "Facenet", {"weights_path": str(facenet)})
    second = registry.create("recognizer", "Facenet", {"weights_path": str(facenet), "normalization": "raw"})
    network = first.model
    assert second.model is network and len(loads) == 1
    first.close()
    assert second.model is network  # the other instance still holds it
    second.close()
    del network
    gc.collect()
    assert first.model is not None and len(loads) == 2  # freed with its last holder: loaded again
    first.close()


def test_shared_network_builds_once_per_key() -> None:
    class Net:
        pass

    made: list[Net] = []

    def make() -> Net:
        made.append(Net())
        return made[-1]

    before = live_networks()
    one = shared_network(("test", 1), make)
    assert shared_network(("test", 1), make) is one and len(made) == 1
    assert shared_network(("test", 2), make) is not one
    assert live_networks() == before + 2
