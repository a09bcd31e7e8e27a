"""Buffalo_L recognizer (InsightFace's webface_r50.onnx on ONNX Runtime) against deepface 0.0.103.

The real 166 MB model cannot be downloaded here.  ``tests/helpers/buffalo_l_like.py`` writes a
small graph with its signature, deterministically; ``tests/reference/parity/buffalo_l.json``
holds what deepface's own Buffalo_L client (through InsightFace) computed from it for known
faces (``tests/tools/make_buffalo_l_parity.py``, run in a deepface venv).  The tests rebuild the
graph and require facepipe's embeddings to match those numbers within 1e-4.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need

need("onnxruntime")
need("onnx")
cv2 = need("cv2")

from facepipe.errors import OfflineError, WeightsError  # noqa: E402
from facepipe.plugins.recognizers import buffalo_l  # noqa: E402
from facepipe.registry import PluginRegistry  # noqa: E402
from facepipe.testing import check_recognizer  # noqa: E402
from facepipe.weights import WeightsManager  # noqa: E402
from tests.helpers.buffalo_l_like import (  # noqa: E402
    FACE_SHAPES,
    PHOTOS,
    SEED,
    centre_crop,
    synthetic_faces,
    write_buffalo_l_like,
)
from tests.helpers.paths import PARITY  # noqa: E402

REFERENCE = json.loads((PARITY / "buffalo_l.json").read_text(encoding="utf-8"))
STYLES = ("pytorch", "mxnet")
TOLERANCE = 1e-4


def make_recognizer(home: Path, style: str) -> buffalo_l.BuffaloLRecognizer:
    """A recognizer whose (offline) cache holds the stand-in graph under the real file name."""
    write_buffalo_l_like(home / "weights" / buffalo_l.BUFFALO_L_WEIGHTS.name, style)  # type: ignore[arg-type]
    return buffalo_l.BuffaloLRecognizer(weights=WeightsManager(home=home, offline=True, deepface_home=home / "df"))


@pytest.fixture(scope="module", params=STYLES)
def recognizer(request, tmp_path_factory):
    rec = make_recognizer(tmp_path_factory.mktemp(f"buffalo_{request.param}"), request.param)
    rec.style = request.param
    yield rec
    rec.close()


def test_reference_matches_the_helper():
    # the committed numbers belong to this graph and these faces
    assert REFERENCE["deepface"] == "0.0.103" and REFERENCE["seed"] == SEED
    assert [tuple(s) for s in REFERENCE["face_shapes"]] == list(FACE_SHAPES)


def test_matches_deepface_on_synthetic_faces(recognizer):
    expected = np.asarray(REFERENCE["styles"][recognizer.style]["synthetic"], dtype=np.float32)
    got = recognizer.embed(synthetic_faces())
    assert got.shape == (len(FACE_SHAPES), 512) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


def test_matches_deepface_on_photo_crops(recognizer, dataset):
    if REFERENCE["photos"] != list(PHOTOS):
        pytest.skip("the reference was generated without the dataset photos")
    crops = [centre_crop(cv2.imread(str(dataset / name))) for name in PHOTOS]
    expected = np.asarray(REFERENCE["styles"][recognizer.style]["photos"], dtype=np.float32)
    np.testing.assert_allclose(recognizer.embed(crops), expected, rtol=0, atol=TOLERANCE)


def test_input_scaling_is_read_from_the_graph_as_insightface_does(recognizer):
    assert list(recognizer.scaling) == REFERENCE["styles"][recognizer.style]["insightface_scaling"]


def test_channel_order_matters(recognizer):
    # RGB is what the network sees: feeding the faces with their channels swapped must differ
    faces = synthetic_faces()
    assert np.abs(recognizer.embed([f[:, :, ::-1] for f in faces]) - recognizer.embed(faces)).max() > 1e-2


def test_conformance(recognizer):
    check_recognizer(recognizer, synthetic_faces())


def test_insightface_scaling_rule():
    assert buffalo_l.insightface_scaling(["Conv_0", "PRelu_1"]) == (127.5, 127.5)
    assert buffalo_l.insightface_scaling(["_minus0", "_mul0", "conv0"]) == (0.0, 1.0)
    assert buffalo_l.insightface_scaling(["Sub_0", "Mul_1"]) == (0.0, 1.0)
    assert buffalo_l.insightface_scaling(["Sub_0", "Conv_1"]) == (127.5, 127.5)  # both are needed
    # only the first 8 nodes count
    assert buffalo_l.insightface_scaling([f"Conv_{i}" for i in range(8)] + ["Sub", "Mul"]) == (127.5, 127.5)


def test_blob_is_rgb_nchw_scaled():
    batch = np.zeros((1, 112, 112, 3), np.float32)
    batch[..., 0] = 1.0  # blue in BGR
    blob = buffalo_l.insightface_blob(batch, 127.5, 127.5)
    assert blob.shape == (1, 3, 112, 112) and blob.dtype == np.float32
    np.testing.assert_allclose(blob[0, 2], 1.0)  # blue is the last channel in RGB
    np.testing.assert_allclose(blob[0, 0], -1.0)


def test_reads_deepfaces_cache_layout(tmp_path):
    # a deepface user's $DEEPFACE_HOME/.deepface/weights/buffalo_l/webface_r50.onnx is reused
    df_home = tmp_path / "dfhome"
    write_buffalo_l_like(df_home / ".deepface" / "weights" / "buffalo_l" / "webface_r50.onnx")
    rec = buffalo_l.BuffaloLRecognizer(weights=WeightsManager(home=tmp_path / "fp", offline=True,
                                                              deepface_home=df_home))
    assert rec.weights_path() == df_home / ".deepface" / "weights" / "buffalo_l" / "webface_r50.onnx"
    expected = np.asarray(REFERENCE["styles"]["pytorch"]["synthetic"], dtype=np.float32)
    np.testing.assert_allclose(rec.embed(synthetic_faces()), expected, rtol=0, atol=TOLERANCE)


def test_missing_weights_offline_names_the_file(tmp_path):
    rec = buffalo_l.BuffaloLRecognizer(weights=WeightsManager(home=tmp_path, offline=True,
                                                              deepface_home=tmp_path / "df"))
    with pytest.raises(WeightsError, match="webface_r50.onnx") as info:
        rec.embed(synthetic_faces()[:1])
    assert isinstance(info.value, OfflineError)


def test_corrupt_and_foreign_files(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    rec = buffalo_l.BuffaloLRecognizer(buffalo_l.BuffaloLConfig(weights_path=bad))
    with pytest.raises(WeightsError, match="bad.onnx"):
        rec.prepare()
    # an ONNX file of another signature (64x64 in, 64x64 out) is refused, saying what was expected
    import onnx
    from onnx import TensorProto, helper

    other = tmp_path / "other.onnx"
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3, 64, 64]) for n in ("x", "y")]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "other", io[:1], io[1:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.save(model, str(other))
    rec = buffalo_l.BuffaloLRecognizer(buffalo_l.BuffaloLConfig(weights_path=other))
    with pytest.raises(WeightsError, match=r"expected \(3, 112, 112\) -> \(512,\)"):
        rec.prepare()


def test_bad_batch_shape(tmp_path):
    rec = make_recognizer(tmp_path, "pytorch")
    with pytest.raises(ValueError, match="112, 112, 3"):
        rec.forward(np.zeros((1, 100, 100, 3), np.float32))
    assert rec.forward(np.zeros((0, 112, 112, 3), np.float32)).shape == (0, 512)


def test_registration():
    registry = PluginRegistry(autoload=False)
    registry.register_module(buffalo_l)
    spec = registry.get("recognizer", "buffalo-l")
    assert spec.name == "Buffalo_L" and spec.extra == "onnx"
    assert spec.embedding_size == 512 and spec.input_size == (112, 112)
    assert spec.thresholds == {"cosine": 0.55, "euclidean": 0.6, "euclidean_l2": 1.1, "angular": 0.45}
    assert spec.confidence == {} and spec.value_range is None  # deepface publishes none for it
    assert "non-commercial" in spec.license
    wf = spec.weights[0]
    assert wf.name == "webface_r50.onnx" and wf.deepface_name == "buffalo_l/webface_r50.onnx"
    assert wf.sha256 is None and wf.urls[0].startswith("https://drive.google.com/")
