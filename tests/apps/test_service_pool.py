"""The service's bounded pool: a full queue answers 503 + Retry-After, a slow request 504.

In-process (httpx's ASGI transport) on the hermetic plugins; the model call is made to wait on an
event so the pool is really full while the next request arrives.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from tests.helpers.extras import need

need("fastapi", "service")
httpx = need("httpx")

from facepipe.apps.service import create_app  # noqa: E402
from facepipe.apps.service_pool import WorkerPool  # noqa: E402
from facepipe.errors import ConfigError  # noqa: E402
from facepipe.testing import HERMETIC_CONFIG, hermetic_registry  # noqa: E402
from tests.helpers.synthetic_faces import photo, png_bytes  # noqa: E402

PNG = png_bytes(photo(1, 0))


def held_app(**pool: Any) -> tuple[Any, threading.Event, threading.Event]:
    """An app whose ``represent`` blocks until ``release`` is set (``started`` tells it began)."""
    app = create_app(HERMETIC_CONFIG, registry=hermetic_registry(), **pool)
    pipeline = app.state.pipeline
    real = pipeline.represent
    started, release = threading.Event(), threading.Event()

    def represent(*args: Any, **kwargs: Any) -> Any:
        started.set()
        release.wait(10)
        return real(*args, **kwargs)

    pipeline.represent = represent
    return app, started, release


async def _wait_for(event: threading.Event) -> None:
    for _ in range(500):
        if event.is_set():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the first request never reached the model")


def test_a_full_queue_answers_503_with_retry_after() -> None:
    app, started, release = held_app(workers=1, queue=0, timeout_s=30)

    async def scenario() -> tuple[Any, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            first = asyncio.create_task(client.post("/represent", files={"img": PNG}))
            await _wait_for(started)
            refused = await client.post("/represent", files={"img": PNG})
            release.set()
            return await first, refused

    first, refused = asyncio.run(scenario())
    assert first.status_code == 200, first.text
    assert refused.status_code == 503
    assert refused.json()["error"] == "ServiceBusyError"
    assert "at capacity (1 workers busy, 0 requests waiting)" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) >= 1
    app.state.pool.shutdown()


def test_a_queued_request_waits_its_turn() -> None:
    app, started, release = held_app(workers=1, queue=1, timeout_s=30)

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            first = asyncio.create_task(client.post("/represent", files={"img": PNG}))
            await _wait_for(started)
            queued = asyncio.create_task(client.post("/represent", files={"img": PNG}))
            await asyncio.sleep(0.1)
            assert app.state.pool.busy == 2
            release.set()
            return [(await first).status_code, (await queued).status_code]

    assert asyncio.run(scenario()) == [200, 200]
    assert app.state.pool.busy == 0
    app.state.pool.shutdown()


def test_a_request_past_the_timeout_answers_504() -> None:
    app, started, release = held_app(workers=1, queue=0, timeout_s=0.3)

    async def scenario() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            return await client.post("/represent", files={"img": PNG})

    try:
        r = asyncio.run(scenario())
    finally:
        release.set()
    assert r.status_code == 504
    assert r.json()["error"] == "RequestTimeoutError"
    assert "did not finish within 0.3 s" in r.json()["detail"]
    app.state.pool.shutdown()


def test_health_reports_the_pool() -> None:
    from fastapi.testclient import TestClient

    app = create_app(HERMETIC_CONFIG, registry=hermetic_registry(), workers=3, queue=5, timeout_s=12)
    pool = TestClient(app).get("/health").json()["pool"]
    assert pool == {"workers": 3, "queue": 5, "timeout_s": 12.0, "busy": 0}


@pytest.mark.parametrize("options,message", [
    ({"workers": 0}, "workers must be an integer >= 1"),
    ({"queue": -1}, "queue must be an integer >= 0"),
    ({"timeout_s": float("nan")}, "timeout must be a number of seconds > 0"),
    ({"timeout_s": 0}, "timeout must be a number of seconds > 0"),
])
def test_bad_pool_options_are_config_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WorkerPool(**options)
