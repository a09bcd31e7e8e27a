"""The REST service with the hermetic plugins: no dlib, no OpenCV, no photos.

The real-photo suite (``test_service.py``) runs the real models through a real server; this one
checks the HTTP layer on every machine where the ``service`` extra is installed.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import numpy as np
import pytest

from tests.helpers.extras import need

need("fastapi", "service")
need("httpx", "service")  # fastapi's TestClient speaks through httpx

from fastapi.testclient import TestClient  # noqa: E402

from facepipe.apps.service import create_app  # noqa: E402
from facepipe.testing import HERMETIC_CONFIG, hermetic_registry  # noqa: E402
from tests.helpers.synthetic_faces import group_photo, photo, png_bytes  # noqa: E402

TOKEN = "hermetic-token"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(HERMETIC_CONFIG, token=TOKEN, registry=hermetic_registry())
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as test_client:
        yield test_client


def _b64(image: np.ndarray) -> str:
    return base64.b64encode(png_bytes(image)).decode()


def test_health_names_the_hermetic_recognizer_without_a_token(client: TestClient) -> None:
    r = client.get("/health", headers={"Authorization": ""})
    assert r.status_code == 200 and r.json()["recognizer"] == "grid"


def test_token_is_checked(client: TestClient) -> None:
    r = client.post("/verify", json={}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


def test_verify_uploads_and_base64(client: TestClient) -> None:
    same = client.post("/verify", files={"img1": png_bytes(photo(1, 0)), "img2": png_bytes(photo(1, 2))})
    assert same.status_code == 200, same.text
    assert same.json()["verified"] is True
    other = client.post("/verify", json={"img1": _b64(photo(1, 0)),
                                         "img2": "data:image/png;base64," + _b64(photo(2, 0))})
    assert other.status_code == 200, other.text
    assert other.json()["verified"] is False


def test_represent_gives_one_embedding_per_face(client: TestClient) -> None:
    r = client.post("/represent", files={"img": png_bytes(group_photo(1, 2))})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 2 and all(len(item["embedding"]) == 64 for item in results)


def test_no_face_is_422_and_garbage_is_415(client: TestClient) -> None:
    dark = np.zeros((80, 80, 3), np.uint8)
    r = client.post("/represent", files={"img": png_bytes(dark)})
    assert r.status_code == 422 and r.json()["error"] == "FaceNotDetectedError"
    r = client.post("/represent", json={"img": base64.b64encode(b"not an image").decode()})
    assert r.status_code == 415
    assert client.get("/health").status_code == 200


def test_plugins_lists_only_the_hermetic_registry(client: TestClient) -> None:
    rows = client.get("/plugins").json()
    assert {row["name"] for row in rows if row["kind"] in ("detector", "recognizer")} == {"blob", "grid"}
