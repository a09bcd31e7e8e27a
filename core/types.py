"""The contracts every plugin implements.

Images travel as BGR ``uint8`` arrays of shape ``(H, W, 3)``.  All plugin entry points are
batch-first: a list of images (or face crops) goes in, one result per item comes out, so one
model call serves many faces.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Sequence

import numpy as np
from facepipe.plugin_config import PluginConfig

Point = tuple[float, float]



@dataclass(frozen=True)
class DetectedFace:
    """One face found by a detector, in the coordinates of the image it was given.

    ``left_eye`` is the *person's* left eye (on the image's right side for a frontal face).
    ``confidence`` is in [0, 1].  The box is clipped to the image.
    """

    x: float
    y: float
    w: float
    h: float
    confidence: float = 0.0
    left_eye: Point | None = None
    right_eye: Point | None = None
    nose: Point | None = None
    mouth_left: Point | None = None
    mouth_right: Point | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def area(self) -> float:
        return self.w * self.h

    def with_(self, **changes: Any) -> "DetectedFace":
        return replace(self, **changes)

    def clipped(self, width: int, height: int) -> "DetectedFace":
        """The same face with its box clipped to a ``width`` x ``height`` image."""
        x0 = min(max(self.x, 0.0), float(width))
        y0 = min(max(self.y, 0.0), float(height))
        x1 = min(max(self.x + self.w, 0.0), float(width))
        y1 = min(max(self.y + self.h, 0.0), float(height))
        return replace(self, x=x0, y=y0, w=max(x1 - x0, 0.0), h=max(y1 - y0, 0.0),
                       confidence=float(min(max(self.confidence, 0.0), 1.0)))


def build_once(owner: Any, attr: str, lock: Any, make: Any) -> Any:
    """``owner.<attr>``, made by ``make()`` on first use - once, even when threads race for it.

    The lazy-loading idiom of every plugin that loads a model: check, lock, check again, build."""
    value = getattr(owner, attr)
    if value is None:
        with lock:
            value = getattr(owner, attr)
            if value is None:
                value = make()
                setattr(owner, attr, value)
    return value


class Plugin(abc.ABC):
    """Common base: a plugin instance is built once from its validated config and reused."""

    #: the pydantic config class; set by each plugin
    config_class: ClassVar[type[PluginConfig]] = PluginConfig

    def __init__(self, config: PluginConfig | None = None, *, weights: Any = None) -> None:
        self.config = config if config is not None else self.config_class()
        #: a :class:`facepipe.weights.WeightsManager` (or None to use the default one)
        self.weights = weights

    def weights_manager(self) -> Any:
        from facepipe.weights import default_manager

        return self.weights if self.weights is not None else default_manager()

    def prepare(self) -> None:
        """Load models and weights now instead of on first use (optional; default: nothing).

        Called by :meth:`Pipeline.prepare` (e.g. when a server starts), so the first request pays
        no loading.  Must be thread-safe with the plugin's own lazy loading (the usual
        lock-protected property does it)."""

    def close(self) -> None:
        """Release models and sessions (optional)."""


class Detector(Plugin):
    """Finds faces.  Subclasses implement :meth:`detect`."""

    #: whether the detector returns eye landmarks itself (else the Haar eye fallback may run)
    provides_eyes: ClassVar[bool] = True

    @abc.abstractmethod
    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        """Detect faces in each BGR uint8 image; one list of faces per image, boxes clipped."""


class Recognizer(Plugin):
    """Maps face crops to embeddings."""

    #: model input (height, width)
    input_size: ClassVar[tuple[int, int]] = (0, 0)
    #: embedding length
    embedding_size: ClassVar[int] = 0
    #: thresholds per metric name (deepface's pre-tuned table where known)
    thresholds: ClassVar[dict[str, float]] = {}

    def preprocess(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        """Turn BGR uint8 crops of any size into the model's input batch.

        Default: deepface's aspect-preserving resize + black padding to :attr:`input_size`,
        values in [0, 1], then the ``normalization`` named in the config (if it has one).
        """
        from facepipe.preprocess import normalize_input, resize_pad_batch

        batch = resize_pad_batch(faces, self.input_size)
        normalization = getattr(self.config, "normalization", "base")
        return normalize_input(batch, normalization)

    @abc.abstractmethod
    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on a preprocessed batch; returns float32 ``(N, embedding_size)``."""

    def embed(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings of BGR uint8 crops: ``(N, embedding_size)`` float32."""
        if len(faces) == 0:
            return np.zeros((0, self.embedding_size), dtype=np.float32)
        return np.asarray(self.forward(self.preprocess(faces)), dtype=np.float32)


class Analyzer(Plugin):
    """Predicts an attribute (``age``, ``gender``, ``emotion``, ``race``, ...) of face crops."""

    #: the action this analyzer answers (the key users ask for)
    action: ClassVar[str] = ""

    @abc.abstractmethod
    def predict(self, faces: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """One dict per BGR uint8 crop, with deepface's keys for the action, e.g.
        ``{"age": 31.4}`` or ``{"gender": {"Woman": 97.1, "Man": 2.9}, "dominant_gender": "Woman"}``.
        Values are plain Python floats / strings."""


class AntiSpoofer(Plugin):
    """Judges whether faces are real (live) or presented (photo, screen, mask)."""

    @abc.abstractmethod
    def check(self, image: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]) -> list[tuple[bool, float]]:
        """For each ``(x, y, w, h)`` box of the original BGR image: ``(is_real, score in [0, 1])``."""


@dataclass(frozen=True)
class StoredFace:
    """One face of a gallery: its id, who it is, where it came from, which model embedded it.

    ``id`` is the row key: adding a face with an id the store already holds replaces nothing and
    adds nothing (idempotent upserts). :func:`face_id` derives it from (image content hash, face
    index, fingerprint), so re-running a registration adds nothing.
    """

    id: str
    identity: str
    fingerprint: str
    image_sha256: str = ""
    face_index: int = 0
    facial_area: tuple[int, int, int, int] = (0, 0, 0, 0)
    meta: dict[str, Any] = field(default_factory=dict, compare=False)


def face_id(image_sha256: str, face_index: int, fingerprint: str) -> str:
    """The id of face ``face_index`` of an image under a model fingerprint (stable across runs)."""
    import hashlib

    return hashlib.sha256(f"{image_sha256}\n{face_index}\n{fingerprint}".encode()).hexdigest()[:32]


class Store(Plugin):
    """A gallery of face embeddings: batched upsert, k-nearest search, get, delete, count.

    Distances follow the config's ``metric`` with facepipe's definitions (see
    :mod:`facepipe.pipeline.metrics`), whatever the store computes natively, so a recognizer's
    threshold keeps its meaning.  Errors: :class:`facepipe.errors.StoreMismatchError` for another
    dimension or fingerprint, :class:`~facepipe.errors.StoreConnectionError` /
    :class:`~facepipe.errors.StoreAuthError` for servers.
    """

    @abc.abstractmethod
    def add(self, embeddings: np.ndarray, faces: Sequence[StoredFace]) -> int:
        """Upsert ``faces`` with their ``(n, d)`` float32 embeddings; returns how many were new."""

    @abc.abstractmethod
    def search(self, queries: np.ndarray, k: int = 10, *, exact: bool = True) -> list[list[tuple[str, float]]]:
        """For each row of ``queries`` ``(m, d)``: up to ``k`` ``(id, distance)`` pairs, nearest first.
        ``exact=False`` may use an approximate index (when the store has one)."""

    @abc.abstractmethod
    def get(self, ids: Sequence[str]) -> list[StoredFace | None]:
        """The stored faces of ``ids`` (None where an id is unknown), in order."""

    @abc.abstractmethod
    def delete(self, ids: Sequence[str]) -> int:
        """Remove faces by id; returns how many existed."""

    @abc.abstractmethod
    def count(self) -> int:
        """Number of faces stored."""

    @abc.abstractmethod
    def identities(self) -> list[str]:
        """The distinct identities, sorted."""

    @abc.abstractmethod
    def ids_of(self, identity: str) -> list[str]:
        """The ids of every face stored under ``identity`` (exact, case-sensitive match), sorted.

        ``[]`` for an identity the store does not hold.  This is how a whole identity is removed
        (``store.delete(store.ids_of(name))``), so it must list every face, however many."""

    def fingerprint(self) -> str | None:
        """The fingerprint the store's embeddings carry (None while empty and not configured).
        Stores that remember it (fixed at the first add) override this."""
        fingerprint: str | None = getattr(self.config, "fingerprint", None)
        return fingerprint

    def close(self) -> None:
        """Release connections, file handles and locks (default: nothing). Idempotent."""


class Metric(Plugin):
    """A distance between embeddings."""

    #: the name thresholds are keyed by
    name: ClassVar[str] = ""

    @abc.abstractmethod
    def pairwise(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Distances between every row of ``a`` (n, d) and of ``b`` (m, d): float64 ``(n, m)``.

        Must not build an ``(n, m, d)`` array."""

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Distance between two 1-D vectors."""
        return float(self.pairwise(np.asarray(a)[None, :], np.asarray(b)[None, :])[0, 0])
