"""Every error a caller can cause gets a 4xx from the REST service, never a 500, as JSON
``{"error": <type>, "detail": <message>}`` whose message names the field and what was wrong.

Runs in-process (Starlette's TestClient) on the hermetic numpy-only plugins: no model, no server.
"""

from __future__ import annotations

import base64
import inspect
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
cv2 = pytest.importorskip("cv2")

from fastapi.testclient import TestClient  # noqa: E402

from facepipe import errors  # noqa: E402
from facepipe.apps.service import _status_for, create_app  # noqa: E402
from facepipe.apps.service_input import MAX_BODY_BYTES  # noqa: E402
from facepipe.testing import HERMETIC_DETECTOR, HERMETIC_RECOGNIZER, hermetic_registry, synthetic_face_image  # noqa: E402

TOKEN = "errors-token"
CONFIG = {"detector": HERMETIC_DETECTOR, "recognizer": HERMETIC_RECOGNIZER}


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = create_app(CONFIG, registry=hermetic_registry())
    # raise_server_exceptions=False: an unhandled error shows up as the 500 a real client would get
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def guarded() -> TestClient:
    return TestClient(create_app(CONFIG, token=TOKEN, registry=hermetic_registry()), raise_server_exceptions=False)


def _png(image: np.ndarray) -> bytes:
    ok, png = cv2.imencode(".png", image)
    assert ok
    return png.tobytes()


PNG = _png(synthetic_face_image())
FACE = base64.b64encode(PNG).decode()


def error_of(response: Any, status: int, error: str) -> str:
    """The response's detail, after checking its status, its shape and its error type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    assert body["error"] == error, body
    return str(body["detail"])


@pytest.mark.parametrize("error_class", [
    cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, errors.FacepipeError)
])
def test_every_typed_error_maps_to_a_4xx(error_class: type[errors.FacepipeError]) -> None:
    if issubclass(error_class, (errors.StoreConnectionError, errors.StoreAuthError)):
        # the gallery's server is down or refuses the service: about the server, not the request
        assert _status_for(error_class("x")) == 503
        return
    assert 400 <= _status_for(error_class("x")) < 500


def test_verify_works_on_the_hermetic_pipeline(client: TestClient) -> None:
    r = client.post("/verify", json={"img1": FACE, "img2": FACE})
    assert r.status_code == 200, r.text
    assert r.json()["verified"] is True


# --- threshold ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity"])
def test_threshold_not_finite(client: TestClient, value: str) -> None:
    detail = error_of(client.post("/verify", json={"img1": FACE, "img2": FACE, "threshold": value}),
                      422, "InvalidFieldError")
    assert detail == "threshold: Input should be a finite number"


def test_threshold_not_a_number(client: TestClient) -> None:
    detail = error_of(client.post("/verify", json={"img1": FACE, "img2": FACE, "threshold": "not-a-number"}),
                      422, "InvalidFieldError")
    assert detail.startswith("threshold: Input should be a valid number")


def test_threshold_a_list(client: TestClient) -> None:
    detail = error_of(client.post("/verify", json={"img1": FACE, "img2": FACE, "threshold": [1, 2]}),
                      422, "InvalidFieldError")
    assert detail.startswith("threshold: Input should be a valid number")


def test_threshold_negative(client: TestClient) -> None:
    detail = error_of(client.post("/verify", json={"img1": FACE, "img2": FACE, "threshold": -0.1}),
                      422, "InvalidFieldError")
    assert detail == "threshold: Input should be greater than or equal to 0"


def test_threshold_beyond_the_metric_range(client: TestClient) -> None:
    detail = error_of(client.post("/verify", json={"img1": FACE, "img2": FACE, "threshold": 2.5}),
                      422, "InvalidFieldError")
    assert "threshold: 2.5 is out of range" in detail and "cosine distances lie in [0, 2]" in detail


def test_threshold_as_a_form_field_is_parsed(client: TestClient) -> None:
    r = client.post("/verify", files={"img1": PNG, "img2": PNG}, data={"threshold": "0"})
    assert r.status_code == 200, r.text
    assert r.json()["threshold"] == 0.0 and r.json()["verified"] is True  # distance 0 <= 0


def test_threshold_nan_as_a_form_field(client: TestClient) -> None:
    detail = error_of(client.post("/verify", files={"img1": PNG, "img2": PNG}, data={"threshold": "nan"}),
                      422, "InvalidFieldError")
    assert detail == "threshold: Input should be a finite number"


# --- other fields ------------------------------------------------------------------------------
def test_actions_a_number(client: TestClient) -> None:
    detail = error_of(client.post("/analyze", json={"img": FACE, "actions": 5}), 422, "InvalidFieldError")
    assert detail == "actions: Input should be a valid list"


def test_actions_not_configured(client: TestClient) -> None:
    detail = error_of(client.post("/analyze", json={"img": FACE, "actions": ["age", "shoe_size"]}),
                      422, "InvalidFieldError")
    assert "actions: no analyzer is configured for 'shoe_size'" in detail and "age" in detail


def test_align_not_a_boolean(client: TestClient) -> None:
    detail = error_of(client.post("/extract_faces", json={"img": FACE, "align": "maybe"}), 422, "InvalidFieldError")
    assert detail.startswith("align: Input should be a valid boolean")


def test_unknown_field(client: TestClient) -> None:
    detail = error_of(client.post("/verify", json={"img1": FACE, "img2": FACE, "treshold": 0.3}),
                      422, "InvalidFieldError")
    assert detail.startswith("treshold: unknown field")


def test_missing_image_field(client: TestClient) -> None:
    detail = error_of(client.post("/verify", json={"img1": FACE}), 422, "InvalidFieldError")
    assert detail == "img2: this field is required"


def test_image_not_a_string(client: TestClient) -> None:
    detail = error_of(client.post("/represent", json={"img": 12345}), 422, "InvalidFieldError")
    assert detail == "img: expected the image as a base64 string (or a data URI), got int"


def test_invalid_base64(client: TestClient) -> None:
    detail = error_of(client.post("/represent", json={"img": "%%%not-base64%%%"}), 422, "InvalidFieldError")
    assert detail.startswith("img: not valid base64")


def test_empty_base64_string(client: TestClient) -> None:
    detail = error_of(client.post("/represent", json={"img": ""}), 422, "InvalidFieldError")
    assert detail.startswith("img: the image is empty")


def test_empty_upload(client: TestClient) -> None:
    detail = error_of(client.post("/represent", files={"img": ("face.png", b"", "image/png")}),
                      422, "InvalidFieldError")
    assert detail.startswith("img: the uploaded file is empty (0 bytes)")


def test_data_uri_that_is_not_base64(client: TestClient) -> None:
    detail = error_of(client.post("/represent", json={"img": "data:image/png,rawbytes"}), 422, "InvalidFieldError")
    assert detail.startswith("img: a data URI must be base64-encoded")


def test_base64_that_is_not_an_image(client: TestClient) -> None:
    detail = error_of(client.post("/represent", json={"img": base64.b64encode(b"not an image").decode()}),
                      415, "ImageDecodeError")
    assert "img" in detail


def test_no_face(client: TestClient) -> None:
    dark = base64.b64encode(_png(np.zeros((80, 80, 3), np.uint8))).decode()
    error_of(client.post("/represent", json={"img": dark}), 422, "FaceNotDetectedError")


# --- the body itself ---------------------------------------------------------------------------
def test_malformed_json(client: TestClient) -> None:
    r = client.post("/represent", content=b'{"img": ', headers={"content-type": "application/json"})
    detail = error_of(r, 400, "MalformedBodyError")
    assert detail.startswith("the body is not valid JSON (") and '{"img": "<base64>"}' in detail


def test_deeply_nested_json(client: TestClient) -> None:
    r = client.post("/represent", content=b"[" * 100_000, headers={"content-type": "application/json"})
    assert "not valid JSON" in error_of(r, 400, "MalformedBodyError")


def test_json_array_body(client: TestClient) -> None:
    detail = error_of(client.post("/represent", json=[]), 400, "MalformedBodyError")
    assert detail.endswith("not an array")


def test_empty_body(client: TestClient) -> None:
    r = client.post("/verify", content=b"", headers={"content-type": "application/json"})
    assert error_of(r, 400, "MalformedBodyError").startswith("the request body is empty")


def test_unsupported_content_type(client: TestClient) -> None:
    r = client.post("/represent", content=b"hello", headers={"content-type": "text/plain"})
    assert error_of(r, 415, "UnsupportedMediaTypeError").startswith("Content-Type 'text/plain' is not accepted")


def test_broken_multipart(client: TestClient) -> None:
    r = client.post("/represent", content=b"--x\r\nnonsense", headers={"content-type": "multipart/form-data"})
    assert error_of(r, 400, "MalformedBodyError").startswith("the form could not be read")


def test_body_too_large(client: TestClient) -> None:
    r = client.post("/represent", content=b"{}", headers={"content-type": "application/json",
                                                          "content-length": str(MAX_BODY_BYTES + 1)})
    assert "more than the service's limit" in error_of(r, 413, "BodyTooLargeError")


# --- routes, methods, token --------------------------------------------------------------------
def test_unknown_route(client: TestClient) -> None:
    assert error_of(client.get("/nope"), 404, "RouteNotFoundError").startswith("no route '/nope'")


def test_wrong_method(client: TestClient) -> None:
    r = client.get("/verify")
    assert error_of(r, 405, "MethodNotAllowedError") == "GET is not allowed on /verify; allowed: POST"
    assert r.headers["allow"] == "POST"


def test_missing_token(guarded: TestClient) -> None:
    r = guarded.post("/verify", json={"img1": FACE, "img2": FACE})
    assert error_of(r, 401, "UnauthorizedError").startswith("invalid or missing bearer token")
    assert r.headers["www-authenticate"] == "Bearer"


def test_wrong_token(guarded: TestClient) -> None:
    r = guarded.get("/plugins", headers={"Authorization": "Bearer wrong"})
    error_of(r, 401, "UnauthorizedError")


def test_right_token_and_open_routes(guarded: TestClient) -> None:
    assert guarded.post("/verify", json={"img1": FACE, "img2": FACE},
                        headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert guarded.get("/health").status_code == 200 and guarded.get("/api").status_code == 200
