"""``fastmtcnn``: the MTCNN cascade (P-Net → R-Net → O-Net) in PyTorch.

deepface's ``fastmtcnn`` backend wraps facenet-pytorch's MTCNN.  facenet-pytorch itself cannot be
imported in a current environment (it imports torchvision, whose wheels do not match CPU torch
builds), so this module carries its own networks and cascade and only *reads* the three weight
files that the facenet-pytorch distribution ships (``facenet_pytorch/data/{p,r,o}net.pt``) or
that the weights manager downloads from the facenet-pytorch repository.  No torchvision: NMS is
done in numpy; the pyramid and the R/O-Net crops are area-resampled with OpenCV (faster than
torch's ``area`` interpolation), and the nets run on channels-last tensors (about 2x faster on CPU).

Differences from facenet-pytorch worth knowing:

* crops for R-Net/O-Net are zero-padded where a candidate box leaves the image (as the original
  MTCNN does) instead of stretching the clipped part;
* coordinates are 0-based continuous pixel coordinates throughout;
* faces are returned largest first (facenet-pytorch's ``select_largest=True`` ordering).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pydantic import Field, field_validator

from facepipe import hookimpl
from facepipe.devices import DeviceName, torch_device
from facepipe.engines.boxes import nms as shared_nms
from facepipe.errors import ConfigError, WeightsError
from facepipe.specs import DetectorSpec, PackageFile, WeightFile
from facepipe.types import DetectedFace, Detector, PluginConfig

_REPO_RAW = "https://github.com/timesler/facenet-pytorch/raw/{ref}/data/{name}"


def _weight(net: str, sha256: str, size: int) -> WeightFile:
    fname = f"{net}.pt"
    return WeightFile(
        name=f"fastmtcnn_{fname}",
        urls=tuple(_REPO_RAW.format(ref=ref, name=fname) for ref in ("v2.6.0", "master")),
        sha256=sha256,
        size=size,
        package_files=(PackageFile("facenet_pytorch", f"data/{fname}", sha256=sha256, size=size),),
        description=f"MTCNN {net[0].upper()}-Net state_dict (facenet-pytorch 2.6.0, MIT)",
    )


PNET_WEIGHTS = _weight("pnet", "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f", 28570)
RNET_WEIGHTS = _weight("rnet", "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86", 403147)
ONET_WEIGHTS = _weight("onet", "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d", 1559269)
WEIGHTS = (PNET_WEIGHTS, RNET_WEIGHTS, ONET_WEIGHTS)

# P-Net geometry: a 12x12 window, output stride 2.
_CELL = 12
_STRIDE = 2
# Per-scale and cross-scale NMS IoU thresholds of the original cascade.
_NMS_SCALE, _NMS_STAGE = 0.5, 0.7
# Pixel budget of one batched cascade run (same-size images are stacked up to this many pixels).
_BATCH_PIXELS = 8_000_000


class FastMtcnnConfig(PluginConfig):
    """Options of the PyTorch MTCNN detector (defaults are facenet-pytorch's / deepface's)."""

    min_face_size: int = Field(20, ge=12, description="smallest face side (pixels) the pyramid looks for")
    thresholds: tuple[float, float, float] = Field(
        (0.6, 0.7, 0.7), description="score thresholds of P-Net, R-Net and O-Net")
    factor: float = Field(0.709, gt=0.0, lt=1.0, description="scale step of the image pyramid")
    device: DeviceName = Field("cpu", description="'cpu', 'cuda' or 'cuda:N' (see facepipe.devices)")
    batch_size: int = Field(8, ge=1, description="same-size images run through the cascade together")
    weights_dir: Path | None = Field(
        None, description="folder holding pnet.pt, rnet.pt, onet.pt (overrides the weights manager)")

    @field_validator("thresholds")
    @classmethod
    def _check_thresholds(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if not all(0.0 <= t <= 1.0 for t in v):
            raise ValueError(f"thresholds must lie in [0, 1], got {v}")
        return v


# --------------------------------------------------------------------------------------------
# Networks (built lazily so that importing this module never imports torch)
# --------------------------------------------------------------------------------------------
_NETS: dict[str, Any] = {}


def _net_classes() -> dict[str, Any]:
    """P/R/O-Net as torch modules whose parameter names match facenet-pytorch's state_dicts."""
    if _NETS:
        return _NETS
    import torch
    from torch import nn

    def flatten_caffe(x: "torch.Tensor") -> "torch.Tensor":
        # The weights come from Caffe models whose dense layers read the feature map transposed.
        return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)

    class PNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
            self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
            self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
            self.conv4_1 = nn.Conv2d(32, 2, 1)
            self.conv4_2 = nn.Conv2d(32, 4, 1)

        def forward(self, x):  # type: ignore[no-untyped-def]
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
            return torch.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)

    class RNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
            self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
            self.dense5_1 = nn.Linear(128, 2)
            self.dense5_2 = nn.Linear(128, 4)

        def forward(self, x):  # type: ignore[no-untyped-def]
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.prelu4(self.dense4(flatten_caffe(self.prelu3(self.conv3(x)))))
            return torch.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)

    class ONet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
            self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
            self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
            self.dense6_1 = nn.Linear(256, 2)
            self.dense6_2 = nn.Linear(256, 4)
            self.dense6_3 = nn.Linear(256, 10)

        def forward(self, x):  # type: ignore[no-untyped-def]
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.pool3(self.prelu3(self.conv3(x)))
            x = self.prelu5(self.dense5(flatten_caffe(self.prelu4(self.conv4(x)))))
            return torch.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)

    _NETS.update(pnet=PNet, rnet=RNet, onet=ONet)
    return _NETS


# --------------------------------------------------------------------------------------------
# Box helpers (numpy)
# --------------------------------------------------------------------------------------------
def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy NMS (``mode="min"``: intersection over the smaller area, MTCNN's last stage)."""
    return shared_nms(boxes, scores, threshold, mode="min" if mode == "min" else "union")


def nms_per_image(image_idx: np.ndarray, boxes: np.ndarray, scores: np.ndarray, threshold: float,
                  mode: str = "union") -> np.ndarray:
    """NMS applied separately to the boxes of each image; returns kept indices."""
    kept = [np.flatnonzero(image_idx == k)[nms(boxes[image_idx == k], scores[image_idx == k], threshold, mode)]
            for k in np.unique(image_idx)]
    return np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply MTCNN's box regression offsets (fractions of the box size)."""
    w = (boxes[:, 2] - boxes[:, 0])[:, None]
    h = (boxes[:, 3] - boxes[:, 1])[:, None]
    return boxes[:, :4] + reg * np.hstack([w, h, w, h])


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow boxes to squares around the same centre (the next net takes square crops)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    cx = boxes[:, 0] + w / 2
    cy = boxes[:, 1] + h / 2
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)


def pyramid_scales(height: int, width: int, min_face_size: int, factor: float) -> list[float]:
    """Scales at which a 12-pixel P-Net window matches faces from ``min_face_size`` upwards."""
    base = _CELL / min_face_size
    side = min(height, width) * base
    scales: list[float] = []
    while side >= _CELL:
        scales.append(base * factor ** len(scales))
        side *= factor
    return scales


# --------------------------------------------------------------------------------------------
# The detector
# --------------------------------------------------------------------------------------------
class FastMtcnnDetector(Detector):
    """MTCNN (PyTorch) with facenet-pytorch's trained weights; 5 landmarks per face."""

    config_class = FastMtcnnConfig
    provides_eyes = True

    def __init__(self, config: FastMtcnnConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        import torch

        cfg: FastMtcnnConfig = self.config  # type: ignore[assignment]
        try:
            self._device = torch.device(torch_device(cfg.device) or "cpu")
        except (RuntimeError, TypeError) as exc:
            raise ConfigError(f"fastmtcnn.device: {cfg.device!r} is not a torch device ({exc}); "
                              'use "cpu" or "cuda:0"') from exc
        if self._device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f'fastmtcnn.device: {cfg.device!r} asked for, but this torch has no usable CUDA; '
                              'use device="cpu"')
        classes = _net_classes()
        self._nets = {}
        for key, wf in zip(("pnet", "rnet", "onet"), WEIGHTS):
            net = classes[key]()
            path = self._weight_path(key, wf)
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                net.load_state_dict(state)
            except Exception as exc:  # corrupt file, wrong layout
                raise WeightsError(f"could not load MTCNN {key} weights from {path}: {exc}; "
                                   "delete the file so that it is fetched again") from exc
            self._nets[key] = net.to(self._device, memory_format=torch.channels_last).eval()

    def _weight_path(self, key: str, wf: WeightFile) -> Path:
        cfg: FastMtcnnConfig = self.config  # type: ignore[assignment]
        if cfg.weights_dir is not None:
            path = Path(cfg.weights_dir) / f"{key}.pt"
            if not path.is_file():
                raise WeightsError(f"fastmtcnn.weights_dir: {path} does not exist; the folder must hold "
                                   "pnet.pt, rnet.pt and onet.pt")
            return path
        return Path(self.weights_manager().path(wf))

    # ---- public API ------------------------------------------------------------------------
    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        """Detect faces in BGR uint8 images; same-size images share one batched cascade run."""
        rgbs = [_to_rgb(img) for img in images]
        results: list[list[DetectedFace]] = [[] for _ in rgbs]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, rgb in enumerate(rgbs):
            groups.setdefault(rgb.shape[:2], []).append(i)
        for (height, width), indices in groups.items():
            # P-Net's first feature maps are ~10x the image in floats: bound the pixels per call
            bs = max(1, min(self.config.batch_size, _BATCH_PIXELS // (height * width)))  # type: ignore[attr-defined]
            for start in range(0, len(indices), bs):
                chunk = indices[start:start + bs]
                batch = np.stack([rgbs[i] for i in chunk])
                for i, faces in zip(chunk, self._cascade(batch)):
                    results[i] = faces
        return results

    # ---- cascade ---------------------------------------------------------------------------
    def _to_tensor(self, nhwc: np.ndarray) -> Any:
        """uint8 NHWC → normalised float NCHW tensor in channels_last layout (the NHWC storage
        is kept: the CPU conv/pool kernels run about twice as fast on it as on plain NCHW)."""
        import torch

        x = torch.from_numpy(nhwc).to(self._device).permute(0, 3, 1, 2).float()
        return (x - 127.5) * 0.0078125

    def _cascade(self, batch: np.ndarray) -> list[list[DetectedFace]]:
        import torch

        cfg: FastMtcnnConfig = self.config  # type: ignore[assignment]
        n, height, width = batch.shape[:3]
        with torch.inference_mode():
            idx, boxes, scores = self._stage1(batch, cfg)
            if len(boxes):
                idx, boxes, scores, _ = self._refine(batch, idx, boxes, "rnet", 24, cfg.thresholds[1])
            points = np.zeros((0, 5, 2))
            if len(boxes):
                idx, boxes, scores, points = self._refine(batch, idx, boxes, "onet", 48, cfg.thresholds[2])

        out: list[list[DetectedFace]] = [[] for _ in range(n)]
        for k in range(len(boxes)):
            x1, y1, x2, y2 = (float(v) for v in boxes[k])
            pts = [(float(px), float(py)) for px, py in points[k]]
            face = DetectedFace(
                x=x1, y=y1, w=x2 - x1, h=y2 - y1, confidence=float(scores[k]),
                # O-Net's points run image-left to image-right: on a frontal face the first eye
                # and first mouth corner are the person's right ones.
                right_eye=pts[0], left_eye=pts[1], nose=pts[2], mouth_right=pts[3], mouth_left=pts[4],
            )
            out[int(idx[k])].append(face.clipped(width, height))
        for faces in out:
            faces.sort(key=lambda f: f.area, reverse=True)
        return out

    def _stage1(self, batch: np.ndarray, cfg: FastMtcnnConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """P-Net over the image pyramid → candidate squares (image index, boxes, scores)."""
        height, width = batch.shape[1:3]
        all_idx, all_boxes, all_scores, all_reg = [], [], [], []
        for scale in pyramid_scales(height, width, cfg.min_face_size, cfg.factor):
            size = (int(width * scale + 1), int(height * scale + 1))
            prob, reg = self._nets["pnet"](self._to_tensor(np.stack([_resize(img, size) for img in batch])))
            mask = prob >= cfg.thresholds[0]
            if not bool(mask.any()):
                continue
            where = mask.nonzero().cpu().numpy()
            score = prob[mask].cpu().numpy().astype(np.float64)
            offsets = reg.permute(0, 2, 3, 1)[mask].cpu().numpy().astype(np.float64)
            top_left = where[:, [2, 1]] * _STRIDE / scale
            boxes = np.hstack([top_left, top_left + _CELL / scale])
            keep = nms_per_image(where[:, 0], boxes, score, _NMS_SCALE)
            all_idx.append(where[keep, 0])
            all_boxes.append(boxes[keep])
            all_scores.append(score[keep])
            all_reg.append(offsets[keep])
        if not all_boxes:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 4)), np.zeros(0)
        idx, boxes = np.concatenate(all_idx), np.concatenate(all_boxes)
        scores, reg = np.concatenate(all_scores), np.concatenate(all_reg)
        keep = nms_per_image(idx, boxes, scores, _NMS_STAGE)
        boxes = _square(_regress(boxes[keep], reg[keep]))
        return idx[keep], boxes, scores[keep]

    def _refine(self, batch: np.ndarray, idx: np.ndarray, boxes: np.ndarray, net: str, size: int,
                threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Score candidate crops with R-Net or O-Net, regress, suppress."""
        import torch

        crops = self._to_tensor(np.stack([_crop(batch[int(i)], box, size) for i, box in zip(idx, boxes)]))
        outs = [torch.cat(parts) for parts in zip(*(self._nets[net](crops[s:s + 256])
                                                    for s in range(0, len(crops), 256)))]
        score = outs[0].cpu().numpy().astype(np.float64)
        reg = outs[1].cpu().numpy().astype(np.float64)
        passed = score > threshold
        idx, boxes, score, reg = idx[passed], boxes[passed], score[passed], reg[passed]
        if net == "rnet":
            keep = nms_per_image(idx, boxes, score, _NMS_STAGE)
            boxes = _square(_regress(boxes[keep], reg[keep]))
            return idx[keep], boxes, score[keep], np.zeros((len(keep), 5, 2))
        # O-Net: landmarks are fractions of the (pre-regression) crop; last NMS uses min-overlap
        lm = outs[2].cpu().numpy().astype(np.float64)[passed]
        w = (boxes[:, 2] - boxes[:, 0])[:, None]
        h = (boxes[:, 3] - boxes[:, 1])[:, None]
        points = np.stack([boxes[:, :1] + w * lm[:, :5], boxes[:, 1:2] + h * lm[:, 5:]], axis=2)
        boxes = _regress(boxes, reg)
        keep = nms_per_image(idx, boxes, score, _NMS_STAGE, mode="min")
        return idx[keep], boxes[keep], score[keep], points[keep]


def _crop(img: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """``size`` x ``size`` area-resampled crop of ``box`` from an HWC image, zero outside it."""
    height, width = img.shape[:2]
    x1, y1, x2, y2 = (int(v) for v in box)
    x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
    sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
    if (sx1, sy1, sx2, sy2) == (x1, y1, x2, y2):
        patch = img[y1:y2, x1:x2]
    else:
        patch = np.zeros((y2 - y1, x2 - x1, img.shape[2]), dtype=img.dtype)
        if sx2 > sx1 and sy2 > sy1:
            patch[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = img[sy1:sy2, sx1:sx2]
    return _resize(patch, (size, size))


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-resample an HWC uint8 image to ``size`` = (width, height)."""
    import cv2

    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def _to_rgb(img: np.ndarray) -> np.ndarray:
    # BGR uint8 (H, W, 3): the pipeline checks the contract
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])


@hookimpl
def facepipe_register_detectors(register):  # type: ignore[no-untyped-def]
    register(DetectorSpec(
        name="fastmtcnn",
        aliases=("fast_mtcnn", "mtcnn_torch"),
        factory="facepipe.plugins.detectors.fastmtcnn:FastMtcnnDetector",
        config=FastMtcnnConfig,
        weights=WEIGHTS,
        requires=("torch", "cv2"),
        extra="fastmtcnn",
        license="MIT (facenet-pytorch weights)",
        description="MTCNN cascade in PyTorch with facenet-pytorch's weights; eyes, nose, mouth corners",
    ))
