"""YOLO face detectors (deepface's ``yolov8n`` ... ``yolov12l``) on ONNX Runtime or ``ultralytics``.

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

Two engines (option ``engine``):

* ``onnx``: an ONNX export of the model on ONNX Runtime, with letterboxing, decoding and NMS done
  by facepipe (:mod:`facepipe.plugins.detectors.yolo_onnx`); needs no ultralytics, torch or
  torchvision, and an ``.onnx`` file runs no code.  Make the export once from the checkpoint:
  ``yolo export model=yolov8n-face.pt format=onnx`` (ultralytics' command line), then pass it as
  ``weights_path`` or put it in the cache as ``<variant>-face.onnx``.
* ``ultralytics``: ``YOLO(checkpoint).predict``.  A ``.pt`` checkpoint is a Python pickle and
  loading one runs code, so facepipe hands ultralytics a file other than ``.onnx`` only when its
  sha256 is pinned: by the variant's :class:`WeightFile` or by the ``checkpoint_sha256`` option.
  None of the published face checkpoints comes with a digest, so none is pinned here.  ultralytics
  imports and uses ``torchvision``, so it needs a torchvision build that matches torch.

``auto`` (the default) takes ``onnx`` for a ``weights_path`` ending in ``.onnx`` or, without
``weights_path``, when the cache holds ``<variant>-face.onnx``; ``ultralytics`` otherwise.
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
from facepipe.files import sha256_file
from facepipe.plugin_config import WeightsFileConfig
from facepipe.specs import DetectorSpec, WeightFile
from facepipe.types import DetectedFace, Detector, build_once

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

    @property
    def onnx(self) -> WeightFile:
        """The ONNX export of the checkpoint: made by the user (nobody publishes one), found in the cache."""
        return WeightFile(name=f"{self.name}-face.onnx",
                          description=f"{self.name} face detector, ONNX export of {self.weights.name}")


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
        None, description="'cpu', 'cuda' or 'cuda:N' (see facepipe.devices); None: the CPU for onnx, "
        "ultralytics' choice for ultralytics")
    engine: Literal["auto", "onnx", "ultralytics"] = Field(
        "auto", description="onnx: an ONNX export on ONNX Runtime (runs no code); ultralytics: YOLO(checkpoint); "
        "auto: onnx for a .onnx weights_path or a cached <variant>-face.onnx, else ultralytics")
    checkpoint_sha256: str | None = Field(
        None, pattern=r"^[0-9a-fA-F]{64}$",
        description="sha256 of the .pt checkpoint you trust: loading a pickle runs code, so ultralytics "
        "gets a checkpoint only when its digest is pinned (here or by the variant's weight file)")


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
    """A deepface YOLO face model on ONNX Runtime or ultralytics; boxes, and eyes/nose/mouth where the
    model has them."""

    config_class = YoloConfig
    provides_eyes = False  # per instance: True for the variants known to have keypoints

    def __init__(self, config: YoloConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        cfg: YoloConfig = self.config  # type: ignore[assignment]
        self.variant = VARIANTS[cfg.variant]
        self.provides_eyes = bool(self.variant.keypoints)  # type: ignore[misc]
        self._model: Any = None
        self.engine: Literal["onnx", "ultralytics"] | None = None  # known once the model is loaded
        self._lock = threading.Lock()  # ultralytics' predictor is not thread-safe

    def resolve(self) -> tuple[Literal["onnx", "ultralytics"], Path]:
        """The engine and the local weight file it will load (see the module docstring for ``auto``)."""
        cfg: YoloConfig = self.config  # type: ignore[assignment]
        manager = self.weights_manager()
        if cfg.weights_path is not None:
            path = Path(manager.path(self.variant.weights, override=cfg.weights_path))
            if cfg.engine != "auto":
                return cfg.engine, path
            return ("onnx" if path.suffix.lower() == ".onnx" else "ultralytics"), path
        onnx_file = manager.cache_path(self.variant.onnx)
        if cfg.engine == "onnx" or (cfg.engine == "auto" and onnx_file.is_file()):
            if not onnx_file.is_file():
                raise WeightsError(
                    f"engine='onnx' needs an ONNX export of {self.variant.weights.name}; nobody publishes one, so "
                    f"make it once with ultralytics (`yolo export model={self.variant.weights.name} format=onnx`) "
                    f"and put it at {onnx_file}, or pass it as weights_path")
            return "onnx", onnx_file
        return "ultralytics", Path(manager.path(self.variant.weights))

    def weights_file(self) -> Path:
        """The local weight file the configured engine loads."""
        return self.resolve()[1]

    def _check_pinned(self, path: Path) -> None:
        """Refuse a checkpoint whose sha256 is not pinned: unpickling it would run its code."""
        cfg: YoloConfig = self.config  # type: ignore[assignment]
        pinned = cfg.checkpoint_sha256 or self.variant.weights.sha256
        actual = sha256_file(path)
        why = (f"refusing to load {path}: a YOLO checkpoint is a Python pickle and loading it runs code, so "
               f"facepipe gives ultralytics only files whose sha256 is pinned")
        if pinned is None:
            raise WeightsError(
                f"{why}, and none is pinned for {self.variant.name} (its publishers give no digest). If you trust "
                f"this file, pin it with the option checkpoint_sha256='{actual}'; better, export it once to ONNX "
                f"(`yolo export model={path.name} format=onnx`) and run that: engine='onnx' runs no code")
        if actual != pinned.lower():
            raise WeightsError(f"{why}; its sha256 is {actual}, but {pinned.lower()} is pinned")

    def _load(self) -> Any:
        engine, path = self.resolve()  # before importing a runtime: a missing file is the likelier problem
        cfg: YoloConfig = self.config  # type: ignore[assignment]
        if engine == "onnx":
            from facepipe.plugins.detectors.yolo_onnx import YoloOnnx

            try:
                import onnxruntime  # noqa: F401
            except ImportError as exc:
                raise PluginUnavailableError(
                    f"engine='onnx' needs onnxruntime: pip install 'facepipe[onnx]' ({exc})") from exc
            model = YoloOnnx(path, cfg.device)
            self.engine = engine
            return model
        if path.suffix.lower() != ".onnx":
            self._check_pinned(path)
        try:
            import ultralytics
        except ImportError as exc:
            raise PluginUnavailableError(
                f"the {self.variant.name} detector runs a .pt checkpoint with the ultralytics package (and a "
                f"torchvision that matches torch): pip install 'facepipe[yolo]'; or export it to ONNX and use "
                f"engine='onnx' ({exc})") from exc
        version = str(getattr(ultralytics, "__version__", "0"))
        if _version_tuple(version) < _version_tuple(self.variant.min_ultralytics):
            raise PluginUnavailableError(
                f"{self.variant.name} needs ultralytics>={self.variant.min_ultralytics}, found {version}; "
                f"pip install -U 'ultralytics>={self.variant.min_ultralytics}'")
        try:
            model = ultralytics.YOLO(str(path))
        except Exception as exc:  # ultralytics raises assorted types for unreadable checkpoints
            raise WeightsError(f"could not load the YOLO checkpoint {path}: {exc}") from exc
        self.engine = engine
        return model

    @property
    def model(self) -> Any:
        """The loaded model: a :class:`YoloOnnx` runner or an ultralytics ``YOLO`` (loaded on first use)."""
        return build_once(self, "_model", self._lock, self._load)

    def _predict_ultralytics(self, model: Any, arrays: list[np.ndarray]
                             ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        cfg: YoloConfig = self.config  # type: ignore[assignment]
        options: dict[str, Any] = {"conf": cfg.confidence, "iou": cfg.iou_threshold, "verbose": False}
        if cfg.image_size is not None:
            options["imgsz"] = cfg.image_size
        if cfg.device is not None:
            options["device"] = torch_device(cfg.device)
        with self._lock:
            results = list(model.predict(arrays, **options))
        if len(results) != len(arrays):
            raise RuntimeError(f"ultralytics returned {len(results)} results for {len(arrays)} images")
        return [result_arrays(result) for result in results]

    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        """Detect faces in BGR uint8 images (one engine call for the whole batch)."""
        if len(images) == 0:
            return []
        cfg: YoloConfig = self.config  # type: ignore[assignment]
        arrays = []
        for img in images:  # BGR uint8 (H, W, 3): the pipeline checks the contract
            arrays.append(np.ascontiguousarray(img))
        model = self.model
        if self.engine == "onnx":
            found = model.predict(arrays, confidence=cfg.confidence, iou=cfg.iou_threshold,
                                  image_size=cfg.image_size)
        else:
            found = self._predict_ultralytics(model, arrays)
        out = []
        for arr, (xywh, conf, kps) in zip(arrays, found):
            out.append(faces_from_arrays(xywh, conf, kps, arr.shape[1], arr.shape[0],
                                         cfg.confidence, cfg.keypoint_min_confidence))
        return out

    def close(self) -> None:
        self._model = None
        self.engine = None


@hookimpl
def facepipe_register_detectors(register):  # type: ignore[no-untyped-def]
    for variant in VARIANTS.values():
        register(DetectorSpec(
            name=variant.name,
            aliases=variant.aliases,
            factory="facepipe.plugins.detectors.yolo:YoloDetector",
            config=CONFIGS[variant.name],
            weights=(variant.weights,),
            # the ONNX engine needs only these; ultralytics is checked when a .pt is loaded
            requires=("onnxruntime", "cv2"),
            extra="onnx",
            install="pip install 'facepipe[onnx]' to run ONNX exports; .pt checkpoints (sha256 pinned) "
                    "also need 'facepipe[yolo]' (ultralytics and a torchvision matching torch)",
            license="the face checkpoints carry their authors' licences; ultralytics (engine='ultralytics') "
                    "is AGPL-3.0",
            # keypoints are read only when the loaded model has them, so no variant promises eyes
            provides_eyes=False,
            description=f"{variant.name} face detector (ONNX export or ultralytics)"
            + ("; eyes, nose and mouth corners" if variant.keypoints else ""),
        ))
