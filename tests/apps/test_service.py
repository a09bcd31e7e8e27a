"""The REST service, run by a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.extras import need
need("fastapi")
uvicorn = need("uvicorn")
httpx = need("httpx")
need("dlib")

from facepipe.apps.service import create_app  # noqa: E402

TOKEN = "s3cret-token"
CONFIG = {"detector": "opencv", "recognizer": "Dlib", "metric": "cosine", "detect_max_side": 800}


@pytest.fixture(scope="module")
def server():  # type: ignore[no-untyped-def]
    app = create_app(CONFIG, token=TOKEN)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    yield client
    client.close()
    srv.should_exit = True
    thread.join(timeout=10)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_health_needs_no_token(server) -> None:  # type: ignore[no-untyped-def]
    r = httpx.get(str(server.base_url) + "/health")
    assert r.status_code == 200 and r.json()["recognizer"] == "Dlib"


def test_token_required(server) -> None:  # type: ignore[no-untyped-def]
    r = httpx.post(str(server.base_url) + "/verify", json={}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


def test_verify_with_uploads(server, dataset: Path) -> None:  # type: ignore[no-untyped-def]
    files = {"img1": (dataset / "img1.jpg").read_bytes(), "img2": (dataset / "img2.jpg").read_bytes()}
    r = server.post("/verify", files=files)
    assert r.status_code == 200, r.text
    assert r.json()["verified"] is True


def test_verify_with_base64_json(server, dataset: Path) -> None:  # type: ignore[no-untyped-def]
    r = server.post("/verify", json={"img1": _b64(dataset / "img1.jpg"),
                                     "img2": "data:image/jpeg;base64," + _b64(dataset / "img3.jpg")})
    assert r.status_code == 200, r.text
    assert r.json()["verified"] is False


def test_represent(server, dataset: Path) -> None:  # type: ignore[no-untyped-def]
    r = server.post("/represent", files={"img": (dataset / "img2.jpg").read_bytes()})
    assert r.status_code == 200
    (item,) = r.json()["results"]
    assert len(item["embedding"]) == 128


def test_server_side_paths_are_refused(server, dataset: Path) -> None:  # type: ignore[no-untyped-def]
    r = server.post("/represent", json={"img": str(dataset / "img1.jpg")})
    assert r.status_code == 422
    assert "Server-side paths and URLs are not accepted" in r.json()["detail"]


@pytest.mark.parametrize("payload,status", [
    ({"img": base64.b64encode(b"not an image at all").decode()}, 415),
    ({"img": "%%%not-base64%%%"}, 422),
    ({}, 422),
])
def test_bad_inputs_get_typed_errors_and_the_server_keeps_serving(server, payload, status) -> None:  # type: ignore[no-untyped-def]
    r = server.post("/represent", json=payload)
    assert r.status_code == status
    assert "error" in r.json()
    assert server.get("/health").status_code == 200


def test_no_face_is_422(server) -> None:  # type: ignore[no-untyped-def]
    import cv2
    import numpy as np

    ok, png = cv2.imencode(".png", np.full((100, 100, 3), 255, np.uint8))
    r = server.post("/represent", files={"img": png.tobytes()})
    assert r.status_code == 422 and r.json()["error"] == "FaceNotDetectedError"


def test_concurrent_requests(server, dataset: Path) -> None:  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    body = {"img": _b64(dataset / "img2.jpg")}
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda _: server.post("/represent", json=body).status_code, range(4)))
    assert codes == [200] * 4


def test_non_loopback_without_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from facepipe.errors import ConfigError
    from facepipe.apps.service import serve

    monkeypatch.delenv("FACEPIPE_API_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="needs a bearer token"):
        serve(CONFIG, host="0.0.0.0", port=0)


def test_preload_loads_models_before_serving() -> None:
    app = create_app(CONFIG, token=TOKEN, preload=True)
    assert app.state.pipeline.recognizer._model is not None  # Dlib's ResNet, loaded up front


def test_preload_with_a_broken_weight_file_fails_at_start(tmp_path: Path) -> None:
    need("keras")
    from facepipe.errors import WeightsError

    broken = tmp_path / "facenet_weights.h5"
    broken.write_bytes(b"not an HDF5 file")
    config = dict(CONFIG, recognizer={"name": "Facenet", "weights_path": str(broken)})
    assert create_app(config, token=TOKEN) is not None  # lazy: the problem waits for a request
    with pytest.raises(WeightsError, match="facenet_weights.h5"):
        create_app(config, token=TOKEN, preload=True)
