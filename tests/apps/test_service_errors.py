"""Every error a caller can cause gets a 4xx from the REST service, never a 500.

Runs in-process (Starlette's TestClient) on the hermetic numpy-only plugins: no model, no server.
"""

from __future__ import annotations

import base64
import inspect

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
cv2 = pytest.importorskip("cv2")

from fastapi.testclient import TestClient  # noqa: E402

from facepipe import errors  # noqa: E402
from facepipe.apps.service import _status_for, create_app  # noqa: E402
from facepipe.testing import HERMETIC_DETECTOR, HERMETIC_RECOGNIZER, hermetic_registry, synthetic_face_image  # noqa: E402


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = create_app({"detector": HERMETIC_DETECTOR, "recognizer": HERMETIC_RECOGNIZER},
                     registry=hermetic_registry())
    # raise_server_exceptions=False: an unhandled error shows up as the 500 a real client would get
    return TestClient(app, raise_server_exceptions=False)


def _b64(image: np.ndarray) -> str:
    ok, png = cv2.imencode(".png", image)
    assert ok
    return base64.b64encode(png.tobytes()).decode()


FACE = _b64(synthetic_face_image())


@pytest.mark.parametrize("error_class", [
    cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, errors.FacepipeError)
])
def test_every_typed_error_maps_to_a_4xx(error_class: type[errors.FacepipeError]) -> None:
    assert 400 <= _status_for(error_class("x")) < 500


def test_verify_works_on_the_hermetic_pipeline(client: TestClient) -> None:
    r = client.post("/verify", json={"img1": FACE, "img2": FACE})
    assert r.status_code == 200, r.text
    assert r.json()["verified"] is True


@pytest.mark.parametrize("path,payload", [
    ("/verify", {"img1": FACE, "img2": FACE, "threshold": "not-a-number"}),
    ("/verify", {"img1": FACE, "img2": FACE, "threshold": [1, 2]}),
    ("/analyze", {"img": FACE, "actions": 5}),
    ("/analyze", {"img": FACE, "actions": "age"}),  # no analyzer configured
    ("/extract_faces", {"img": FACE, "align": "maybe"}),
    ("/represent", {"img": 12345}),
    ("/represent", []),
])
def test_bad_options_are_4xx(client: TestClient, path: str, payload: object) -> None:
    r = client.post(path, json=payload)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"].endswith("Error")
