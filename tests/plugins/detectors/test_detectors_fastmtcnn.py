"""fastmtcnn: the PyTorch MTCNN cascade with facenet-pytorch's real weights, on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need
torch = need("torch")
need("cv2")

from facepipe.errors import ImageTypeError, WeightsError  # noqa: E402
from facepipe.pipeline.image import load_image  # noqa: E402
from facepipe.preprocess import as_bgr_uint8  # noqa: E402
from facepipe.registry import PluginRegistry  # noqa: E402
from facepipe.types import DetectedFace  # noqa: E402
from facepipe.weights import WeightsManager, package_file_path  # noqa: E402
from facepipe.plugins.detectors import fastmtcnn  # noqa: E402
from facepipe.plugins.detectors.fastmtcnn import (  # noqa: E402
    FastMtcnnConfig,
    FastMtcnnDetector,
    nms,
    pyramid_scales,
)

FRONTAL = ["img1.jpg", "img2.jpg", "img5.jpg", "img11.jpg", "img12.jpg", "img25.jpg"]


@pytest.fixture(scope="module")
def detector():  # type: ignore[no-untyped-def]
    if any(package_file_path(pf) is None for wf in fastmtcnn.WEIGHTS for pf in wf.package_files):
        pytest.skip("facenet-pytorch's bundled MTCNN weights are not installed (pip install --no-deps facenet-pytorch)")
    # One intra-op thread: the CI machines are small and shared, and extra threads only contend.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield FastMtcnnDetector(weights=WeightsManager(offline=True))
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def photos(dataset: Path) -> dict[str, np.ndarray]:
    names = FRONTAL + ["couple.jpg", "selfie-many-people.jpg", "img29.jpg"]
    return {n: load_image(dataset / n).image for n in names}


def _inside(point: tuple[float, float], face: DetectedFace) -> bool:
    return face.x <= point[0] <= face.x + face.w and face.y <= point[1] <= face.y + face.h


# ------------------------------------------------------------------------------ real photos
def test_couple_has_two_faces(detector, photos) -> None:  # type: ignore[no-untyped-def]
    faces = detector.detect([photos["couple.jpg"]])[0]
    assert len(faces) == 2, faces
    assert all(f.confidence > 0.95 for f in faces)
    # the two people stand side by side: their boxes do not overlap
    a, b = sorted(faces, key=lambda f: f.x)
    assert a.x + a.w < b.x


def test_selfie_finds_most_people(detector, photos) -> None:  # type: ignore[no-untyped-def]
    faces = detector.detect([photos["selfie-many-people.jpg"]])[0]
    # 7 people, two of them cut by the frame; facenet-pytorch's MTCNN finds 5
    assert len(faces) >= 5, [(round(f.x), round(f.y), round(f.confidence, 3)) for f in faces]
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True), "faces must come largest first"


@pytest.mark.parametrize("name", FRONTAL)
def test_frontal_face_landmarks_are_person_centric(detector, photos, name: str) -> None:  # type: ignore[no-untyped-def]
    img = photos[name]
    faces = detector.detect([img])[0]
    assert faces, f"no face in {name}"
    face = max(faces, key=lambda f: f.area)
    assert face.confidence > 0.9
    assert face.w > 0.1 * img.shape[1], "the portrait's face should be large"
    for point in (face.left_eye, face.right_eye, face.nose, face.mouth_left, face.mouth_right):
        assert point is not None and _inside(point, face), (name, point, face)
    assert face.left_eye[0] > face.right_eye[0], "left_eye must be the person's left (image right)"
    assert face.mouth_left[0] > face.mouth_right[0], "mouth_left must be the person's left corner"
    eyes_y = (face.left_eye[1] + face.right_eye[1]) / 2
    mouth_y = (face.mouth_left[1] + face.mouth_right[1]) / 2
    assert eyes_y < face.nose[1] < mouth_y, "eyes above nose above mouth"
    assert face.right_eye[0] < face.nose[0] < face.left_eye[0]


def test_batch_of_same_size_images_equals_singles(detector, photos) -> None:  # type: ignore[no-untyped-def]
    a, b = photos["img11.jpg"], photos["img29.jpg"]
    assert a.shape == b.shape  # both 600x800: they share one batched cascade run
    batch = [a, b, np.ascontiguousarray(a[:, ::-1])]
    together = detector.detect(batch)
    singles = [detector.detect([img])[0] for img in batch]
    assert [len(f) for f in together] == [len(f) for f in singles]
    assert len(together[0]) >= 1 and len(together[2]) >= 1
    for faces_b, faces_s in zip(together, singles):
        for fb, fs in zip(faces_b, faces_s):
            np.testing.assert_allclose([fb.x, fb.y, fb.w, fb.h], [fs.x, fs.y, fs.w, fs.h], atol=0.5)
            np.testing.assert_allclose(fb.left_eye, fs.left_eye, atol=0.5)
            assert abs(fb.confidence - fs.confidence) < 1e-3
    # the mirrored photo has its face mirrored, still with person-centric eyes
    width = a.shape[1]
    orig, mirrored = together[0][0], together[2][0]
    assert abs((width - (orig.x + orig.w)) - mirrored.x) < 0.15 * orig.w  # MTCNN is not exactly mirror-symmetric
    assert mirrored.left_eye[0] > mirrored.right_eye[0]


def test_mixed_sizes_keep_input_order(detector, photos) -> None:  # type: ignore[no-untyped-def]
    imgs = [photos["img5.jpg"], np.zeros((100, 120, 3), np.uint8), photos["img12.jpg"]]
    found = detector.detect(imgs)
    assert [len(f) >= 1 for f in found] == [True, False, True]
    assert found[1] == []
    for img, faces in zip(imgs, found):
        for f in faces:
            assert f.x >= 0 and f.y >= 0 and f.x + f.w <= img.shape[1] and f.y + f.h <= img.shape[0]
            assert 0 <= f.confidence <= 1


def test_edge_inputs(detector) -> None:  # type: ignore[no-untyped-def]
    assert detector.detect([]) == []
    assert detector.detect([np.zeros((10, 10, 3), np.uint8)]) == [[]]  # smaller than one P-Net window
    with pytest.raises(ImageTypeError):  # the pipeline boundary rejects it before any detector
        as_bgr_uint8(np.zeros((10, 10, 2), np.uint8))


# ------------------------------------------------------------------------------ pieces
def test_nms_union_and_min() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [2, 2, 6, 6]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    # IoU(0,1) = 81/119 > 0.5 → 1 suppressed; box 3 lies inside box 0: IoU 16/100, min-overlap 1
    assert nms(boxes, scores, 0.5).tolist() == [3, 0, 2]
    assert nms(boxes, scores, 0.5, mode="min").tolist() == [3, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_pyramid_scales() -> None:
    scales = pyramid_scales(100, 200, 20, 0.709)
    assert scales[0] == pytest.approx(12 / 20)
    assert all(b / a == pytest.approx(0.709) for a, b in zip(scales, scales[1:]))
    assert 100 * scales[-1] >= 12 > 100 * scales[-1] * 0.709
    assert pyramid_scales(10, 10, 20, 0.709) == []


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        FastMtcnnConfig(thresholds=(0.6, 1.5, 0.7))
    with pytest.raises(ValueError):
        FastMtcnnConfig(factor=1.0)
    with pytest.raises(ValueError):
        FastMtcnnConfig(unknown=1)  # type: ignore[call-arg]


def test_bad_device_and_missing_weights_dir(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="device"):
        FastMtcnnDetector(FastMtcnnConfig(device="no-such-device"))
    with pytest.raises(WeightsError, match="pnet.pt"):
        FastMtcnnDetector(FastMtcnnConfig(weights_dir=tmp_path))


def test_weights_dir_and_corrupt_file(tmp_path: Path, detector) -> None:  # type: ignore[no-untyped-def]
    for wf, key in zip(fastmtcnn.WEIGHTS, ("pnet", "rnet", "onet")):
        (tmp_path / f"{key}.pt").symlink_to(package_file_path(wf.package_files[0]))
    det = FastMtcnnDetector(FastMtcnnConfig(weights_dir=tmp_path))
    img = np.zeros((60, 60, 3), np.uint8)
    assert det.detect([img]) == [[]]
    (tmp_path / "onet.pt").unlink()
    (tmp_path / "onet.pt").write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="onet"):
        FastMtcnnDetector(FastMtcnnConfig(weights_dir=tmp_path))


def test_registration() -> None:
    spec = PluginRegistry().get("detector", "fastmtcnn")
    assert spec.extra == "fastmtcnn" and "torch" in spec.requires
    assert spec.config is FastMtcnnConfig
    for wf in spec.weights:
        assert wf.sha256 and wf.package_files and wf.package_files[0].package == "facenet_pytorch"
        assert all(u.startswith("https://github.com/timesler/facenet-pytorch/") for u in wf.urls)
