"""The ``mtcnn`` detector: the ``mtcnn`` package (>= 1.0, TensorFlow; weights bundled in it).

The package takes RGB and names landmarks by image side ("left_eye" = the eye on the image's
left, which is the person's right eye).  facepipe reports them person-centric: eyes and mouth
corners are swapped.  Boxes and landmarks are rounded to whole pixels by default, as the
package's own JSON output (which deepface uses) does, so boxes match deepface's.

Batches: the package can stack several images, but it pads them to a common size and uses one
scale pyramid for all, which changes the results of every image whose size differs from the
largest.  facepipe therefore batches only images of identical shape (one network pass per
pyramid level for the whole group), so a batch call gives the same faces as single calls.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np
from pydantic import Field, field_validator

from facepipe import hookimpl
from facepipe.devices import DeviceName, tensorflow_device
from facepipe.specs import DetectorSpec, PackageFile, WeightFile
from facepipe.types import DetectedFace, Detector, PluginConfig


def _bundled(name: str, sha256: str, size: int) -> WeightFile:
    return WeightFile(
        name=f"mtcnn_{name}",
        sha256=sha256,
        size=size,
        package_files=(PackageFile("mtcnn", f"assets/weights/{name}", sha256, size),),
        description=f"MTCNN {name.split('.')[0].upper()} weights bundled in the mtcnn package (MIT)",
    )


# The package loads its own copies; these declarations document (and let `models verify` check) them.
MTCNN_WEIGHTS = (
    _bundled("pnet.lz4", "ea6b0c3e685ebee3165326ad6484acc95f2ef78f1c94fbf40a55704fa989f7b5", 27119),
    _bundled("rnet.lz4", "cb00e6460f3c98b0bfafaba3c0a0ded4bdf6e62cee7174d969e8670d7e757fee", 401659),
    _bundled("onet.lz4", "94f6ea2f4cf985275ee958cdd762d17b6009348a4fb9d8c6be39ba73ffd22ca3", 1557637),
)


class MTCNNConfig(PluginConfig):
    """Options of the MTCNN cascade (defaults = the package's, which deepface uses)."""

    min_face_size: int = Field(20, ge=4, description="smallest face side in pixels the pyramid looks for")
    scale_factor: float = Field(0.709, gt=0.0, lt=1.0, description="image pyramid step")
    thresholds: tuple[float, float, float] = Field(
        (0.6, 0.7, 0.8), description="score thresholds of the P-, R- and O-Net stages")
    min_confidence: float = Field(0.0, ge=0.0, le=1.0, description="drop faces scoring below this")
    device: DeviceName = Field(
        "cpu", description="'cpu', 'cuda' or 'cuda:N' (see facepipe.devices); None = TensorFlow's choice")
    batch_size: int = Field(8, ge=1, description="images of one shape stacked per package call")
    round_coordinates: bool = Field(True, description="round box and landmarks to whole pixels "
                                                      "(the package's JSON output, and deepface, do)")

    @field_validator("thresholds")
    @classmethod
    def _in_unit_interval(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if not all(0.0 <= t <= 1.0 for t in value):
            raise ValueError("each of the three stage thresholds must be in [0, 1]")
        return value


class MTCNNDetector(Detector):
    """MTCNN (P/R/O-Net cascade) with five person-centric landmarks."""

    config_class = MTCNNConfig
    provides_eyes = True

    def __init__(self, config: MTCNNConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        from mtcnn import MTCNN

        self._model = MTCNN(device=tensorflow_device(self.config.device) or "CPU:0")  # type: ignore[attr-defined]
        # Keras layers built lazily on first call are not safe to build from two threads at once.
        self._lock = threading.Lock()

    def _run(self, rgb_images: list[np.ndarray]) -> list[np.ndarray]:
        """Raw package rows per image: ``[id, x1, y1, x2, y2, score, 5 x's, 5 y's]``."""
        cfg: MTCNNConfig = self.config  # type: ignore[assignment]
        p, r, o = cfg.thresholds
        with self._lock:
            rows = self._model.detect_faces(
                list(rgb_images), fit_to_image=True, box_format="xyxy", output_type="numpy",
                min_face_size=cfg.min_face_size, scale_factor=cfg.scale_factor,
                threshold_pnet=p, threshold_rnet=r, threshold_onet=o)
        rows = np.asarray(rows, dtype=np.float64).reshape(-1, 16) if len(rows) else np.zeros((0, 16))
        return [rows[rows[:, 0] == i] for i in range(len(rgb_images))]

    def _to_faces(self, rows: np.ndarray, width: int, height: int) -> list[DetectedFace]:
        cfg: MTCNNConfig = self.config  # type: ignore[assignment]
        faces = []
        for row in rows:
            score = float(row[5])
            if score < cfg.min_confidence:
                continue
            x1, y1, x2, y2 = (float(v) for v in row[1:5])
            xs, ys = row[6:11], row[11:16]
            x, y, w, h = x1, y1, x2 - x1, y2 - y1
            if cfg.round_coordinates:
                # Same arithmetic as the package's JSON output: width from the unrounded corners.
                x, y, w, h = (float(round(v)) for v in (x, y, w, h))
                xs, ys = np.round(xs), np.round(ys)
            pt = [(float(px), float(py)) for px, py in zip(xs, ys)]
            # Package order: image-left eye, image-right eye, nose, image-left mouth, image-right mouth.
            faces.append(DetectedFace(
                x=x, y=y, w=w, h=h, confidence=score,
                left_eye=pt[1], right_eye=pt[0], nose=pt[2], mouth_left=pt[4], mouth_right=pt[3],
            ).clipped(width, height))
        return faces

    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        cfg: MTCNNConfig = self.config  # type: ignore[assignment]
        results: list[list[DetectedFace]] = [[] for _ in images]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, img in enumerate(images):
            groups.setdefault(tuple(img.shape), []).append(i)
        for shape, indices in groups.items():
            for start in range(0, len(indices), cfg.batch_size):
                chunk = indices[start:start + cfg.batch_size]
                rgb = [np.ascontiguousarray(images[i][:, :, ::-1]) for i in chunk]
                for i, rows in zip(chunk, self._run(rgb)):
                    results[i] = self._to_faces(rows, shape[1], shape[0])
        return results


@hookimpl
def facepipe_register_detectors(register):  # type: ignore[no-untyped-def]
    register(DetectorSpec(
        name="mtcnn",
        aliases=("MTCNN",),
        factory="facepipe.plugins.detectors.mtcnn:MTCNNDetector",
        config=MTCNNConfig,
        weights=MTCNN_WEIGHTS,
        requires=("mtcnn", "tensorflow"),
        extra="mtcnn",
        license="MIT (mtcnn package and bundled weights)",
        description="MTCNN cascade (TensorFlow): boxes + eyes, nose and mouth corners",
    ))
