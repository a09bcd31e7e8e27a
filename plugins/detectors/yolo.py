"""YOLO face detectors (deepface's ``yolov8n`` ... ``yolov12l``) run by the ``ultralytics`` package.

One plugin name per deepface key (``yolov8n``, ``yolov8m``, ``yolov8l``, ``yolov11n/s/m/l``,
``yolov12n/s/m/l``), so ``detector="yolov11s"`` works as in deepface and every name declares exactly
the weight file it needs.  ``yolov8`` (deepface's old key) is an alias of ``yolov8n``, and
ultralytics' own spelling (``yolo11n``, ``yolo12m``, ...) is accepted for v11/v12.  All names share
:class:`YoloDetector`; each has its own config class whose ``variant`` is fixed to that name.

Behaviour (fact sheet §4): ``YOLO(weights).predict(images, conf=0.25)``; boxes come as centre
x, y, w, h and are turned into top-left x, y, w, h; the box confidence is the face confidence.
Models with keypoints (the v8 face models are trained on WIDER FACE's five RetinaFace-style
points) give, in model order, the image-left eye, image-right eye, nose, image-left and
image-right mouth corner.  For a frontal face the image-left eye is the person's *right* eye, so
keypoint 0 -> ``right_eye`` and 1 -> ``left_eye`` (as deepface maps them); facepipe also reports
keypoint 2 -> ``nose``, 3 -> ``mouth_right``, 4 -> ``mouth_left``, which deepface ignores.
The v11 n/s/m models have no keypoints (deepface's code says so); whether v11l / v12 have them is
unknown, so keypoints are read whenever the loaded model produces them.

Runtime: ``ultralytics`` imports and uses ``torchvision`` (its package metadata at import time,
the module in the predictor warm-up), so it needs a torchvision build that matches torch.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field, create_model

from facepipe import hookimpl
from facepipe.devices import DeviceName, torch_device
from facepipe.errors import PluginUnavailableError, WeightsError
from facepipe.plugin_config import WeightsFileConfig
from facepipe.specs import DetectorSpec, WeightFile
from facepipe.types import DetectedFace, Detector

_YAPALAB = "https://github.com/YapaLab/yolo-face/releases/download/1.0.0/{}"
_AKANAMETOV = "https://github.com/akanametov/yolo-face/releases/download/1.0.0/{}"
_GDRIVE_V8N = "https://drive.google.com/uc?id=1qcr9DbgsX3ryrz2uU8w4Xm3cOrRywXqb"

VariantName = Literal["yolov8n", "yolov8m", "yolov8l", "yolov11n", "yolov11s", "yolov11m", "yolov11l",
                      "yolov12n", "yolov12s", "yolov12m", "yolov12l"]

#: person-centric names of the five face keypoints, in model output order
KEYPOINTS = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")


@dataclass(frozen=True)
class YoloVariant:
    """One deepface YOLO key: its weight file, the ultralytics it needs, whether it has keypoints."""

    name: str
    weights: WeightFile
    min_ultralytics: str = "8.1.6"
    #: True: the model returns the 5 face keypoints; False: it has none; None: unknown
    keypoints: bool | None = None
    aliases: tuple[str, ...] = ()


def _weight(variant: str, url: str, size_hint: str) -> WeightFile:
    name = f"{variant}-face.pt"
    return WeightFile(name=name, urls=(url.format(name),), sha256=None, deepface_name=name,
                      description=f"{variant} face detector (ultralytics checkpoint, {size_hint})")


def _variants() -> dict[str, YoloVariant]:
    out = [
        YoloVariant("yolov8n", _weight("yolov8n", _GDRIVE_V8N, "nano"), keypoints=True, aliases=("yolov8",)),
        YoloVariant("yolov8m", _weight("yolov8m", _YAPALAB, "medium")),
        YoloVariant("yolov8l", _weight("yolov8l", _YAPALAB, "large")),
    ]
    for size, label in (("n", "nano"), ("s", "small"), ("m", "medium")):
        out.append(YoloVariant(f"yolov11{size}", _weight(f"yolov11{size}", _AKANAMETOV, label),
                               min_ultralytics="8.3.203", keypoints=False, aliases=(f"yolo11{size}",)))
    out.append(YoloVariant("yolov11l", _weight("yolov11l", _YAPALAB, "large"), aliases=("yolo11l",)))
    for size, label in (("n", "nano"), ("s", "small"), ("m", "medium"), ("l", "large")):
        out.append(YoloVariant(f"yolov12{size}", _weight(f"yolov12{size}", _YAPALAB, label),
                               aliases=(f"yolo12{size}",)))
    return {v.name: v for v in out}


VARIANTS: dict[str, YoloVariant] = _variants()


class YoloConfig(WeightsFileConfig):
    """Options of the YOLO face detectors (deepface defaults)."""

    variant: VariantName = Field("yolov8n", description="which deepface YOLO model (fixed per plugin name)")
    confidence: float = Field(
        0.25, ge=0.0, le=1.0, description="minimum box confidence (deepface: YOLO_MIN_DETECTION_CONFIDENCE, 0.25)")
    iou_threshold: float = Field(0.7, gt=0.0, le=1.0, description="NMS IoU threshold (ultralytics' default 0.7)")
    image_size: int | None = Field(
        None, ge=32, description="inference size (ultralytics imgsz); None: ultralytics' default (640)")
    keypoint_min_confidence: float = Field(
        0.0, ge=0.0, le=1.0,
        description="keypoints whose visibility score is below this are reported as missing "
        "(0: keep all, as deepface)")
    device: DeviceName = Field(
        None, description="'cpu', 'cuda' or 'cuda:N' (see facepipe.devices); None: ultralytics' choice")



def config_for(variant: str) -> type[YoloConfig]:
    """The config class of one plugin name: :class:`YoloConfig` with ``variant`` fixed."""
    fixed: Any = Literal[variant]  # a one-value Literal built at run time
    cls = create_model(
        f"YoloConfig_{variant}",
        __base__=YoloConfig,
        __module__=__name__,
        variant=(fixed, Field(variant, description="the model (fixed by the plugin name)")),
    )
    cls.__doc__ = f"Options of the {variant} face detector (deepface defaults)."
    return cls


CONFIGS: dict[str, type[YoloConfig]] = {name: config_for(name) for name in VARIANTS}


# --------------------------------------------------------------------------------------------
# Pure conversion of ultralytics' result arrays
# --------------------------------------------------------------------------------------------
def faces_from_arrays(xywh: np.ndarray, conf: np.ndarray, keypoints: np.ndarray | None, width: int,
                      height: int, min_confidence: float = 0.0, keypoint_min_confidence: float = 0.0
                      ) -> list[DetectedFace]:
    """Turn one image's YOLO outputs into clipped faces.

    ``xywh`` ``(n, 4)``: box centre x, y, width, height in image pixels (ultralytics'
    ``boxes.xywh``); ``conf`` ``(n,)``; ``keypoints`` ``(n, k, 2)`` or ``(n, k, 3)`` (x, y[,
    visibility]) in image pixels, or None.  Keypoints are mapped in :data:`KEYPOINTS` order
    (model index 0 = image-left eye = the person's right eye); non-finite ones, and ones whose
    visibility is below ``keypoint_min_confidence``, are left as None.
    """
    boxes = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(conf, dtype=np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} confidences")
    kps = None if keypoints is None else np.asarray(keypoints, dtype=np.float64)
    if kps is not None and (kps.ndim != 3 or len(kps) != len(boxes) or kps.shape[2] not in (2, 3)):
        raise ValueError(f"keypoints must be (n, k, 2|3) for n={len(boxes)} boxes, got {kps.shape}")
    faces = []
    for i, ((cx, cy, w, h), score) in enumerate(zip(boxes, scores)):
        if score < min_confidence:
            continue
        points: dict[str, tuple[float, float] | None] = {}
        if kps is not None:
            for name, kp in zip(KEYPOINTS, kps[i]):
                visible = kp.shape[0] < 3 or kp[2] >= keypoint_min_confidence
                ok = visible and bool(np.isfinite(kp[:2]).all())
                points[name] = (float(kp[0]), float(kp[1])) if ok else None
        face = DetectedFace(x=float(cx - w / 2), y=float(cy - h / 2), w=float(w), h=float(h),
                            confidence=float(score), **points)
        faces.append(face.clipped(width, height))
    return faces


def _numpy(value: Any) -> np.ndarray:
    """A torch tensor or array-like -> numpy."""
    for step in ("detach", "cpu", "numpy"):
        if hasattr(value, step) and not isinstance(value, np.ndarray):
            value = getattr(value, step)()
    return np.asarray(value)


def result_arrays(result: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(xywh, conf, keypoints-or-None)`` of one ultralytics ``Results`` object."""
    boxes = result.boxes
    if boxes is None:
        return np.zeros((0, 4)), np.zeros(0), None
    xywh, conf = _numpy(boxes.xywh), _numpy(boxes.conf)
    kps = getattr(result, "keypoints", None)
    data = getattr(kps, "data", None) if kps is not None else None
    return xywh.reshape(-1, 4), conf.reshape(-1), None if data is None else _numpy(data)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


# --------------------------------------------------------------------------------------------
# The detector
# --------------------------------------------------------------------------------------------
class YoloDetector(Detector):
    """A deepface YOLO face model on ultralytics; boxes, and eyes/nose/mouth where the model has them."""

    config_class = YoloConfig
    provides_eyes = False  # per instance: True for the variants known to have keypoints

    def __init__(self, config: YoloConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        cfg: YoloConfig = self.config  # type: ignore[assignment]
        self.variant = VARIANTS[cfg.variant]
        self.provides_eyes = bool(self.variant.keypoints)  # type: ignore[misc]
        self._model: Any = None
        self._lock = threading.Lock()  # ultralytics' predictor is not thread-safe

    def weights_file(self) -> Path:
        """The local checkpoint: ``weights_path`` or the manager's copy of the variant's file."""
        cfg: YoloConfig = self.config  # type: ignore[assignment]
        return Path(self.weights_manager().path(self.variant.weights, override=cfg.weights_path))

    def _load(self) -> Any:
        path = self.weights_file()  # before importing ultralytics: a missing file is the likelier problem
        try:
            import ultralytics
        except ImportError as exc:
            raise PluginUnavailableError(
                f"the {self.variant.name} detector needs the ultralytics package (and a torchvision that "
                f"matches torch): pip install 'facepipe[yolo]' ({exc})") from exc
        version = str(getattr(ultralytics, "__version__", "0"))
        if _version_tuple(version) < _version_tuple(self.variant.min_ultralytics):
            raise PluginUnavailableError(
                f"{self.variant.name} needs ultralytics>={self.variant.min_ultralytics}, found {version}; "
                f"pip install -U 'ultralytics>={self.variant.min_ultralytics}'")
        try:
            return ultralytics.YOLO(str(path))
        except Exception as exc:  # ultralytics raises assorted types for unreadable checkpoints
            raise WeightsError(f"could not load the YOLO checkpoint {path}: {exc}") from exc

    @property
    def model(self) -> Any:
        """The ultralytics ``YOLO`` model (loaded on first use)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        """Detect faces in BGR uint8 images (one ultralytics call for the whole batch)."""
        if len(images) == 0:
            return []
        cfg: YoloConfig = self.config  # type: ignore[assignment]
        arrays = []
        for img in images:  # BGR uint8 (H, W, 3): the pipeline checks the contract
            arrays.append(np.ascontiguousarray(img))
        options: dict[str, Any] = {"conf": cfg.confidence, "iou": cfg.iou_threshold, "verbose": False}
        if cfg.image_size is not None:
            options["imgsz"] = cfg.image_size
        if cfg.device is not None:
            options["device"] = torch_device(cfg.device)
        model = self.model
        with self._lock:
            results = list(model.predict(arrays, **options))
        if len(results) != len(arrays):
            raise RuntimeError(f"ultralytics returned {len(results)} results for {len(arrays)} images")
        out = []
        for arr, result in zip(arrays, results):
            xywh, conf, kps = result_arrays(result)
            out.append(faces_from_arrays(xywh, conf, kps, arr.shape[1], arr.shape[0],
                                         cfg.confidence, cfg.keypoint_min_confidence))
        return out

    def close(self) -> None:
        self._model = None


@hookimpl
def facepipe_register_detectors(register):  # type: ignore[no-untyped-def]
    for variant in VARIANTS.values():
        register(DetectorSpec(
            name=variant.name,
            aliases=variant.aliases,
            factory="facepipe.plugins.detectors.yolo:YoloDetector",
            config=CONFIGS[variant.name],
            weights=(variant.weights,),
            requires=("ultralytics", "torch", "torchvision"),
            extra="yolo",
            license="AGPL-3.0 (ultralytics); the face checkpoints carry their authors' licences",
            # keypoints are read only when the loaded model has them, so no variant promises eyes
            provides_eyes=False,
            description=f"{variant.name} face detector (ultralytics)"
            + ("; eyes, nose and mouth corners" if variant.keypoints else ""),
        ))
