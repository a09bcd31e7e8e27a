"""``retinaface``: RetinaFace (ResNet-50 backbone, InsightFace's MXNet model as used by the
``retina-face`` package and deepface), rebuilt in Keras 3.

Network (fact sheet §4; weights: deepface's ``retinaface.h5``, loaded by position):

* Backbone: a pre-activation ResNet-50 v2 on RGB float input in 0..255, with a frozen
  BatchNorm on the raw input (``bn_data``); stem 7x7/2 conv + BN + ReLU + 3x3/2 max-pool, four
  stages of bottleneck units (3, 4, 6, 3 units; 64/128/256/512 inner, 4x outer channels), the
  stride on the 3x3 conv, explicit zero padding before every 3x3 conv.  All BatchNorms use
  epsilon 2e-5.
* Feature pyramid from three taps: stride 8 (``stage3_unit1_relu2``), 16 (``stage4_unit1_relu2``)
  and 32 (after the final ``bn1`` + ReLU); 1x1 lateral convs, nearest 2x upsampling of the coarser
  level, **cropped to the finer level's size** (needed when an input side is not a multiple of
  32), added, then a 3x3 "aggregation" conv.
* An SSH context module per level, then three 1x1 heads per level: class scores (2 anchors x
  {background, face}, turned into per-anchor softmax probabilities laid out as
  ``[bg_a0, bg_a1, face_a0, face_a1]``), box deltas (2 x 4) and landmark deltas (2 x 5 x 2).

Outputs, in this order: stride 32 (probs, boxes, landmarks), stride 16 (...), stride 8 (...).

Decoding (pure numpy, :func:`decode_outputs`): anchors per stride (two square anchors per cell,
sides 512/256 px at stride 32, 128/64 at 16, 32/16 at 8, the package's legacy "+1" box
convention), box and landmark delta decoding, score threshold, greedy NMS at IoU 0.4, clipping
and rescaling to the original image.

Preprocessing: BGR -> RGB float32 in 0..255, no mean/std.  Scale rule (config): the
``retina-face`` package scales the image so its short side is ``target_size`` (1024) unless the
long side would then exceed ``max_size`` (1980).  deepface calls it with upscaling *allowed*;
facepipe defaults to ``allow_upscaling=False`` (only large images are shrunk), which is much
cheaper on CPU and keeps small faces at their native resolution.  Set ``allow_upscaling=True``
for deepface's exact behaviour.

Landmarks are person-centric: the model's five points are, in image terms for a frontal face,
image-left eye, image-right eye, nose, image-left mouth corner, image-right mouth corner; the
package names them right_eye, left_eye, nose, mouth_right, mouth_left (the person's sides), and
so does facepipe.
"""

from __future__ import annotations

import threading
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import Field

from facepipe import hookimpl
from facepipe.devices import DeviceName
from facepipe.engines.boxes import nms as shared_nms
from facepipe.errors import WeightsError
from facepipe.engines.keras_runner import KerasModelMixin, device_scope
from facepipe.plugin_config import WeightsFileConfig
from facepipe.specs import DetectorSpec, WeightFile
from facepipe.types import DetectedFace, Detector

RETINAFACE_WEIGHTS = WeightFile(
    name="retinaface.h5",
    urls=(
        "https://github.com/serengil/deepface_models/releases/download/v1.0/retinaface.h5",
        "https://huggingface.co/serengil/deepface/resolve/main/retinaface.h5",
    ),
    sha256=None,
    deepface_name="retinaface.h5",
    description="RetinaFace ResNet-50 (retina-face / deepface Keras 2 HDF5 weights, ~119 MB)",
)

_BN_EPS = 1.9999999494757503e-05  # float32(2e-5), as stored by the MXNet conversion
#: (units, inner channels) per backbone stage; outer channels are 4x inner
_STAGES: tuple[tuple[int, int], ...] = ((3, 64), (4, 128), (6, 256), (3, 512))
#: feature strides of the three output levels, in output order
STRIDES: tuple[int, ...] = (32, 16, 8)
#: anchor scales per stride (anchor side = 16 * scale), in the order the heads emit them
ANCHOR_SCALES: dict[int, tuple[float, float]] = {32: (32.0, 16.0), 16: (8.0, 4.0), 8: (2.0, 1.0)}
ANCHORS_PER_CELL = 2
#: person-centric names of the five landmarks, in model output order
LANDMARKS = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")


class RetinaFaceConfig(WeightsFileConfig):
    """Options of the RetinaFace detector (deepface defaults unless noted)."""

    threshold: float = Field(0.9, ge=0.0, le=1.0, description="minimum face probability (deepface: 0.9)")
    nms_threshold: float = Field(0.4, gt=0.0, le=1.0, description="IoU above which the weaker box is dropped")
    allow_upscaling: bool = Field(
        False,
        description="scale small images up so the short side reaches target_size (deepface/retina-face "
        "default: True); False only shrinks images whose short side exceeds target_size",
    )
    target_size: int = Field(1024, ge=32, description="short side the image is scaled to (see allow_upscaling)")
    max_size: int = Field(1980, ge=32, description="the long side never exceeds this after scaling")
    device: DeviceName = Field(
        None, description="'cpu', 'cuda' or 'cuda:N' (see facepipe.devices); None = backend default")



# --------------------------------------------------------------------------------------------
# The network (Keras 3; keras is imported only inside these functions)
# --------------------------------------------------------------------------------------------
_CUSTOM: dict[str, type] = {}


def _custom_layers() -> dict[str, type]:
    """The two weightless custom layers, defined on first use (keras must not load at import)."""
    if _CUSTOM:
        return _CUSTOM
    import keras
    from keras import ops

    class CropLike(keras.layers.Layer):
        """Centre-crops ``x`` (N, H1, W1, C) to the spatial size of ``ref`` (N, H2, W2, *)."""

        def call(self, inputs: Any) -> Any:
            x, ref = inputs
            xs, rs = ops.shape(x), ops.shape(ref)
            top, left = (xs[1] - rs[1]) // 2, (xs[2] - rs[2]) // 2
            return x[:, top:top + rs[1], left:left + rs[2], :]

        def compute_output_shape(self, input_shape: Any) -> Any:
            x_shape, ref_shape = input_shape
            return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])

    class AnchorSoftmax(keras.layers.Layer):
        """Scores ``[bg_a0, bg_a1, face_a0, face_a1]`` -> per-anchor softmax, same layout."""

        def call(self, x: Any) -> Any:
            p0 = ops.softmax(ops.stack([x[..., 0], x[..., 2]], axis=-1), axis=-1)
            p1 = ops.softmax(ops.stack([x[..., 1], x[..., 3]], axis=-1), axis=-1)
            return ops.stack([p0[..., 0], p1[..., 0], p0[..., 1], p1[..., 1]], axis=-1)

        def compute_output_shape(self, input_shape: Any) -> Any:
            return tuple(input_shape)

    _CUSTOM.update(CropLike=CropLike, AnchorSoftmax=AnchorSoftmax)
    return _CUSTOM


def _bn(x: Any, name: str) -> Any:
    from keras import layers

    return layers.BatchNormalization(epsilon=_BN_EPS, name=name)(x)


def _conv(x: Any, filters: int, kernel: int, name: str, stride: int = 1, bias: bool = True) -> Any:
    """Conv with the MXNet-style explicit symmetric zero padding (k // 2) and 'valid' mode."""
    from keras import layers

    if kernel > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
    return layers.Conv2D(filters, kernel, strides=stride, padding="valid", use_bias=bias, name=name)(x)


def _relu(x: Any, name: str) -> Any:
    from keras import layers

    return layers.ReLU(name=name)(x)


def _bottleneck(x: Any, inner: int, stride: int, first: bool, name: str, taps: dict[str, Any]) -> Any:
    from keras import layers

    pre = _relu(_bn(x, f"{name}_bn1"), f"{name}_relu1")
    y = _conv(pre, inner, 1, f"{name}_conv1", bias=False)
    y = _relu(_bn(y, f"{name}_bn2"), f"{name}_relu2")
    taps[f"{name}_relu2"] = y
    y = _conv(y, inner, 3, f"{name}_conv2", stride=stride, bias=False)
    y = _relu(_bn(y, f"{name}_bn3"), f"{name}_relu3")
    y = _conv(y, inner * 4, 1, f"{name}_conv3", bias=False)
    # the first unit of a stage projects the (pre-activated) input; the add's input order is the
    # package's (main branch first), which fixes the positional weight order
    shortcut = _conv(pre, inner * 4, 1, f"{name}_sc", stride=stride, bias=False) if first else x
    return layers.Add(name=f"{name}_plus")([y, shortcut])


def _conv_bn_relu(x: Any, filters: int, kernel: int, name: str, relu: bool = True) -> Any:
    y = _bn(_conv(x, filters, kernel, name), f"{name}_bn")
    return _relu(y, f"{name}_relu") if relu else y


def _ssh(x: Any, name: str) -> Any:
    """SSH detection context module: 3x3 (256) || 3x3 (128) || 2x 3x3 (128), concat, ReLU."""
    from keras import layers

    det = _conv_bn_relu(x, 256, 3, f"{name}_det_conv1", relu=False)
    ctx = _conv_bn_relu(x, 128, 3, f"{name}_det_context_conv1")
    ctx2 = _conv_bn_relu(ctx, 128, 3, f"{name}_det_context_conv2", relu=False)
    ctx3 = _conv_bn_relu(ctx, 128, 3, f"{name}_det_context_conv3_1")
    ctx3 = _conv_bn_relu(ctx3, 128, 3, f"{name}_det_context_conv3_2", relu=False)
    y = layers.Concatenate(axis=3, name=f"{name}_det_concat")([det, ctx2, ctx3])
    return _relu(y, f"{name}_det_concat_relu")


def build_retinaface() -> Any:
    """RetinaFace ResNet-50 as a Keras 3 functional model: (N, H, W, 3) RGB 0..255 -> 9 heads.

    Any H, W >= 32 work; the model's weighted layers (153) are in the order of deepface's
    ``retinaface.h5``, so the file loads by position.
    """
    import keras
    from keras import layers

    custom = _custom_layers()
    crop_like, anchor_softmax = custom["CropLike"], custom["AnchorSoftmax"]
    data = keras.Input(shape=(None, None, 3), name="data")
    x = _bn(data, "bn_data")
    x = _relu(_bn(_conv(x, 64, 7, "conv0", stride=2, bias=False), "bn0"), "relu0")
    x = layers.ZeroPadding2D(1, name="pooling0_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="pooling0")(x)
    taps: dict[str, Any] = {}
    for stage, (units, inner) in enumerate(_STAGES, start=1):
        for unit in range(1, units + 1):
            stride = 2 if (unit == 1 and stage > 1) else 1
            x = _bottleneck(x, inner, stride, unit == 1, f"stage{stage}_unit{unit}", taps)
    c3 = _relu(_bn(x, "bn1"), "relu1")

    # feature pyramid (the lateral of each level is built before its upsampled neighbour's add)
    c3 = _conv_bn_relu(c3, 256, 1, "ssh_c3_lateral")
    c2 = _conv_bn_relu(taps["stage4_unit1_relu2"], 256, 1, "ssh_c2_lateral")
    up = layers.UpSampling2D(2, interpolation="nearest", name="ssh_c3_up")(c3)
    c2 = layers.Add(name="ssh_c2_plus")([c2, crop_like(name="crop0")([up, c2])])
    c2 = _conv_bn_relu(c2, 256, 3, "ssh_c2_aggr")
    c1 = _conv_bn_relu(taps["stage3_unit1_relu2"], 256, 1, "ssh_m1_red_conv")
    up = layers.UpSampling2D(2, interpolation="nearest", name="ssh_m2_red_up")(c2)
    c1 = layers.Add(name="ssh_c1_plus")([c1, crop_like(name="crop1")([up, c1])])
    c1 = _conv_bn_relu(c1, 256, 3, "ssh_c1_aggr")

    outputs = []
    for stride, feat, module in ((32, c3, "ssh_m3"), (16, c2, "ssh_m2"), (8, c1, "ssh_m1")):
        f = _ssh(feat, module)
        scores = layers.Conv2D(4, 1, name=f"face_rpn_cls_score_stride{stride}")(f)
        outputs.append(anchor_softmax(name=f"face_rpn_cls_prob_reshape_stride{stride}")(scores))
        outputs.append(layers.Conv2D(8, 1, name=f"face_rpn_bbox_pred_stride{stride}")(f))
        outputs.append(layers.Conv2D(20, 1, name=f"face_rpn_landmark_pred_stride{stride}")(f))
    return keras.Model(data, outputs, name="retinaface")


def make_runner(model: Any) -> Callable[[np.ndarray], list[np.ndarray]]:
    """A compiled ``(N, H, W, 3) float32 -> [9 heads]`` numpy function for ``model``.

    TensorFlow: one ``tf.function`` with a shape-polymorphic signature (traced once, then reused
    for every image size).  torch: eager under ``inference_mode``.  Others: ``predict_on_batch``.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
                     reduce_retracing=True)
        def run(x: Any) -> Any:
            return model(x, training=False)

        return lambda batch: [np.asarray(t) for t in run(tf.constant(batch))]
    if backend == "torch":
        import torch

        def call(batch: np.ndarray) -> list[np.ndarray]:
            with torch.inference_mode():
                outs = model(keras.ops.convert_to_tensor(batch), training=False)
            return [np.asarray(keras.ops.convert_to_numpy(t)) for t in outs]

        return call
    return lambda batch: [np.asarray(t) for t in model.predict_on_batch(batch)]


# --------------------------------------------------------------------------------------------
# Pure numpy pre- and post-processing
# --------------------------------------------------------------------------------------------
def scale_factor(height: int, width: int, target_size: int = 1024, max_size: int = 1980,
                 allow_upscaling: bool = False) -> float:
    """The retina-face package's resize factor for an image of ``height`` x ``width``."""
    short, long = min(height, width), max(height, width)
    scale = target_size / float(short)
    if not allow_upscaling:
        scale = min(1.0, scale)
    if np.round(scale * long) > max_size:
        scale = max_size / float(long)
    return scale


def preprocess(image: np.ndarray, scale: float) -> np.ndarray:
    """BGR uint8 ``(H, W, 3)`` -> the model input ``(1, h, w, 3)``: RGB float32 in 0..255,
    resized by ``scale`` (bilinear, OpenCV's rounding of the output size) when it is not 1."""
    if scale != 1.0:
        import cv2

        image = cv2.resize(image, None, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(image[None, :, :, ::-1], dtype=np.float32)


def base_anchors(stride: int) -> np.ndarray:
    """The two ``(x1, y1, x2, y2)`` anchors of one cell at ``stride`` (cell origin at 0, 0).

    Square anchors of side ``16 * scale`` centred on (7.5, 7.5), inclusive pixel corners as in the
    original RCNN code: e.g. stride 8 -> ``[-8, -8, 23, 23]`` and ``[0, 0, 15, 15]``.
    """
    sides = 16.0 * np.asarray(ANCHOR_SCALES[stride], dtype=np.float64)
    half = 0.5 * (sides - 1.0)
    return np.stack([7.5 - half, 7.5 - half, 7.5 + half, 7.5 + half], axis=1)


def anchor_grid(height: int, width: int, stride: int) -> np.ndarray:
    """All anchors of a ``height`` x ``width`` feature map, ``(height * width * 2, 4)``, ordered
    row, column, anchor - the order of the heads' values after a plain reshape."""
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    shifts = np.stack([xs, ys, xs, ys], axis=-1).reshape(-1, 1, 4) * float(stride)
    return (shifts + base_anchors(stride)[None]).reshape(-1, 4)


def decode_boxes(anchors: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """Apply ``(dx, dy, dw, dh)`` deltas to ``(x1, y1, x2, y2)`` anchors (legacy +1 widths)."""
    widths = anchors[:, 2] - anchors[:, 0] + 1.0
    heights = anchors[:, 3] - anchors[:, 1] + 1.0
    cx = anchors[:, 0] + 0.5 * (widths - 1.0) + deltas[:, 0] * widths
    cy = anchors[:, 1] + 0.5 * (heights - 1.0) + deltas[:, 1] * heights
    half_w = 0.5 * (np.exp(deltas[:, 2]) * widths - 1.0)
    half_h = 0.5 * (np.exp(deltas[:, 3]) * heights - 1.0)
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)


def decode_landmarks(anchors: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """``(K, 5, 2)`` landmark deltas relative to the anchor centre, in anchor-size units."""
    widths = anchors[:, 2] - anchors[:, 0] + 1.0
    heights = anchors[:, 3] - anchors[:, 1] + 1.0
    cx = anchors[:, 0] + 0.5 * (widths - 1.0)
    cy = anchors[:, 1] + 0.5 * (heights - 1.0)
    out = np.empty_like(deltas, dtype=np.float64)
    out[..., 0] = deltas[..., 0] * widths[:, None] + cx[:, None]
    out[..., 1] = deltas[..., 1] * heights[:, None] + cy[:, None]
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS with inclusive-pixel areas, as the retina-face package: indices kept, best first."""
    return shared_nms(boxes, scores, iou_threshold, pixel_offset=1.0)


def decode_outputs(outputs: Sequence[np.ndarray], input_hw: tuple[int, int], scale: float = 1.0,
                   threshold: float = 0.9, nms_threshold: float = 0.4
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn one image's 9 head outputs into detections.

    ``outputs``: the heads for ONE image (leading batch axis of 1 allowed), in model order;
    ``input_hw``: the size of the network input (boxes are clipped to it before rescaling);
    ``scale``: the factor the original image was resized by.  Returns ``boxes (n, 4)`` x1, y1, x2,
    y2, ``landmarks (n, 5, 2)`` in :data:`LANDMARKS` order and ``scores (n,)``, in original-image
    pixels, best first.
    """
    if len(outputs) != 3 * len(STRIDES):
        raise ValueError(f"expected {3 * len(STRIDES)} head outputs, got {len(outputs)}")
    all_boxes, all_marks, all_scores = [], [], []
    for level, stride in enumerate(STRIDES):
        probs, box_d, mark_d = (np.asarray(o, dtype=np.float64) for o in outputs[3 * level:3 * level + 3])
        probs, box_d, mark_d = (a[0] if a.ndim == 4 else a for a in (probs, box_d, mark_d))
        height, width = box_d.shape[:2]
        anchors = anchor_grid(height, width, stride)
        scores = probs[..., ANCHORS_PER_CELL:].reshape(-1)  # face probabilities of the 2 anchors
        keep = np.flatnonzero(scores >= threshold)
        if keep.size == 0:
            continue
        anchors = anchors[keep]
        boxes = decode_boxes(anchors, box_d.reshape(-1, 4)[keep])
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0.0, input_hw[1] - 1.0)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0.0, input_hw[0] - 1.0)
        all_boxes.append(boxes / scale)
        all_marks.append(decode_landmarks(anchors, mark_d.reshape(-1, 5, 2)[keep]) / scale)
        all_scores.append(scores[keep])
    if not all_boxes:
        return np.zeros((0, 4)), np.zeros((0, 5, 2)), np.zeros(0)
    boxes, marks, scores = np.concatenate(all_boxes), np.concatenate(all_marks), np.concatenate(all_scores)
    keep = nms(boxes, scores, nms_threshold)
    return boxes[keep], marks[keep], scores[keep]


def to_faces(boxes: np.ndarray, landmarks: np.ndarray, scores: np.ndarray, width: int, height: int
             ) -> list[DetectedFace]:
    """Detections in original-image pixels -> clipped :class:`DetectedFace` records."""
    faces = []
    for box, marks, score in zip(boxes, landmarks, scores):
        points = {name: (float(p[0]), float(p[1])) for name, p in zip(LANDMARKS, marks)}
        x1, y1, x2, y2 = (float(v) for v in box)
        faces.append(DetectedFace(x=x1, y=y1, w=x2 - x1, h=y2 - y1, confidence=float(score),
                                  **points).clipped(width, height))
    return faces


# --------------------------------------------------------------------------------------------
# The detector
# --------------------------------------------------------------------------------------------
class RetinaFaceDetector(KerasModelMixin, Detector):
    """RetinaFace ResNet-50: boxes, eyes, nose and mouth corners (deepface's ``retinaface``)."""

    config_class = RetinaFaceConfig
    provides_eyes = True
    weight_file = RETINAFACE_WEIGHTS
    manifest_name = "RetinaFace"

    def __init__(self, config: RetinaFaceConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        self._keras_lock = threading.Lock()
        self._keras_model = None
        self._runner: Callable[[np.ndarray], list[np.ndarray]] | None = None
        self._runner_lock = threading.Lock()

    def build_model(self) -> Any:
        return build_retinaface()

    def load_weights(self, model: Any, path: Path) -> None:
        from facepipe.engines.keras_h5 import load_h5_positional

        try:
            load_h5_positional(model, path)
        except WeightsError as exc:
            raise WeightsError(f"{path} is not a RetinaFace weights file in deepface's layout: {exc}") from exc

    def raw_outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        """The 9 head outputs for a preprocessed ``(N, H, W, 3)`` batch (RGB, 0..255)."""
        model = self.model
        with self._runner_lock:
            if self._runner is None:
                self._runner = make_runner(model)
        with device_scope(self.config.device):  # type: ignore[attr-defined]
            return self._runner(np.ascontiguousarray(batch, dtype=np.float32))

    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        """Detect faces in BGR uint8 images.  Images are run one at a time (each has its own
        size, and the network is fully convolutional, so batching would need padding that
        changes the results at the borders)."""
        return [self._detect_one(img) for img in images]

    def _detect_one(self, img: np.ndarray) -> list[DetectedFace]:
        cfg: RetinaFaceConfig = self.config  # type: ignore[assignment]
        arr = np.asarray(img)  # BGR uint8 (H, W, 3): the pipeline checks the contract
        height, width = arr.shape[:2]
        scale = scale_factor(height, width, cfg.target_size, cfg.max_size, cfg.allow_upscaling)
        tensor = preprocess(arr, scale)
        outputs = self.raw_outputs(tensor)
        boxes, marks, scores = decode_outputs(outputs, tensor.shape[1:3], scale, cfg.threshold, cfg.nms_threshold)
        return to_faces(boxes, marks, scores, width, height)

    def close(self) -> None:
        self._runner = None
        super().close()


@hookimpl
def facepipe_register_detectors(register):  # type: ignore[no-untyped-def]
    register(DetectorSpec(
        name="retinaface",
        factory="facepipe.plugins.detectors.retinaface:RetinaFaceDetector",
        config=RetinaFaceConfig,
        weights=(RETINAFACE_WEIGHTS,),
        requires=("keras", "h5py", "cv2"),
        extra="retinaface",
        license="MIT (retina-face / InsightFace RetinaFace weights)",
        description="RetinaFace ResNet-50 (Keras 3); box, eyes, nose and mouth corners",
    ))
