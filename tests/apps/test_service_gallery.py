"""The service's gallery routes on the hermetic plugins plus the embedded store."""

from __future__ import annotations

import base64
from importlib import metadata
from pathlib import Path

import cv2
import pytest

from tests.helpers.extras import need

need("fastapi", "service")
need("httpx", "service")

from fastapi.testclient import TestClient  # noqa: E402

from facepipe.apps.service import create_app  # noqa: E402
from facepipe.registry import ENTRY_POINT_GROUP  # noqa: E402
from facepipe.testing import HERMETIC_CONFIG, hermetic_registry, sample_images  # noqa: E402


def _registry() -> object:
    registry = hermetic_registry()
    (ep,) = [e for e in metadata.entry_points(group=ENTRY_POINT_GROUP) if e.name == "stores.embedded"]
    registry.register_module(ep.load(), distribution="facepipe", name=ep.name)
    return registry


@pytest.fixture()
def client(tmp_path: Path) -> TestClient:
    app = create_app(HERMETIC_CONFIG, registry=_registry(), workers=1, gallery=str(tmp_path / "faces"))
    return TestClient(app)


def _b64(i: int) -> str:
    ok, buf = cv2.imencode(".png", sample_images(i)[0])
    return base64.b64encode(buf.tobytes()).decode()


def test_register_search_identify_delete(client: TestClient) -> None:
    r = client.post("/register", json={"img": _b64(0), "img_name": "alice"})
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] >= 1
    assert client.post("/register", json={"img": _b64(0), "img_name": "alice"}).json() == {"inserted": 0}
    r = client.post("/search", json={"img": _b64(0), "k": 1})
    assert r.status_code == 200, r.text
    row = r.json()["results"][0][0]
    assert row["img_name"] == "alice" and row["distance"] < 1e-4
    r = client.post("/identify", json={"img": _b64(0), "identity_id": row["id"]})
    assert r.status_code == 200 and r.json()["verified"] is True, r.text
    assert client.post("/identify", json={"img": _b64(0), "identity_id": "nope"}).status_code == 404
    assert client.post("/build/index", json={}).status_code == 200
    assert client.post("/delete", json={"ids": [row["id"]]}).json() == {"deleted": 1}
    assert client.post("/delete", json={}).status_code == 422
    assert client.post("/search", json={"img": _b64(0), "search_method": "fuzzy"}).status_code == 422
    assert "POST /register" in client.get("/api").json()["routes"]


def test_delete_by_img_name_removes_every_face_of_the_identity(client: TestClient) -> None:
    alice = sum(client.post("/register", json={"img": _b64(i), "img_name": "alice"}).json()["inserted"]
                for i in (0, 1))
    assert alice >= 2
    r = client.post("/register", json={"img": _b64(2), "img_name": "bob"})
    assert r.status_code == 200, r.text
    bob = r.json()["inserted"]
    r = client.post("/delete", json={"img_name": "alice"})
    assert r.status_code == 200, r.text
    assert r.json() == {"deleted": alice}
    assert client.post("/delete", json={"img_name": "alice"}).json() == {"deleted": 0}
    assert client.post("/delete", json={"img_name": "carol"}).json() == {"deleted": 0}
    assert client.post("/delete", json={"img_name": "bob"}).json() == {"deleted": bob}


def test_unknown_store_url_stops_the_start() -> None:
    from facepipe.errors import StoreURLError

    with pytest.raises(StoreURLError):
        create_app(HERMETIC_CONFIG, registry=_registry(), gallery="nosuch://x")
