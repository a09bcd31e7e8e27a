"""The pipeline: detect → align/crop → preprocess → represent → compare, and → analyze.

Every stage is batch-first: the faces of all input images go through each model together, in
chunks of ``batch_size``.  Plugins are built on first use, under a lock, and come from the
process-wide :mod:`facepipe.model_cache`: pipelines that differ only in pipeline-level options
share one instance of each model.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from facepipe.pipeline.align import (
    FacialArea,
    crop_face,
    pad_for_detection,
    scale_face,
    shift_face,
    shrink_for_detection,
)
from facepipe.pipeline.config import PipelineConfig, check_analyzer_action, parse_config, resolve_config
from facepipe.errors import (
    ConfigError,
    DimensionMismatchError,
    FaceNotDetectedError,
    ImageTypeError,
    SpoofDetectedError,
)
from facepipe.pipeline.batching import chunks as _chunks, flatten, regroup
from facepipe.pipeline.decision import confidence, confidence_params, threshold_for
from facepipe.pipeline.eyes import EyeLocator, find_eye_locator
from facepipe.model_cache import ModelCache, ModelKey, shared_models
from facepipe.preprocess import as_bgr_uint8
from facepipe.registry import PluginRegistry, default_registry
from facepipe.pipeline.results import Analysis, Face, Representation, VerifyResult
from facepipe.types import DetectedFace, StoredFace, face_id

ImageInput = Any  # path | bytes | file object | base64 str | ndarray
_UNSET: Any = object()


def is_embedding(value: Any) -> bool:
    """A flat list/tuple of numbers or a 1-D numeric array is an embedding, not an image."""
    if isinstance(value, np.ndarray):
        return value.ndim == 1 and value.size > 0 and np.issubdtype(value.dtype, np.number)
    if isinstance(value, (list, tuple)) and value:
        return all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in value)
    return False


class Pipeline:
    """A configured face pipeline.

    ``Pipeline()`` uses the offline defaults (no download); ``Pipeline.from_config(cfg)`` takes a
    dict, a :class:`~facepipe.pipeline.config.PipelineConfig`, or a path to a .yaml/.yml/.json/.toml file.
    Pass ``registry=`` for a hermetic set of plugins and ``weights=`` for a custom
    :class:`~facepipe.weights.WeightsManager`.

    Plugins come from ``models`` (default: the process-wide
    :func:`~facepipe.model_cache.shared_models`), so every pipeline with the same plugin options
    uses the same instance; pass ``models=ModelCache()`` to keep this pipeline's models private.
    """

    def __init__(self, config: PipelineConfig | Mapping[str, Any] | str | Path | None = None, *,
                 registry: PluginRegistry | None = None, weights: Any = None,
                 models: ModelCache | None = None) -> None:
        self.registry = registry if registry is not None else default_registry()
        self.config = parse_config(config)
        self.plugin_configs = resolve_config(self.config, self.registry)
        self.weights = weights
        self.models = models if models is not None else shared_models()
        self._instances: dict[str, Any] = {}
        #: the cache keys this pipeline holds one use of, by slot
        self._leases: dict[str, ModelKey] = {}
        self._generation = self.models.generation
        # A pipeline dropped without close() (e.g. evicted from facepipe.functions' cache) still
        # gives its models back; the finalizer holds the lease dict, never the pipeline.
        self._release_on_gc = weakref.finalize(self, _release_all, self.models, self._leases)
        self._lock = threading.RLock()
        self._eye_locator: EyeLocator | None | Any = _UNSET
        #: run by close(): layers above the pipeline (e.g. find's open indexes) release what they hold
        self._close_callbacks: list[Callable[[], None]] = []

    @classmethod
    def from_config(cls, config: PipelineConfig | Mapping[str, Any] | str | Path | None = None, *,
                    registry: PluginRegistry | None = None, weights: Any = None,
                    models: ModelCache | None = None) -> "Pipeline":
        """Build a pipeline from a dict, a PipelineConfig or a config file path."""
        return cls(config, registry=registry, weights=weights, models=models)

    # ------------------------------------------------------------------------------ plugins
    def _plugin(self, slot: str, kind: str, name: str) -> Any:
        instance = self._instances.get(slot)
        if instance is not None and self._generation == self.models.generation:
            return instance
        with self._lock:  # acquire once, even when many threads ask at the same time
            if self._generation != self.models.generation:  # clear_models() closed them all
                self._instances.clear()
                self._leases.clear()  # stale keys: nothing to give back
                self._generation = self.models.generation
            instance = self._instances.get(slot)
            if instance is None:
                key, instance = self.models.acquire(self.registry, kind, name,  # type: ignore[arg-type]
                                                    self.plugin_configs[slot], weights=self.weights)
                self._leases[slot] = key
                self._instances[slot] = instance
            return instance

    @property
    def detector(self) -> Any:
        return self._plugin("detector", "detector", self.config.detector.name)

    @property
    def recognizer(self) -> Any:
        return self._plugin("recognizer", "recognizer", self.config.recognizer.name)

    @property
    def metric(self) -> Any:
        return self._plugin("metric", "metric", self.config.metric.name)

    def analyzer(self, action: str) -> Any:
        ref = self.config.analyzers.get(action)
        if ref is None:
            raise ConfigError(
                f"no analyzer configured for action {action!r}; configured actions: "
                f"{', '.join(self.config.analyzers) or 'none'} (add it under 'analyzers' in the config)"
            )
        slot = f"analyzers.{action}"
        if slot not in self.plugin_configs:  # a default analyzer: validated on first use
            self.plugin_configs[slot] = self.registry.validate_config("analyzer", ref.name, ref.options, path=slot)
            check_analyzer_action(self.registry, action, ref.name)
        return self._plugin(slot, "analyzer", ref.name)

    @property
    def recognizer_spec(self) -> Any:
        """The recognizer's registration record: its dimensions, thresholds, confidence model."""
        return self.registry.get("recognizer", self.config.recognizer.name)

    @property
    def detector_spec(self) -> Any:
        """The detector's registration record: whether it finds faces and gives eyes."""
        return self.registry.get("detector", self.config.detector.name)

    @property
    def model_name(self) -> str:
        return self.recognizer_spec.name

    @property
    def detector_name(self) -> str:
        return self.detector_spec.name

    @property
    def embedding_size(self) -> int:
        """Embedding length, from the spec (builds the recognizer only when the spec does not say)."""
        return getattr(self.recognizer_spec, "embedding_size", 0) or self.recognizer.embedding_size

    @property
    def metric_name(self) -> str:
        return getattr(self.metric, "name", None) or self.config.metric.name

    def prepare(self, actions: Sequence[str] | None = None, *, recognizer: bool = True) -> "Pipeline":
        """Build the plugins and load their models now (e.g. when a server starts) instead of on
        the first call: the detector, the recognizer (unless ``recognizer=False``) and the
        analyzers of ``actions`` (default: every configured one).  Returns the pipeline."""
        plugins = [self.detector]
        if recognizer:
            plugins.append(self.recognizer)
        plugins.extend(self.analyzer(a) for a in (self.config.analyzers if actions is None else actions))
        for plugin in plugins:
            plugin.prepare()
        return self

    def close(self) -> None:
        """Give back every plugin this pipeline uses: a model no other pipeline shares is closed
        (its memory freed); one that others still use stays loaded for them.  The pipeline stays
        usable and acquires its plugins again on the next call."""
        with self._lock:
            callbacks, self._close_callbacks = self._close_callbacks, []
            for callback in callbacks:
                callback()
            self._instances.clear()
            _release_all(self.models, self._leases)

    # ------------------------------------------------------------------------------ detection
    def _load(self, sources: Sequence[ImageInput]) -> list[tuple[np.ndarray, str]]:
        from facepipe.pipeline.image import load_image

        loaded = [load_image(s) for s in sources]
        return [(item.image, item.name) for item in loaded]

    def _detect(self, images: Sequence[np.ndarray], pad: bool) -> list[list[DetectedFace]]:
        detector = self.detector
        found: list[list[DetectedFace]] = []
        for part in _chunks(len(images), self.config.batch_size):
            batch = [as_bgr_uint8(img) for img in images[part]]  # the contract detectors rely on
            shrunk = [shrink_for_detection(img, self.config.detect_max_side) for img in batch]
            if pad:
                padded = [pad_for_detection(img) for img, _ in shrunk]
                inputs, offsets = [p[0] for p in padded], [(p[1], p[2]) for p in padded]
            else:
                inputs, offsets = [img for img, _ in shrunk], [(0, 0)] * len(batch)
            for (_, scale), (dx, dy), faces in zip(shrunk, offsets, detector.detect(inputs)):
                found.append([scale_face(shift_face(f, -dx, -dy), 1.0 / scale) for f in faces])
        return found

    def eye_locator(self) -> EyeLocator | None:
        """The installed eye locator used for detectors without eyes (found once, through the registry)."""
        if self._eye_locator is _UNSET:
            self._eye_locator = find_eye_locator(self.registry)
        return self._eye_locator

    def _eye_fallback(self, image: np.ndarray, face: DetectedFace) -> DetectedFace:
        if face.left_eye is not None and face.right_eye is not None:
            return face
        locate = self.eye_locator()
        if locate is None:
            return face
        left, right = locate(image, (int(face.x), int(face.y), int(face.w), int(face.h)))
        return face.with_(left_eye=face.left_eye or left, right_eye=face.right_eye or right)

    def faces(self, sources: Sequence[ImageInput], *, align: bool | None = None,
              expand_percentage: float | None = None, max_faces: int | None = _UNSET,
              on_no_face: str | None = None) -> list[list[Face]]:
        """Detect, (align) and crop the faces of each input image: one list of Face per image."""
        cfg = self.config
        align = cfg.align if align is None else align
        expand = cfg.expand_percentage if expand_percentage is None else expand_percentage
        if expand < 0:
            raise ConfigError(f"expand_percentage must be >= 0, got {expand}")
        limit = cfg.max_faces if max_faces is _UNSET else max_faces
        policy = on_no_face or cfg.on_no_face
        loaded = self._load(sources)
        images = [img for img, _ in loaded]
        spec = self.detector_spec
        finds_faces = getattr(spec, "finds_faces", True)
        detections = self._detect(images, pad=cfg.pad_before_detect and align and finds_faces)
        # Faces that come without eyes borrow an eye locator, unless this detector is one itself (it
        # already looked) — so a third-party detector that only sometimes gives eyes still aligns.
        use_fallback = align and cfg.eye_fallback and finds_faces and not getattr(spec, "eye_locator", None)
        results: list[list[Face]] = []
        for index, ((image, name), found) in enumerate(zip(loaded, detections)):
            if limit is not None and len(found) > limit:
                found = sorted(found, key=lambda f: f.area, reverse=True)[:limit]
            faces: list[Face] = []
            for face in found:
                if use_fallback:
                    face = self._eye_fallback(image, face)
                crop, area = crop_face(image, face, align=align, expand_percentage=expand)
                if crop.shape[0] == 0 or crop.shape[1] == 0:
                    continue  # a degenerate box (deepface skips these too)
                faces.append(Face(index, area, float(face.confidence), crop, detected=finds_faces))
            if not faces:
                if policy == "error":
                    raise FaceNotDetectedError(
                        f"no face could be detected in {name}. Check the image, try another detector, "
                        "or set on_no_face='whole_image' (deepface: enforce_detection=False)"
                    )
                if policy == "whole_image":
                    h, w = image.shape[:2]
                    faces.append(Face(index, FacialArea(0, 0, w, h), 0.0, image, detected=False))
            results.append(self._antispoof(image, faces) if cfg.anti_spoofing is not None else faces)
        return results

    def _antispoof(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        from dataclasses import replace

        checker = self._plugin("anti_spoofing", "antispoofer", self.config.anti_spoofing.name)  # type: ignore[union-attr]
        judged = checker.check(image, [(f.area.x, f.area.y, f.area.w, f.area.h) for f in faces])
        return [replace(f, is_real=bool(real), antispoof_score=float(score)) for f, (real, score) in zip(faces, judged)]

    def _require_real(self, faces: Sequence[Face]) -> None:
        fake = [f for f in faces if f.is_real is False]
        if fake:
            area = fake[0].area
            raise SpoofDetectedError(
                f"{len(fake)} face(s) judged fake by the anti-spoofing plugin (first at x={area.x}, y={area.y}, "
                f"score {fake[0].antispoof_score:.2f}); use extract_faces to inspect them"
            )

    # ------------------------------------------------------------------------------ public API
    def extract_faces(self, img: ImageInput | Sequence[ImageInput], **options: Any) -> list[Face] | list[list[Face]]:
        """Faces of one image (a list), or of a batch (a list of lists)."""
        sources, batch = _as_batch(img)
        faces = self.faces(sources, **options)
        return faces if batch else faces[0]

    def embed_faces(self, faces: Sequence[Face]) -> np.ndarray:
        """Embeddings of faces, batched: float32 (N, D).  Raises SpoofDetectedError on a fake face."""
        self._require_real(faces)
        if not faces:
            return np.zeros((0, self.embedding_size), dtype=np.float32)
        recognizer = self.recognizer
        parts = [recognizer.embed([f.crop for f in faces[s]]) for s in _chunks(len(faces), self.config.batch_size)]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def embed_per_image(self, per_image: Sequence[Sequence[Face]]) -> list[np.ndarray]:
        """Embeddings of the faces of many images in one batched pass: float32 ``(faces, D)`` per image."""
        return list(regroup(per_image, self.embed_faces(flatten(per_image))))

    def represent(self, img: ImageInput | Sequence[ImageInput], **options: Any
                  ) -> list[Representation] | list[list[Representation]]:
        """Embeddings of every face of one image (a list) or of a batch (a list of lists)."""
        sources, batch = _as_batch(img)
        per_image = self.faces(sources, **options)
        out = [[Representation(vector, face) for face, vector in zip(faces, vectors)]
               for faces, vectors in zip(per_image, self.embed_per_image(per_image))]
        return out if batch else out[0]

    def threshold(self, override: float | None = None) -> float:
        """The decision threshold: per call > config > the model's table value for the metric."""
        if override is not None:
            return float(override)
        if self.config.threshold is not None:
            return float(self.config.threshold)
        declared = getattr(self.recognizer_spec, "thresholds", None)
        if not declared:  # a spec without thresholds: the plugin class may still carry some
            declared = getattr(self.recognizer, "thresholds", None) or {}
        return threshold_for(declared, self.metric_name, model=self.model_name)

    def confidence(self, distance: float, verified: bool) -> float:
        """Confidence (0-100) of a decision at ``distance``, from the recognizer's declared model."""
        table = getattr(self.recognizer_spec, "confidence", None) or {}
        return confidence(distance, confidence_params(table, self.metric_name), verified)

    def _side(self, value: Any, which: str, **options: Any) -> tuple[np.ndarray, list[dict[str, Any]]]:
        if is_embedding(value):
            vector = np.asarray(value, dtype=np.float32)[None, :]
            size = self.embedding_size
            if size and vector.shape[1] != size:
                raise DimensionMismatchError(
                    f"embeddings of {self.model_name} should have {size} dimensions, but {which} has "
                    f"{vector.shape[1]} dimensions input"
                )
            empty = {"x": None, "y": None, "w": None, "h": None, "left_eye": None, "right_eye": None}
            return vector, [empty]
        if isinstance(value, (list, tuple)):
            raise ImageTypeError(
                f"{which}: when passing an embedding as a list, ensure that all its items are of type float "
                "(to compare many images, use verify_many)"
            )
        return self._image_sides([value], **options)[0]

    def _image_sides(self, images: list[Any], **options: Any) -> list[tuple[np.ndarray, list[dict[str, Any]]]]:
        """Faces and embeddings of several images with one detection pass and one model call."""
        per_image = self.faces(images, **options)
        return [(vectors, [f.area.to_dict() for f in faces])
                for faces, vectors in zip(per_image, self.embed_per_image(per_image))]

    def verify(self, img1: Any, img2: Any, *, threshold: float | None = None, **options: Any) -> VerifyResult:
        """Do two images (or embeddings) show the same person? The closest face pair decides."""
        start = time.perf_counter()
        if _is_image_side(img1) and _is_image_side(img2):
            (a, areas_a), (b, areas_b) = self._image_sides([img1, img2], **options)
        else:
            a, areas_a = self._side(img1, "img1", **options)
            b, areas_b = self._side(img2, "img2", **options)
        if a.shape[1] != b.shape[1]:
            raise DimensionMismatchError(f"img1 embeddings have {a.shape[1]} dimensions but img2 has {b.shape[1]}")
        distances = self.metric.pairwise(a, b)
        i, j = np.unravel_index(int(np.argmin(distances)), distances.shape)
        distance = float(distances[i, j])
        limit = self.threshold(threshold)
        verified = distance <= limit
        # verified follows the threshold actually used (deepface decides confidence with the pre-tuned one).
        conf = self.confidence(distance, verified)
        return VerifyResult(
            verified=bool(verified), distance=distance, threshold=limit, confidence=conf,
            model=self.model_name, detector_backend=self.detector_name, similarity_metric=self.metric_name,
            facial_areas={"img1": areas_a[i], "img2": areas_b[j]}, time=time.perf_counter() - start,
            distances=distances, best_pair=(int(i), int(j)),
        )

    def verify_many(self, imgs1: Sequence[Any], imgs2: Sequence[Any], *, threshold: float | None = None,
                    **options: Any) -> "VerifyMatrix":
        """Compare every image of ``imgs1`` with every image of ``imgs2`` (images or embeddings).

        Each image pair's distance is the smallest over their faces.  All faces are detected and
        embedded in batches; the result holds the whole matrix.
        """
        sides = []
        for which, items in (("imgs1", imgs1), ("imgs2", imgs2)):
            vectors, owners = [], []
            images = [(k, v) for k, v in enumerate(items) if not is_embedding(v)]
            per_image = self.faces([v for _, v in images], **options) if images else []
            for (k, _), embedded in zip(images, self.embed_per_image(per_image)):
                vectors.extend(embedded)
                owners.extend([k] * len(embedded))
            for k, v in enumerate(items):
                if is_embedding(v):
                    vectors.append(self._side(v, f"{which}[{k}]")[0][0])
                    owners.append(k)
            size = self.embedding_size
            sides.append((np.asarray(vectors, dtype=np.float32).reshape(-1, size), np.asarray(owners, dtype=int)))
        (a, owner_a), (b, owner_b) = sides
        face_distances = self.metric.pairwise(a, b) if len(a) and len(b) else np.zeros((len(a), len(b)))
        matrix = np.full((len(imgs1), len(imgs2)), np.inf)
        for i in range(len(a)):
            np.minimum.at(matrix[owner_a[i]], owner_b, face_distances[i])
        limit = self.threshold(threshold)
        return VerifyMatrix(distances=matrix, verified=matrix <= limit, threshold=limit,
                            model=self.model_name, similarity_metric=self.metric_name)

    # ------------------------------------------------------------------------------ galleries
    @property
    def fingerprint(self) -> str:
        """Names what makes this pipeline's embeddings comparable: the recognizer and its options,
        the detector and its options, and the alignment/cropping settings that change crops.

        ``<model>-<16 hex digits>`` (sha256 of sorted-key JSON).  A gallery refuses embeddings of
        another fingerprint, so faces embedded differently are never compared.
        """
        cfg = self.config
        described = {
            "recognizer": self.model_name,
            "recognizer_options": self.plugin_configs["recognizer"].model_dump(mode="json"),
            "detector": self.detector_name,
            "detector_options": self.plugin_configs["detector"].model_dump(mode="json"),
            "align": cfg.align, "expand_percentage": cfg.expand_percentage, "eye_fallback": cfg.eye_fallback,
            "pad_before_detect": cfg.pad_before_detect, "detect_max_side": cfg.detect_max_side,
        }
        digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()
        return f"{self.model_name}-{digest[:16]}"

    def register(self, img: ImageInput | Sequence[ImageInput], identity: str, gallery: Any, *,
                 meta: Mapping[str, Any] | None = None, **options: Any) -> list[StoredFace]:
        """Detect and embed every face of ``img`` (one image or a batch) and add them to ``gallery``
        (a :class:`facepipe.gallery.Gallery`) under ``identity``.  Returns the records stored.

        Ids come from (sha256 of the decoded pixels, face index, :attr:`fingerprint`), so
        registering the same photo again adds nothing, whatever form it is passed in.
        """
        sources, _ = _as_batch(img)
        loaded = self._load(sources)
        per_image = self.faces([image for image, _ in loaded], **options)
        vectors = self.embed_per_image(per_image)
        fingerprint = self.fingerprint
        records: list[StoredFace] = []
        for (image, name), faces in zip(loaded, per_image):
            digest = _pixels_sha256(image)
            for k, face in enumerate(faces):
                area = (face.area.x, face.area.y, face.area.w, face.area.h)
                records.append(StoredFace(
                    id=face_id(digest, k, fingerprint), identity=str(identity), fingerprint=fingerprint,
                    image_sha256=digest, face_index=k, facial_area=tuple(int(v) for v in area),  # type: ignore[arg-type]
                    meta={"source": name, "confidence": float(face.confidence), **dict(meta or {})}))
        if records:
            gallery.add(np.concatenate(vectors), faces=records)
        return records

    def search(self, img: ImageInput | Sequence[ImageInput], gallery: Any, k: int = 10, *, exact: bool = True,
               threshold: float | None = None, **options: Any) -> list[FaceMatches] | list[list[FaceMatches]]:
        """The ``k`` nearest gallery faces of every face of ``img`` (a list per image; a list of
        lists for a batch), each hit ``verified`` when within the decision threshold."""
        held = gallery.fingerprint()
        if held is not None and held != self.fingerprint:
            from facepipe.errors import StoreMismatchError

            raise StoreMismatchError(
                f"the gallery holds embeddings of fingerprint {held!r}, this pipeline makes {self.fingerprint!r}; "
                "search it with the pipeline (model, detector, alignment) that built it")
        if gallery.metric != self.metric_name:
            raise ConfigError(f"the gallery measures {gallery.metric!r} distances but the pipeline decides with "
                              f"{self.metric_name!r}; open the gallery with metric={self.metric_name!r}")
        sources, batch = _as_batch(img)
        per_image = self.faces(sources, **options)
        flat = flatten(per_image)
        limit = self.threshold(threshold)
        hits = gallery.search(self.embed_faces(flat), k=k, exact=exact) if flat else []
        matches = [FaceMatches(face, [replace(h, verified=bool(h.distance <= limit)) for h in row])
                   for face, row in zip(flat, hits)]
        out = [list(group) for group in regroup(per_image, matches)]
        return out if batch else out[0]

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the pipeline is closed (how the layers above it release what they
        keep per pipeline, such as find's open folder indexes)."""
        with self._lock:
            self._close_callbacks.append(callback)

    def analyze(self, img: ImageInput | Sequence[ImageInput], actions: Sequence[str] | str | None = None,
                **options: Any) -> list[Analysis] | list[list[Analysis]]:
        """Attributes (age, gender, emotion, race, ...) of every face, one model call per action."""
        if isinstance(actions, str):
            actions = [actions]
        actions = list(actions) if actions is not None else list(self.config.analyzers)
        if not actions:
            raise ConfigError("analyze needs at least one action (e.g. 'age', 'gender', 'emotion', 'race')")
        analyzers = {action: self.analyzer(action) for action in actions}
        sources, batch = _as_batch(img)
        per_image = self.faces(sources, **options)
        flat = flatten(per_image)
        self._require_real(flat)
        attributes: list[dict[str, Any]] = [{} for _ in flat]
        for action, analyzer in analyzers.items():
            for part in _chunks(len(flat), self.config.batch_size):
                predictions = analyzer.predict([f.crop for f in flat[part]])
                for k, prediction in enumerate(predictions):
                    attributes[part.start + k].update(prediction)
        out = [[Analysis(face, attrs) for face, attrs in zip(faces, attrs_of_image)]
               for faces, attrs_of_image in zip(per_image, regroup(per_image, attributes))]
        return out if batch else out[0]


@dataclass(frozen=True)
class FaceMatches:
    """A face of a searched image and its nearest gallery faces (hits with ``verified`` set)."""

    face: Face
    hits: list[Any]


@dataclass(frozen=True)
class VerifyMatrix:
    """Many-to-many verification: distances between every pair of images (inf: no face)."""

    distances: np.ndarray
    verified: np.ndarray
    threshold: float
    model: str
    similarity_metric: str


def _release_all(models: ModelCache, leases: dict[str, ModelKey]) -> None:
    """Give back every use in ``leases`` (a pipeline's close, or its garbage collection)."""
    keys = list(leases.values())
    leases.clear()
    for key in keys:
        models.release(key)


def _pixels_sha256(image: np.ndarray) -> str:
    """Content hash of decoded pixels (shape included): a photo hashes the same as a path, bytes or array."""
    digest = hashlib.sha256(repr(image.shape).encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


def _is_image_side(value: Any) -> bool:
    """An image input for one side of verify (not an embedding, nor a list given by mistake)."""
    return not is_embedding(value) and not isinstance(value, (list, tuple))


def _as_batch(img: Any) -> tuple[list[Any], bool]:
    """(sources, is_batch): a list/tuple of images or a 4-D array is a batch."""
    if isinstance(img, np.ndarray) and img.ndim == 4:
        return list(img), True
    if isinstance(img, (list, tuple)) and not is_embedding(img):
        return list(img), True
    return [img], False
