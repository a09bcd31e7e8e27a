"""A conformance kit for plugin authors (and for facepipe's own plugins).

Use it from pytest::

    from facepipe.testing import check_detector, check_recognizer

    def test_my_detector_conforms(sample_images):
        check_detector(MyDetector(MyConfig()), sample_images)

Every check raises ``AssertionError`` with a message saying which rule was broken.  With facepipe
installed, pytest also offers the fixtures of :mod:`facepipe.pytest_plugin`:
``facepipe_sample_images`` and ``facepipe_registry`` (a hermetic, empty registry).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from facepipe.specs import PluginSpec
from facepipe.types import Analyzer, DetectedFace, Detector, Metric, PluginConfig, Recognizer


def sample_images(seed: int = 0) -> list[np.ndarray]:
    """Small BGR uint8 images of different shapes (noise, flat, tall, wide)."""
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (120, 160, 3), dtype=np.uint8),
        np.full((64, 64, 3), 127, dtype=np.uint8),
        rng.integers(0, 256, (200, 90, 3), dtype=np.uint8),
        rng.integers(0, 256, (90, 240, 3), dtype=np.uint8),
    ]


def check_config_round_trip(config: PluginConfig) -> None:
    """A config survives dump → validate, JSON included, and rejects unknown keys."""
    cls = type(config)
    assert cls.model_validate(config.model_dump()) == config, "config does not round-trip through a dict"
    assert cls.model_validate_json(config.model_dump_json()) == config, "config does not round-trip through JSON"
    try:
        cls.model_validate({**config.model_dump(), "__not_an_option__": 1})
    except ValueError:
        pass
    else:
        raise AssertionError(f"{cls.__name__} accepts unknown keys (use facepipe.types.PluginConfig as base)")
    cls.model_json_schema()


def check_spec(spec: PluginSpec) -> None:
    """A registration record is complete and lazy."""
    assert spec.name and spec.name == spec.name.strip(), "spec needs a non-blank name"
    assert ":" in spec.factory, f"factory {spec.factory!r} must be 'module:attribute'"
    assert issubclass(spec.config, PluginConfig), "config must subclass facepipe.types.PluginConfig"
    for wf in spec.weights:
        assert wf.urls or wf.package_files, f"weight file {wf.name} has neither URLs nor a package source"
        if wf.sha256 is not None:
            assert len(wf.sha256) == 64 and all(c in "0123456789abcdef" for c in wf.sha256), \
                f"{wf.name}: sha256 must be 64 lower-case hex digits"


def _check_face(face: DetectedFace, width: int, height: int, where: str) -> None:
    assert isinstance(face, DetectedFace), f"{where}: detect() must return DetectedFace objects"
    assert 0 <= face.confidence <= 1, f"{where}: confidence {face.confidence} not in [0, 1]"
    assert face.w >= 0 and face.h >= 0, f"{where}: negative box size"
    assert face.x >= 0 and face.y >= 0, f"{where}: box starts outside the image"
    assert face.x + face.w <= width + 1e-6 and face.y + face.h <= height + 1e-6, \
        f"{where}: box {face.x, face.y, face.w, face.h} leaves the {width}x{height} image"
    for name in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right"):
        point = getattr(face, name)
        if point is not None:
            assert len(point) == 2 and all(np.isfinite(point)), f"{where}: {name} must be a finite (x, y)"


def check_detector(detector: Detector, images: Sequence[np.ndarray] | None = None) -> None:
    """Batch interface, boxes inside the image, confidences in [0, 1], determinism, batch == singles."""
    images = list(images) if images is not None else sample_images()
    found = detector.detect(images)
    assert isinstance(found, list) and len(found) == len(images), "detect() must return one list per image"
    for index, (image, faces) in enumerate(zip(images, found)):
        assert isinstance(faces, list), f"image {index}: expected a list of faces"
        for k, face in enumerate(faces):
            _check_face(face, image.shape[1], image.shape[0], f"image {index} face {k}")
    again = detector.detect(images)
    assert _boxes(again) == _boxes(found), "detect() is not deterministic"
    singles = [detector.detect([img])[0] for img in images]
    assert _boxes(singles) == _boxes(found), "a batch call differs from one call per image"
    assert detector.detect([]) == [], "detect([]) must return []"
    check_config_round_trip(detector.config)


def _boxes(found: list[list[DetectedFace]]) -> list[list[tuple[int, int, int, int]]]:
    return [[(round(f.x), round(f.y), round(f.w), round(f.h)) for f in faces] for faces in found]


def check_recognizer(recognizer: Recognizer, crops: Sequence[np.ndarray] | None = None,
                     *, atol: float = 1e-4) -> None:
    """Embedding shape and dtype, finiteness, determinism, batch == singles."""
    crops = list(crops) if crops is not None else sample_images()
    assert recognizer.embedding_size > 0, "embedding_size must be set"
    assert len(recognizer.input_size) == 2 and min(recognizer.input_size) > 0, "input_size must be (h, w)"
    vectors = recognizer.embed(crops)
    assert vectors.shape == (len(crops), recognizer.embedding_size), \
        f"embed() returned {vectors.shape}, expected {(len(crops), recognizer.embedding_size)}"
    assert vectors.dtype == np.float32, "embeddings must be float32"
    assert np.all(np.isfinite(vectors)), "embeddings contain NaN or inf"
    np.testing.assert_allclose(recognizer.embed(crops), vectors, atol=atol, err_msg="embed() is not deterministic")
    single = np.concatenate([recognizer.embed([c]) for c in crops])
    np.testing.assert_allclose(single, vectors, atol=atol, rtol=1e-4, err_msg="batch differs from one-by-one")
    assert recognizer.embed([]).shape == (0, recognizer.embedding_size)
    check_config_round_trip(recognizer.config)


def check_analyzer(analyzer: Analyzer, crops: Sequence[np.ndarray] | None = None) -> None:
    """One dict per crop with plain Python values, determinism."""
    crops = list(crops) if crops is not None else sample_images()
    assert analyzer.action, "analyzer.action must name the action it answers"
    out = analyzer.predict(crops)
    assert isinstance(out, list) and len(out) == len(crops), "predict() must return one dict per crop"
    for item in out:
        assert isinstance(item, dict) and item, "each prediction must be a non-empty dict"
        _check_plain(item)
    assert analyzer.predict(crops) == out or _close(analyzer.predict(crops), out), "predict() is not deterministic"
    check_config_round_trip(analyzer.config)


def _check_plain(value: Any) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _check_plain(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_plain(v)
    else:
        assert value is None or type(value) in (str, int, float, bool), \
            f"results must hold plain Python values, got {type(value).__name__}"


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-4 * max(1.0, abs(a))
    return bool(a == b)


def check_metric(metric: Metric, dim: int = 16, seed: int = 0) -> None:
    """Shape, symmetry, zero on identical inputs, non-negativity."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(5, dim)).astype(np.float32)
    b = rng.normal(size=(7, dim)).astype(np.float32)
    d = metric.pairwise(a, b)
    assert d.shape == (5, 7), f"pairwise returned {d.shape}, expected (5, 7)"
    assert np.all(d >= -1e-9), "distances must be non-negative"
    np.testing.assert_allclose(metric.pairwise(b, a), d.T, atol=1e-6, err_msg="distance is not symmetric")
    np.testing.assert_allclose(np.diag(metric.pairwise(a, a)), 0, atol=1e-5, err_msg="d(x, x) must be 0")
