"""Pipelines share their models: pipeline-level options never rebuild the recognizer, closing one
pipeline never closes what another uses, and facepipe.functions keeps a bounded set of pipelines."""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
import pytest

from facepipe import Pipeline
from facepipe.model_cache import ModelCache
from facepipe.testing import HERMETIC_CONFIG, hermetic_registry
from tests.helpers.synthetic_faces import photo

#: every pipeline-level option changed at once (the detector too: blob with other options)
OTHER_PIPELINE_OPTIONS = {"align": False, "expand_percentage": 20, "metric": "euclidean_l2", "threshold": 0.3,
                          "on_no_face": "whole_image", "max_faces": 1, "batch_size": 4,
                          "detector": {"name": "blob", "min_side": 12}}


@pytest.fixture
def models() -> ModelCache:
    return ModelCache()


def test_pipeline_level_options_share_the_recognizer(models: ModelCache) -> None:
    registry = hermetic_registry()
    a = Pipeline({**HERMETIC_CONFIG}, registry=registry, models=models)
    b = Pipeline({**HERMETIC_CONFIG, **OTHER_PIPELINE_OPTIONS}, registry=registry, models=models)
    assert a.recognizer is b.recognizer
    assert a.detector is not b.detector  # other detector options: another detector instance
    assert a.metric is not b.metric
    assert models.loaded().count(("recognizer", "grid", 2)) == 1
    # sharing changes no result
    assert b.verify(photo(1, 0), photo(1, 2)).distance == pytest.approx(
        Pipeline({**HERMETIC_CONFIG, **OTHER_PIPELINE_OPTIONS}, registry=registry).verify(
            photo(1, 0), photo(1, 2)).distance)


def test_closing_one_pipeline_keeps_the_shared_model_for_the_other(models: ModelCache,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    registry = hermetic_registry()
    a = Pipeline(HERMETIC_CONFIG, registry=registry, models=models)
    b = Pipeline({**HERMETIC_CONFIG, "align": False}, registry=registry, models=models)
    shared = a.recognizer
    assert b.recognizer is shared
    closed: list[Any] = []
    monkeypatch.setattr(shared, "close", lambda: closed.append(shared))
    a.close()
    assert closed == [] and ("recognizer", "grid", 1) in models.loaded()
    assert b.verify(photo(1, 0), photo(1, 1)).verified
    b.close()
    assert closed == [shared] and models.loaded() == []
    assert a.recognizer is not shared  # a closed pipeline acquires afresh on its next call


def test_a_dropped_pipeline_gives_its_models_back(models: ModelCache) -> None:
    registry = hermetic_registry()
    keep = Pipeline(HERMETIC_CONFIG, registry=registry, models=models)
    drop = Pipeline({**HERMETIC_CONFIG, "expand_percentage": 10}, registry=registry, models=models)
    assert keep.recognizer is drop.recognizer
    del drop
    gc.collect()
    assert models.loaded() == [("recognizer", "grid", 1)]


def test_clear_models_makes_pipelines_rebuild(models: ModelCache) -> None:
    registry = hermetic_registry()
    pipeline = Pipeline(HERMETIC_CONFIG, registry=registry, models=models)
    before = pipeline.recognizer
    assert models.clear() == 1
    after = pipeline.recognizer
    assert after is not before and models.loaded() == [("recognizer", "grid", 1)]
    assert pipeline.verify(photo(1, 0), photo(1, 2)).verified


def test_get_pipeline_keeps_a_bounded_lru(monkeypatch: pytest.MonkeyPatch) -> None:
    from facepipe import functions

    monkeypatch.setattr(functions, "_pipelines", type(functions._pipelines)())
    monkeypatch.setattr(functions, "PIPELINE_CACHE_SIZE", 3)
    configs = [{"expand_percentage": p} for p in range(5)]
    first = functions.get_pipeline(configs[0])
    for config in configs[1:3]:
        functions.get_pipeline(config)
    assert functions.get_pipeline(configs[0]) is first  # used again: now the most recent
    for config in configs[3:]:
        functions.get_pipeline(config)
    assert functions.cached_pipelines() == 3
    assert functions.get_pipeline(configs[0]) is first  # survived: configs 1 and 2 were dropped
    assert functions.get_pipeline(configs[1]) is not None and functions.cached_pipelines() == 3


def test_embeddings_are_unchanged_by_sharing(models: ModelCache) -> None:
    registry = hermetic_registry()
    private = Pipeline(HERMETIC_CONFIG, registry=registry, models=ModelCache())
    shared = [Pipeline({**HERMETIC_CONFIG, "metric": m}, registry=registry, models=models)
              for m in ("cosine", "euclidean", "angular")]
    face = photo(3, 1)
    expected = private.represent(face)[0].embedding
    for pipeline in shared:
        np.testing.assert_array_equal(pipeline.represent(face)[0].embedding, expected)
    assert shared[0].recognizer is shared[2].recognizer
