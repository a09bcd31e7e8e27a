"""Run an ONNX export of a YOLO face model on ONNX Runtime; facepipe does the pre- and post-processing.

This is the YOLO detectors' ``engine="onnx"``: no ultralytics, no torch, no torchvision, and an
``.onnx`` file is data, not code (a ``.pt`` checkpoint is a pickle whose loading runs code).

The graph is what ultralytics' ``export(format="onnx")`` writes for a v8 / v11 / v12 model:

* input ``(B, 3, H, W)`` float32, RGB scaled to 0..1 (``B``, ``H``, ``W`` fixed or symbolic);
* output ``(B, 4 + nc + k·d, N)``: per candidate box the centre x, y, width, height in input
  pixels, ``nc`` class scores (already sigmoid), then ``k`` keypoints of ``d`` values (x, y in
  input pixels[, visibility already sigmoid]);
* metadata ``names`` (the classes) and, for pose models, ``kpt_shape`` (``[k, d]``).

Without that metadata the layout is inferred for one class: 5 channels → no keypoints, otherwise
``k·3`` or ``k·2`` keypoint values.  The image is letterboxed to ``H × W`` (aspect kept, grey
114 padding, centred), as ultralytics does for a fixed-size export.  Post-processing follows
ultralytics' ``predict``: scores strictly above ``confidence``, greedy NMS over the best class
(class-agnostic: these are face detectors), at most ``max_det`` boxes, then the letterbox is undone
and the boxes clipped to the image.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from facepipe.engines.boxes import nms
from facepipe.engines.onnx_runtime import onnx_session
from facepipe.errors import WeightsError

__all__ = ["DEFAULT_SIZE", "Letterbox", "OutputLayout", "YoloOnnx", "decode", "letterbox", "layout_from"]

#: the input side of a model whose export has symbolic height / width (ultralytics' imgsz default)
DEFAULT_SIZE = 640
#: ultralytics' predict caps: boxes handed to NMS, boxes kept
MAX_NMS = 30000
MAX_DET = 300
PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """Where an image went inside the network input: scale factor and top-left offset."""

    gain: float
    left: int
    top: int

    def to_image(self, xy: np.ndarray) -> np.ndarray:
        """Input-pixel x, y pairs (last axis) back to image pixels."""
        out = np.array(xy, dtype=np.float64, copy=True)
        out[..., 0] = (out[..., 0] - self.left) / self.gain
        out[..., 1] = (out[..., 1] - self.top) / self.gain
        return out


def letterbox(image: np.ndarray, height: int, width: int) -> tuple[np.ndarray, Letterbox]:
    """Resize ``image`` (H, W, 3) to fit ``height × width`` keeping its aspect, centred on grey."""
    import cv2

    h0, w0 = image.shape[:2]
    gain = min(height / h0, width / w0)
    new_w, new_h = max(int(round(w0 * gain)), 1), max(int(round(h0 * gain)), 1)
    resized = image if (new_w, new_h) == (w0, h0) else cv2.resize(image, (new_w, new_h),
                                                                  interpolation=cv2.INTER_LINEAR)
    # ultralytics splits an odd padding with round(d - 0.1): the extra pixel goes right / bottom
    left, top = int(round((width - new_w) / 2 - 0.1)), int(round((height - new_h) / 2 - 0.1))
    canvas = np.full((height, width, 3), PAD_VALUE, dtype=np.uint8)
    canvas[top:top + new_h, left:left + new_w] = resized
    return canvas, Letterbox(gain=gain, left=left, top=top)


def to_input(canvases: Sequence[np.ndarray]) -> np.ndarray:
    """BGR uint8 canvases -> the network's (B, 3, H, W) RGB float32 in 0..1."""
    batch = np.stack(canvases)[..., ::-1].transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32) / np.float32(255.0)


@dataclass(frozen=True)
class OutputLayout:
    """How the channels of the output are split: classes, then ``keypoints × values`` (0 × 0: none)."""

    classes: int = 1
    keypoints: int = 0
    values: int = 0

    @property
    def channels(self) -> int:
        return 4 + self.classes + self.keypoints * self.values


def _literal(text: str | None) -> Any:
    """A Python literal from the export's metadata (``ast.literal_eval``: never runs code)."""
    if not text:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None


def layout_from(metadata: dict[str, str], channels: int | None) -> OutputLayout:
    """The output layout from ultralytics' metadata (``names``, ``kpt_shape``), else from ``channels``."""
    names = _literal(metadata.get("names"))
    classes = len(names) if isinstance(names, (dict, list, tuple)) and names else 1
    kpt = _literal(metadata.get("kpt_shape"))
    if isinstance(kpt, (list, tuple)) and len(kpt) == 2:
        layout = OutputLayout(classes, int(kpt[0]), int(kpt[1]))
    elif channels is None:
        layout = OutputLayout(classes)
    else:
        rest = channels - 4 - classes
        values = 3 if rest % 3 == 0 else 2 if rest % 2 == 0 else 0
        if rest < 0 or (rest and not values):
            raise WeightsError(f"cannot read a YOLO output with {channels} channels and {classes} class(es)")
        layout = OutputLayout(classes, rest // values if values else 0, values if rest else 0)
    if channels is not None and layout.channels != channels:
        raise WeightsError(f"the YOLO export's output has {channels} channels; its metadata says "
                           f"{layout.classes} class(es) and {layout.keypoints}×{layout.values} keypoint values "
                           f"({layout.channels})")
    return layout


def decode(output: np.ndarray, layout: OutputLayout, box: Letterbox, width: int, height: int, *,
           confidence: float, iou: float, max_det: int = MAX_DET
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One image's raw output ``(C, N)`` -> ``(xywh, conf, keypoints-or-None)`` in image pixels.

    The same arrays as ultralytics' ``Results`` (box centres, widths and heights; keypoints
    ``(n, k, d)``), best score first, so both engines share one conversion to faces.
    """
    pred = np.asarray(output, dtype=np.float32)
    if pred.ndim != 2 or layout.channels not in pred.shape:
        raise WeightsError(f"a YOLO output of shape {pred.shape} does not fit {layout.channels} channels")
    if pred.shape[0] != layout.channels:  # (N, C) exports
        pred = pred.T
    scores = pred[4:4 + layout.classes].max(axis=0)
    candidates = np.flatnonzero(scores > confidence)
    candidates = candidates[np.argsort(-scores[candidates], kind="stable")][:MAX_NMS]
    cx, cy, w, h = (pred[i, candidates].astype(np.float64) for i in range(4))
    corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kept = candidates[nms(corners, scores[candidates], iou)[:max_det]] if len(candidates) else candidates
    cx, cy, w, h = (pred[i, kept].astype(np.float64) for i in range(4))
    top_left = box.to_image(np.stack([cx - w / 2, cy - h / 2], axis=1))
    bottom_right = box.to_image(np.stack([cx + w / 2, cy + h / 2], axis=1))
    x1, x2 = np.clip(top_left[:, 0], 0, width), np.clip(bottom_right[:, 0], 0, width)
    y1, y2 = np.clip(top_left[:, 1], 0, height), np.clip(bottom_right[:, 1], 0, height)
    xywh = np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=1)
    keypoints = None
    if layout.keypoints:
        raw = pred[4 + layout.classes:, kept].T.reshape(len(kept), layout.keypoints, layout.values)
        keypoints = raw.astype(np.float64)
        keypoints[..., :2] = box.to_image(keypoints[..., :2])
        keypoints[..., 0] = np.clip(keypoints[..., 0], 0, width)
        keypoints[..., 1] = np.clip(keypoints[..., 1], 0, height)
    return xywh, scores[kept].astype(np.float64), keypoints


def _side(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None  # symbolic dims are strings


class YoloOnnx:
    """An ONNX Runtime session of a YOLO export, detecting in whole images."""

    def __init__(self, path: str | os.PathLike[str], device: str | None = None) -> None:
        self.path = path
        self.session = onnx_session(path, device)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise WeightsError(f"{path} is not a YOLO export: expected one (B, 3, H, W) input")
        self.input_name = inputs[0].name
        batch, _, height, width = inputs[0].shape
        self.fixed_batch = _side(batch)
        self.fixed_size = (_side(height), _side(width))
        out_shape = outputs[0].shape
        channels = _side(out_shape[1]) if len(out_shape) == 3 else None
        if channels is not None and _side(out_shape[2]) is not None and out_shape[2] < channels:
            channels = out_shape[2]  # (B, N, C) exports
        metadata = dict(self.session.get_modelmeta().custom_metadata_map or {})
        self.layout = layout_from(metadata, channels)

    def input_size(self, requested: int | None) -> tuple[int, int]:
        """(height, width) of the network input: the export's own when fixed, else ``requested``."""
        height, width = self.fixed_size
        if height and width:
            if requested is not None and (requested, requested) != (height, width):
                raise WeightsError(f"{self.path} was exported for {height}×{width} input; image_size={requested} "
                                   f"needs an export with that size (or dynamic=True)")
            return height, width
        side = requested or DEFAULT_SIZE
        return side, side

    def raw(self, batch: np.ndarray) -> np.ndarray:
        """The network's output for a prepared ``(B, 3, H, W)`` batch (one run per image if the export
        fixes batch 1)."""
        step = self.fixed_batch or len(batch)
        parts = [np.asarray(self.session.run(None, {self.input_name: batch[i:i + step]})[0])
                 for i in range(0, len(batch), step)]
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def predict(self, images: Sequence[np.ndarray], *, confidence: float, iou: float,
                image_size: int | None = None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """``(xywh, conf, keypoints)`` per BGR uint8 image, in image pixels."""
        height, width = self.input_size(image_size)
        boxed = [letterbox(img, height, width) for img in images]
        output = self.raw(to_input([canvas for canvas, _ in boxed]))
        return [decode(out, self.layout, box, img.shape[1], img.shape[0], confidence=confidence, iou=iou)
                for out, (_, box), img in zip(output, boxed, images)]
