"""The REST service (FastAPI): verify, represent, analyze, extract_faces, plugins.

Input policy: images arrive as multipart uploads or base64 strings (data URIs allowed) — never
as server-side paths, never as URLs.  Size and pixel limits are checked before decoding.  When the
service listens on a non-loopback address a bearer token is required (compared in constant
time).  Errors are JSON with a status code that says what kind of problem it was.

Run it with ``facepipe serve`` (needs ``pip install 'facepipe[service]'``).  This module imports
FastAPI at the top: only the service imports it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from typing import Any, cast

import numpy as np
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from facepipe.errors import (
    ConfigError,
    DimensionMismatchError,
    FaceNotDetectedError,
    FacepipeError,
    ImageDecodeError,
    ImageTooLargeError,
    ImageTypeError,
    PluginError,
)
from facepipe.pipeline.results import Analysis, Face, Representation

#: Limits for images sent to the service (lower than the library's defaults).
SERVICE_MAX_BYTES = 15 * 1024 * 1024
SERVICE_MAX_PIXELS = 40_000_000


def _status_for(exc: FacepipeError) -> int:
    """The 4xx status of a typed error: every FacepipeError is the caller's problem, never a 500."""
    if isinstance(exc, ImageTooLargeError):
        return 413
    if isinstance(exc, (ImageDecodeError, ImageTypeError)):
        return 415
    if isinstance(exc, (FaceNotDetectedError, DimensionMismatchError)):
        return 422
    if isinstance(exc, (ConfigError, PluginError)):
        return 400
    return 400


def decode_image_field(value: Any, field: str) -> np.ndarray:
    """An uploaded file's bytes or a base64 string → BGR image, with the service's limits."""
    from facepipe.pipeline.image import ImageLimits, load_image

    limits = ImageLimits(max_bytes=SERVICE_MAX_BYTES, max_pixels=SERVICE_MAX_PIXELS)
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("data:"):
            _, _, text = text.partition(",")
        if len(text) > SERVICE_MAX_BYTES * 4 // 3 + 4:
            raise ImageTooLargeError(f"{field}: base64 image of {len(text)} chars exceeds {SERVICE_MAX_BYTES} bytes")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ImageTypeError(
                f"{field}: send the image as a multipart upload or as base64 (server-side paths and URLs "
                "are not accepted)"
            ) from None
    else:
        raise ImageTypeError(f"{field}: expected an uploaded file or a base64 string")
    return load_image(data, name=field, limits=limits).image


def create_app(config: Any = None, *, token: str | None = None, registry: Any = None,
               preload: bool = False) -> Any:
    """Build the FastAPI application around one pipeline (models are built once and shared).

    ``preload=True`` loads every configured model before the app is returned, so the first
    request is as fast as the others (and a missing weight file stops the start, not a request).
    """
    from facepipe import __version__
    from facepipe.pipeline.orchestrator import Pipeline

    pipeline = Pipeline.from_config(config, registry=registry)
    if preload:
        pipeline.prepare()
    expected = token if token is not None else os.environ.get("FACEPIPE_API_TOKEN") or None
    app = FastAPI(title="facepipe", version=__version__,
                  description="Face verification, embeddings and attribute analysis.")
    app.state.pipeline = pipeline

    def authorize(authorization: str | None = Header(default=None)) -> None:
        if expected is None:
            return
        supplied = (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(supplied.encode(), expected.encode()):
            raise HTTPException(status_code=401, detail="invalid or missing bearer token")

    @app.exception_handler(FacepipeError)
    async def facepipe_error(request: Request, exc: FacepipeError) -> JSONResponse:
        return JSONResponse(status_code=_status_for(exc), content={"error": type(exc).__name__, "detail": str(exc)})

    async def read_images(request: Request, names: tuple[str, ...]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            form = await request.form()
            raw = {k: (await v.read() if hasattr(v, "read") else v) for k, v in form.items()}
        else:
            try:
                raw = await request.json()
            except ValueError:
                raise ImageTypeError("send JSON or multipart/form-data") from None
            if not isinstance(raw, dict):
                raise ImageTypeError("the JSON body must be an object")
        images = {}
        for name in names:
            if name not in raw or raw[name] in (None, "", b""):
                raise ImageTypeError(f"missing image field {name!r}")
            images[name] = decode_image_field(raw[name], name)
        options = {k: v for k, v in raw.items() if k not in names}
        return images, options

    def boolean(value: Any, name: str) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{name} must be true or false, got {value!r}")

    def optional_number(value: Any, name: str) -> float | None:
        if value in (None, ""):
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, got {value!r}") from None

    def action_list(value: Any) -> list[str] | None:
        if value in (None, ""):
            return None
        if isinstance(value, str):
            return [a.strip() for a in value.split(",") if a.strip()]
        if isinstance(value, list) and all(isinstance(a, str) for a in value):
            return value
        raise ConfigError(f"actions must be a list of strings or a comma-separated string, got {value!r}")

    @app.get("/")
    def health() -> dict[str, Any]:
        return {"service": "facepipe", "version": __version__, "detector": pipeline.config.detector.name,
                "recognizer": pipeline.config.recognizer.name, "metric": pipeline.config.metric.name}

    @app.get("/plugins", dependencies=[Depends(authorize)])
    def plugins() -> list[dict[str, Any]]:
        return [row.to_dict() for row in pipeline.registry.plugins()]

    @app.post("/verify", dependencies=[Depends(authorize)])
    async def verify(request: Request) -> dict[str, Any]:
        images, options = await read_images(request, ("img1", "img2"))
        threshold = optional_number(options.get("threshold"), "threshold")
        result = await run_in_threadpool(pipeline.verify, images["img1"], images["img2"], threshold=threshold)
        return result.to_dict()

    @app.post("/represent", dependencies=[Depends(authorize)])
    async def represent(request: Request) -> dict[str, Any]:
        images, options = await read_images(request, ("img",))
        reps = await run_in_threadpool(pipeline.represent, images["img"])
        return {"results": [r.to_dict() for r in cast(list[Representation], reps)]}

    @app.post("/analyze", dependencies=[Depends(authorize)])
    async def analyze(request: Request) -> dict[str, Any]:
        images, options = await read_images(request, ("img",))
        actions = action_list(options.get("actions"))
        results = await run_in_threadpool(pipeline.analyze, images["img"], actions)
        return {"results": [r.to_dict() for r in cast(list[Analysis], results)]}

    @app.post("/extract_faces", dependencies=[Depends(authorize)])
    async def extract_faces(request: Request) -> dict[str, Any]:
        images, options = await read_images(request, ("img",))
        align = boolean(options.get("align", pipeline.config.align), "align")
        faces = await run_in_threadpool(pipeline.extract_faces, images["img"], align=align)
        return {"results": [{"facial_area": f.area.to_dict(), "confidence": round(f.confidence, 2)}
                            for f in cast(list[Face], faces)]}

    return app


def serve(config: Any = None, *, host: str = "127.0.0.1", port: int = 5005, token: str | None = None,
          preload: bool = False) -> None:
    """Run the service with uvicorn. A non-loopback host requires a token."""
    import uvicorn

    token = token or os.environ.get("FACEPIPE_API_TOKEN") or None
    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        raise ConfigError(f"listening on {host} needs a bearer token: set FACEPIPE_API_TOKEN or pass --token")
    uvicorn.run(create_app(config, token=token, preload=preload), host=host, port=port, workers=1)
