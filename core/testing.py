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

from dataclasses import replace
from importlib import metadata
from typing import Any, Callable, Sequence

import numpy as np

from pydantic import Field

from facepipe.registry import ENTRY_POINT_GROUP, PluginRegistry
from facepipe.specs import DetectorSpec, PluginSpec, RecognizerSpec
from facepipe.types import (
    Analyzer,
    AntiSpoofer,
    DetectedFace,
    Detector,
    Metric,
    PluginConfig,
    Recognizer,
    Store,
    StoredFace,
    face_id,
)


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


# ------------------------------------------------------------------------------------------------
# Gallery stores

def _reference_distances(queries: np.ndarray, rows: np.ndarray, metric: str) -> np.ndarray:
    """facepipe's metric definitions, pair by pair in float64 (slow and plain on purpose: the kit
    must not share code with the stores it checks)."""
    out = np.empty((len(queries), len(rows)))
    for i, a in enumerate(np.asarray(queries, dtype=np.float64)):
        for j, b in enumerate(np.asarray(rows, dtype=np.float64)):
            na, nb = np.linalg.norm(a), np.linalg.norm(b)
            cos = float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0
            if metric == "cosine":
                out[i, j] = min(max(1.0 - cos, 0.0), 2.0)
            elif metric == "angular":
                out[i, j] = float(np.arccos(min(max(cos, -1.0), 1.0)) / np.pi)
            elif metric == "euclidean":
                out[i, j] = float(np.linalg.norm(a - b))
            elif metric == "euclidean_l2":
                out[i, j] = float(np.linalg.norm(a / (na + 1e-10) - b / (nb + 1e-10)))
            else:
                raise AssertionError(f"check_store knows no metric {metric!r}")
    return out


def _stored_faces(n: int, fingerprint: str, start: int = 0) -> list[StoredFace]:
    return [StoredFace(id=face_id(f"{k:064x}", 0, fingerprint), identity=f"person{k % 5}",
                       fingerprint=fingerprint, image_sha256=f"{k:064x}", face_index=k % 3,
                       facial_area=(k, k + 1, 10 + k, 20 + k), meta={"k": k, "source": f"img{k}.jpg"})
            for k in range(start, start + n)]


def check_store(store_factory: Callable[..., Store], *, dim: int = 24, n: int = 60,
                metrics: Sequence[str] = ("cosine", "euclidean", "euclidean_l2", "angular"),
                seed: int = 0, atol: float = 1e-4) -> None:
    """The contract of a gallery store (:class:`facepipe.types.Store`), checked end to end.

    ``store_factory(metric=..., fingerprint=...)`` must return a new, *empty* store each call
    (a fresh folder, table or collection); ``fingerprint`` may be None (fixed at the first add).
    Checks, per metric: empty searches, idempotent upserts (same ids twice → 0 new, count
    unchanged; duplicates inside a batch count once), get round-trips every field, exact search
    returns the true k nearest with distances equal to facepipe's definitions (within ``atol``),
    ``k`` beyond the count, approximate search gives true distances of stored ids, delete, count,
    identities, ``ids_of`` (exactly an identity's ids, sorted; [] for an unknown one, names with
    quotes, backslashes or unicode included; updated by delete), and
    :class:`~facepipe.errors.StoreMismatchError` (nothing written) for another dimension or
    fingerprint.  Vectors are random with norms in [0.5, 2], so stores that only handle
    unit vectors fail.
    """
    from facepipe.errors import StoreMismatchError

    rng = np.random.default_rng(seed)
    for metric in metrics:
        where = f"[{metric}]"
        raw = rng.normal(size=(n, dim))
        vectors = (raw / np.linalg.norm(raw, axis=1, keepdims=True)
                   * rng.uniform(0.5, 2.0, (n, 1))).astype(np.float32)
        queries = (rng.normal(size=(4, dim))).astype(np.float32)
        faces = _stored_faces(n, "fp-A")
        store = store_factory(metric=metric, fingerprint="fp-A")
        try:
            assert isinstance(store, Store), f"{where} the factory must return a facepipe.types.Store"
            # -- empty store
            assert store.count() == 0, f"{where} a new store must be empty (count() == {store.count()})"
            assert store.identities() == [], f"{where} identities() of an empty store must be []"
            assert store.ids_of("person0") == [], f"{where} ids_of() on an empty store must be []"
            assert store.search(queries, k=5) == [[] for _ in queries], \
                f"{where} searching an empty store must give one empty list per query"
            assert store.get(["nope"]) == [None], f"{where} get() of an unknown id must give None"
            assert store.delete(["nope"]) == 0, f"{where} delete() of an unknown id must return 0"
            # -- upserts
            half = n // 2
            assert store.add(vectors[:half], faces[:half]) == half, f"{where} add() must return the number new"
            assert store.add(vectors[:half], faces[:half]) == 0, f"{where} adding the same ids again must add 0"
            assert store.count() == half, f"{where} a repeated add changed count() to {store.count()}"
            batch = np.concatenate([vectors[half - 3:], vectors[half:half + 1]])
            assert store.add(batch, faces[half - 3:] + faces[half:half + 1]) == n - half, \
                f"{where} a batch of 3 known ids, {n - half} new ones and one duplicate must add {n - half}"
            assert store.count() == n, f"{where} count() is {store.count()}, expected {n}"
            # -- get
            got = store.get([faces[7].id, "nope", faces[0].id])
            assert got[1] is None and got[0] is not None and got[2] is not None, f"{where} get() misses faces"
            for stored, expected in ((got[0], faces[7]), (got[2], faces[0])):
                assert stored == expected, f"{where} get() returned {stored}, expected {expected}"
                assert stored.meta == expected.meta, f"{where} get() lost meta: {stored.meta} != {expected.meta}"
                assert isinstance(stored.facial_area, tuple), f"{where} facial_area must come back as a tuple"
            assert store.identities() == sorted({f.identity for f in faces}), f"{where} identities() is wrong"
            # -- ids_of: exactly the ids added under an identity, sorted
            for name in sorted({f.identity for f in faces}):
                want_ids = sorted(f.id for f in faces if f.identity == name)
                got_ids = store.ids_of(name)
                assert got_ids == want_ids, f"{where} ids_of({name!r}) is {got_ids}, expected {want_ids}"
            for unknown in ("nobody", "PERSON0", "person", 'person0" || identity != "', "person0' or 1=1 --"):
                assert store.ids_of(unknown) == [], f"{where} ids_of({unknown!r}) of an unknown identity must be []"
            # -- exact search
            truth = _reference_distances(queries, vectors, metric)
            for k in (1, 5, n + 10):
                hits = store.search(queries, k=k, exact=True)
                assert len(hits) == len(queries), f"{where} search() must give one list per query"
                for qi, row in enumerate(hits):
                    want = np.argsort(truth[qi], kind="stable")[:min(k, n)]
                    assert len(row) == min(k, n), f"{where} k={k}: {len(row)} hits, expected {min(k, n)}"
                    ids = [hit_id for hit_id, _ in row]
                    dist = np.array([d for _, d in row])
                    assert all(type(d) is float for d in dist.tolist()), f"{where} distances must be floats"
                    assert np.all(np.diff(dist) >= -1e-9), f"{where} hits must come nearest first"
                    np.testing.assert_allclose(dist, truth[qi][want], atol=atol,
                                               err_msg=f"{where} k={k}: distances differ from facepipe's {metric}")
                    # ids may swap only between (near-)ties
                    expected_ids = {faces[j].id for j in want}
                    wrong = [i for i in ids if i not in expected_ids]
                    for i in wrong:
                        j = next(t for t, f in enumerate(faces) if f.id == i)
                        assert abs(truth[qi][j] - truth[qi][want[-1]]) <= atol, \
                            f"{where} k={k}: {i} is not among the exact {k} nearest"
            # -- approximate search: right shape, real ids, true distances
            for qi, row in enumerate(store.search(queries, k=5, exact=False)):
                assert 0 < len(row) <= 5, f"{where} exact=False gave {len(row)} hits for k=5"
                index = {f.id: j for j, f in enumerate(faces)}
                for hit_id, d in row:
                    assert hit_id in index, f"{where} exact=False returned an unknown id {hit_id!r}"
                    assert abs(d - truth[qi][index[hit_id]]) <= atol, \
                        f"{where} exact=False: distance {d} of {hit_id} is not its true {metric} distance"
            # -- mismatches leave the store untouched
            wrong_dim = np.ones((1, dim + 1), dtype=np.float32)
            for bad_call, what in (
                    (lambda: store.add(wrong_dim, _stored_faces(1, "fp-A", start=n)), "add() of another dimension"),
                    (lambda: store.search(wrong_dim, k=3), "search() with another dimension"),
                    (lambda: store.add(vectors[:2], _stored_faces(1, "fp-A", start=n)
                                       + _stored_faces(1, "fp-B", start=n + 1)),
                     "add() of another fingerprint")):
                try:
                    bad_call()
                except StoreMismatchError:
                    pass
                else:
                    raise AssertionError(f"{where} {what} must raise StoreMismatchError")
            assert store.count() == n, f"{where} a refused add() left rows behind (count {store.count()})"
            # -- delete
            gone = [faces[1].id, faces[2].id]
            assert store.delete(gone + ["nope"]) == 2, f"{where} delete() must return how many existed"
            assert store.count() == n - 2 and store.get(gone) == [None, None], f"{where} delete() kept faces"
            remaining = {h for row in store.search(queries, k=n, exact=True) for h, _ in row}
            assert not remaining & set(gone), f"{where} search() still returns deleted faces"
            assert len(remaining) == n - 2, f"{where} k=n must reach every remaining face"
            for name in sorted({faces[1].identity, faces[2].identity}):
                want_ids = sorted(f.id for f in faces if f.identity == name and f.id not in gone)
                assert store.ids_of(name) == want_ids, f"{where} ids_of({name!r}) still lists deleted faces"
            # -- a whole identity, however its name is spelled (quotes, backslashes, unicode)
            odd = ['o\'brien "x"', "back\\slash", "line\nbreak", "żółć 顔"]
            odd_faces = [replace(face, identity=odd[j % len(odd)]) for j, face in
                         enumerate(_stored_faces(2 * len(odd), "fp-A", start=n))]
            assert store.add(vectors[:len(odd_faces)], odd_faces) == len(odd_faces), f"{where} add() of odd names"
            for name in odd:
                want_ids = sorted(f.id for f in odd_faces if f.identity == name)
                assert store.ids_of(name) == want_ids, f"{where} ids_of({name!r}) is wrong"
            victim = store.ids_of(odd[0])
            assert store.delete(victim) == len(victim) == 2, f"{where} delete(ids_of(name)) removed the wrong count"
            assert store.ids_of(odd[0]) == [] and odd[0] not in store.identities(), \
                f"{where} an identity deleted through ids_of() is still listed"
            assert store.count() == n - 2 + len(odd_faces) - 2, f"{where} deleting one identity touched others"
        finally:
            store.close()
        # -- a store without a configured fingerprint takes the first add's
        store = store_factory(metric=metric, fingerprint=None)
        try:
            store.add(vectors[:2], _stored_faces(2, "fp-C"))
            assert store.fingerprint() == "fp-C", f"{where} fingerprint() must be fixed by the first add"
            try:
                store.add(vectors[2:3], _stored_faces(1, "fp-D", start=2))
            except StoreMismatchError:
                pass
            else:
                raise AssertionError(f"{where} an add with another fingerprint than the first must be refused")
            assert store.count() == 2, f"{where} a refused add() left rows behind"
        finally:
            store.close()
