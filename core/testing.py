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

from importlib import metadata
from typing import Any, Sequence

import numpy as np

from pydantic import Field

from facepipe.registry import ENTRY_POINT_GROUP, PluginRegistry
from facepipe.specs import DetectorSpec, PluginSpec, RecognizerSpec
from facepipe.types import Analyzer, AntiSpoofer, DetectedFace, Detector, Metric, PluginConfig, Recognizer


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


def check_antispoofer(spoofer: AntiSpoofer, image: np.ndarray | None = None,
                      boxes: Sequence[tuple[int, int, int, int]] | None = None, *, atol: float = 1e-4) -> None:
    """One plain ``(is_real, score in [0, 1])`` per box, determinism, all boxes == one call per box."""
    image = image if image is not None else sample_images()[0]
    height, width = image.shape[:2]
    boxes = list(boxes) if boxes is not None else [
        (width // 4, height // 4, width // 2, height // 2), (0, 0, width // 3, height // 3),
        (width - width // 3, height - height // 3, width // 3, height // 3)]
    out = spoofer.check(image, boxes)
    assert isinstance(out, list) and len(out) == len(boxes), "check() must return one (is_real, score) per box"
    for is_real, score in out:
        assert type(is_real) is bool and type(score) is float, "check() must return plain (bool, float) pairs"
        assert 0.0 <= score <= 1.0, f"score {score} not in [0, 1]"
    singles = [spoofer.check(image, [box])[0] for box in boxes]
    for (real_a, score_a), (real_b, score_b) in zip(out, singles):
        assert real_a == real_b and abs(score_a - score_b) <= atol, "all boxes at once differ from one by one"
    assert spoofer.check(image, []) == [], "check(image, []) must return []"
    check_config_round_trip(spoofer.config)


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


# ------------------------------------------------------------------------------------------------
# Hermetic plugins: a detector and a recognizer that need nothing but numpy, for tests that must
# run anywhere (no dlib, no OpenCV models, no photos, no weights).  They understand only the
# synthetic "faces" drawn by :func:`synthetic_face_image`: bright squares on a dark background,
# each filled with a coarse grid of grey levels that encodes an identity.

#: grey level above which a pixel belongs to a face (backgrounds stay below 64, faces above 128)
_FACE_LEVEL = 96
#: cells per side of the identity pattern, and of the recognizer's embedding grid
_PATTERN_CELLS = 8
#: where the detector puts the eyes, as fractions of the box (level, so alignment rotates nothing)
_EYE_Y, _LEFT_EYE_X, _RIGHT_EYE_X = 0.35, 0.7, 0.3


def identity_pattern(identity: int) -> np.ndarray:
    """The ``8 x 8`` grid of grey levels (uint8, 128..255) that stands for one synthetic person."""
    rng = np.random.default_rng(10_000 + identity)
    return rng.integers(128, 256, (_PATTERN_CELLS, _PATTERN_CELLS), dtype=np.uint8)


def synthetic_face_image(faces: Sequence[tuple[int, int, int, int]] = ((0, 40, 30, 96),),
                         size: tuple[int, int] = (160, 200), *, noise: int = 0, seed: int = 0) -> np.ndarray:
    """A BGR uint8 image of ``size`` (h, w) holding synthetic faces.

    ``faces`` lists ``(identity, x, y, side)``: a square of ``side`` pixels at ``(x, y)`` painted with
    :func:`identity_pattern`.  ``noise`` adds up to ``±noise`` grey levels (a "different photo" of the
    same people).  The result is deterministic for the same arguments.
    """
    height, width = size
    rng = np.random.default_rng(seed)
    gray = rng.integers(0, 40, (height, width)).astype(np.int16)  # dark, slightly textured background
    for identity, x, y, side in faces:
        if x < 0 or y < 0 or x + side > width or y + side > height:
            raise ValueError(f"face {identity} at {(x, y)} with side {side} leaves the {width}x{height} image")
        cells = np.arange(side) * _PATTERN_CELLS // side  # nearest-neighbour upscaling of the grid
        gray[y:y + side, x:x + side] = identity_pattern(identity)[np.ix_(cells, cells)]
    if noise:
        gray += rng.integers(-noise, noise + 1, gray.shape).astype(np.int16)
    return np.repeat(np.clip(gray, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


class BlobDetectorConfig(PluginConfig):
    """Options of :class:`BlobDetector`."""

    min_side: int = Field(8, ge=1, description="blobs narrower or shorter than this (pixels) are ignored")


class BlobDetector(Detector):
    """Finds bright blobs on a dark background by thresholding (numpy only, deterministic).

    Each connected bright region (4-neighbourhood) becomes one face, with eyes at fixed places of
    its box and confidence 1.0.  Faces are sorted top-to-bottom, then left-to-right.
    """

    config_class = BlobDetectorConfig
    provides_eyes = True

    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> list[DetectedFace]:
        gray = image.mean(axis=2) if image.ndim == 3 else image.astype(np.float64)
        faces = []
        for y0, x0, y1, x1 in _bright_regions(gray > _FACE_LEVEL):
            w, h = x1 - x0, y1 - y0
            if min(w, h) < self.config.min_side:  # type: ignore[attr-defined]
                continue
            faces.append(DetectedFace(
                x=x0, y=y0, w=w, h=h, confidence=1.0,
                left_eye=(x0 + _LEFT_EYE_X * w, y0 + _EYE_Y * h),
                right_eye=(x0 + _RIGHT_EYE_X * w, y0 + _EYE_Y * h),
            ))
        return faces


def _bright_regions(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes ``(y0, x0, y1, x1)`` (end exclusive) of the 4-connected regions of ``mask``."""
    seen = np.zeros_like(mask, dtype=bool)
    boxes = []
    height, width = mask.shape
    for start_y, start_x in zip(*np.nonzero(mask)):
        if seen[start_y, start_x]:
            continue
        seen[start_y, start_x] = True
        stack = [(int(start_y), int(start_x))]
        y0, x0, y1, x1 = height, width, 0, 0
        while stack:
            y, x = stack.pop()
            y0, x0, y1, x1 = min(y0, y), min(x0, x), max(y1, y + 1), max(x1, x + 1)
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        boxes.append((y0, x0, y1, x1))
    return sorted(boxes)


class GridRecognizerConfig(PluginConfig):
    """:class:`GridRecognizer` has no options."""


class GridRecognizer(Recognizer):
    """Embeds a crop as its ``8 x 8`` grid of mean grey levels, centred (numpy only).

    Two crops of the same synthetic identity give (nearly) the same vector, different identities
    nearly orthogonal ones, so the thresholds below separate them with a wide margin.
    """

    config_class = GridRecognizerConfig
    input_size = (_PATTERN_CELLS, _PATTERN_CELLS)
    embedding_size = _PATTERN_CELLS * _PATTERN_CELLS
    thresholds = {"cosine": 0.3, "euclidean": 60.0, "euclidean_l2": 0.77, "angular": 0.25}

    def preprocess(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        # Our own resize: the default one needs OpenCV, and these tests must not.
        return np.stack([_cell_means(face) for face in faces]).astype(np.float32)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        flat = batch.reshape(len(batch), -1)
        return (flat - flat.mean(axis=1, keepdims=True)).astype(np.float32)


def _cell_means(face: np.ndarray) -> np.ndarray:
    gray = face.mean(axis=2) if face.ndim == 3 else face.astype(np.float64)
    rows = np.linspace(0, gray.shape[0], _PATTERN_CELLS + 1).round().astype(int)
    cols = np.linspace(0, gray.shape[1], _PATTERN_CELLS + 1).round().astype(int)
    grid = np.zeros((_PATTERN_CELLS, _PATTERN_CELLS))
    for i in range(_PATTERN_CELLS):
        for j in range(_PATTERN_CELLS):
            cell = gray[rows[i]:max(rows[i + 1], rows[i] + 1), cols[j]:max(cols[j + 1], cols[j] + 1)]
            grid[i, j] = cell.mean() if cell.size else 0.0
    return grid


#: names under which :func:`hermetic_registry` offers the two plugins
HERMETIC_DETECTOR, HERMETIC_RECOGNIZER = "blob", "grid"
#: a pipeline config for the hermetic plugins; alignment off because rotating needs OpenCV (and the
#: blob detector's eyes are level anyway)
HERMETIC_CONFIG: dict[str, Any] = {"detector": HERMETIC_DETECTOR, "recognizer": HERMETIC_RECOGNIZER,
                                   "metric": "cosine", "align": False}


def hermetic_registry() -> PluginRegistry:
    """A ``PluginRegistry(autoload=False)`` holding :class:`BlobDetector` (``"blob"``),
    :class:`GridRecognizer` (``"grid"``) and facepipe's built-in metrics, and nothing else.

    Use it with ``Pipeline.from_config(HERMETIC_CONFIG, registry=hermetic_registry())``.
    """
    registry = PluginRegistry(autoload=False)
    registry.add(DetectorSpec(name=HERMETIC_DETECTOR, factory="facepipe.testing:BlobDetector",
                              config=BlobDetectorConfig, description="test double: bright blobs", license="MIT"))
    registry.add(RecognizerSpec(name=HERMETIC_RECOGNIZER, factory="facepipe.testing:GridRecognizer",
                                config=GridRecognizerConfig, description="test double: 8x8 grey grid",
                                license="MIT"))
    # The metrics come through their entry point, as in any registry (the kernel does not import
    # the pipeline layer that implements them).
    (metrics,) = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP, name="metrics")
                  if ep.dist is not None and ep.dist.metadata["Name"] == "facepipe"]
    registry.register_module(metrics.load(), distribution="facepipe", name=metrics.name)
    return registry
