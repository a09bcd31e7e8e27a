"""The REST service (FastAPI): verify, represent, analyze, extract_faces, plugins, health.

Input policy: images arrive as multipart uploads or base64 strings (data URIs allowed) — never
as server-side paths, never as URLs.  Size and pixel limits are checked before decoding.  When the
service listens on a non-loopback address a bearer token is required (compared in constant
time).  Every answer other than 2xx is JSON ``{"error": <type>, "detail": <message>}``; nothing a
client sends gets a 5xx (see :mod:`facepipe.apps.service_errors`).  Model work runs on a bounded
pool (:mod:`facepipe.apps.service_pool`): 503 with ``Retry-After`` when it is full, 504 past the
request timeout.  Request and response models (:mod:`facepipe.apps.service_models`) make the
OpenAPI schema at ``/openapi.json``, so ``/docs`` can try every call.

Run it with ``facepipe serve`` (needs ``pip install 'facepipe[service]'``).  This module imports
FastAPI at the top: only the service imports it.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from facepipe.apps import service_models as m
from facepipe.apps.service_gallery_models import GALLERY_REQUEST_MODELS
from facepipe.apps.service_errors import (
    InvalidFieldError,
    UnauthorizedError,
    install_error_handlers,
    status_for,
)
from facepipe.apps.service_input import SERVICE_MAX_BYTES, SERVICE_MAX_PIXELS, read_request
from facepipe.apps.service_pool import DEFAULT_TIMEOUT_S, WorkerPool
from facepipe.apps.web import mount as mount_web_page
from facepipe.errors import ConfigError

__all__ = ["SERVICE_MAX_BYTES", "SERVICE_MAX_PIXELS", "create_app", "serve"]

_status_for = status_for  # the name older tests and callers use

#: the largest distance of the bounded built-in metrics (a threshold above it accepts every pair)
METRIC_MAX_DISTANCE = {"cosine": 2.0, "euclidean_l2": 2.0, "angular": 1.0}

#: the routes, for the ``/api`` index
ROUTES = {
    "GET /health": "liveness and the configured models (no token needed)",
    "GET /api": "this index (no token needed)",
    "GET /plugins": "installed plugins",
    "POST /verify": "img1, img2 [, threshold]: are they the same person?",
    "POST /represent": "img: one embedding per face",
    "POST /analyze": "img [, actions]: age, gender, emotion, race, ... per face",
    "POST /extract_faces": "img [, align]: the faces' boxes",
    "GET /": "the web page (try verify and analyze in a browser)",
    "GET /docs": "interactive API documentation (OpenAPI at /openapi.json)",
}

_IMAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": m.ErrorResponse, "description": "malformed body (not JSON, not an object, broken form) "
                                                   "or an option the configuration cannot serve"},
    401: {"model": m.ErrorResponse, "description": "missing or wrong bearer token"},
    413: {"model": m.ErrorResponse, "description": "body or image too large"},
    415: {"model": m.ErrorResponse, "description": "not an image, or a content type other than JSON / form"},
    422: {"model": m.ErrorResponse, "description": "a field is missing, empty, mistyped or out of range; "
                                                   "or no face was found"},
    503: {"model": m.ErrorResponse, "description": "at capacity: retry after the Retry-After header's seconds"},
    504: {"model": m.ErrorResponse, "description": "the request took longer than the service's timeout"},
}


def _body(json_model: type[BaseModel], form_model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI ``requestBody`` of an image route: the JSON model or the form model."""
    ref = "#/components/schemas/{}".format
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": ref(json_model.__name__)}},
        "multipart/form-data": {"schema": {"$ref": ref(form_model.__name__)}},
    }}}


def create_app(config: Any = None, *, token: str | None = None, registry: Any = None, preload: bool = False,
               workers: int | None = None, queue: int | None = None,
               timeout_s: float = DEFAULT_TIMEOUT_S, gallery: str | None = None) -> FastAPI:
    """Build the FastAPI application around one pipeline (models are built once and shared).

    ``preload=True`` loads every configured model before the app is returned, so the first
    request is as fast as the others (and a missing weight file stops the start, not a request).
    Model work runs on ``workers`` threads (default: one per CPU core) with at most ``queue``
    requests waiting (default: eight per worker); ``timeout_s`` bounds one request's wait + work.
    ``gallery`` (a folder or a store URL) adds the gallery routes (``/register``, ``/search``, ...).
    """
    from facepipe import __version__
    from facepipe.pipeline.image import ImageLimits, load_image
    from facepipe.pipeline.orchestrator import Pipeline

    pool = WorkerPool(workers, queue, timeout_s)
    pipeline = Pipeline.from_config(config, registry=registry)
    if preload:
        pipeline.prepare()
    expected = token if token is not None else os.environ.get("FACEPIPE_API_TOKEN") or None
    limits = ImageLimits(max_bytes=SERVICE_MAX_BYTES, max_pixels=SERVICE_MAX_PIXELS)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown()

    app = FastAPI(title="facepipe", version=__version__, lifespan=lifespan,
                  description="Face verification, embeddings and attribute analysis. Images are sent as "
                              "base64 strings in JSON or as multipart uploads. Errors are "
                              '`{"error": type, "detail": message}`.')
    app.state.pipeline = pipeline
    app.state.pool = pool
    install_error_handlers(app)
    bearer = HTTPBearer(auto_error=False, description="required when the service was started with a token")

    def authorize(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if expected is None:
            return
        supplied = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(supplied.encode(), expected.encode()):
            raise UnauthorizedError("invalid or missing bearer token: send the header "
                                    "'Authorization: Bearer <token>' with the service's token")

    def image(data: bytes, field: str) -> np.ndarray:
        return load_image(data, name=field, limits=limits).image

    async def work(fn: Callable[[], Any]) -> Any:
        return await pool.run(fn)

    def info() -> dict[str, Any]:
        return {"service": "facepipe", "version": __version__, "detector": pipeline.config.detector.name,
                "recognizer": pipeline.config.recognizer.name, "metric": pipeline.config.metric.name,
                "pool": {"workers": pool.workers, "queue": pool.queue, "timeout_s": pool.timeout_s,
                         "busy": pool.busy}}

    @app.get("/health", response_model=m.ServiceInfo, tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness and the configured models; needs no token."""
        return info()

    @app.get("/api", response_model=m.ApiIndex, tags=["service"])
    def api_index() -> dict[str, Any]:
        """The service's info and its routes; needs no token."""
        return {**info(), "routes": routes, "docs": "/docs"}

    @app.get("/plugins", response_model=list[m.PluginRow], dependencies=[Depends(authorize)], tags=["service"],
             responses={401: _IMAGE_ERRORS[401]})
    def plugins() -> list[dict[str, Any]]:
        """The plugins this service's registry knows, with their status."""
        return [row.to_dict() for row in pipeline.registry.plugins()]

    def image_route(path: str, response: type[BaseModel], json_model: type[BaseModel],
                    form_model: type[BaseModel]) -> Callable[[Any], Any]:
        """``POST path``: token checked, JSON or form body documented, errors documented."""
        return app.post(path, response_model=response, dependencies=[Depends(authorize)], tags=["faces"],
                        responses=_IMAGE_ERRORS, response_model_exclude_unset=True,
                        openapi_extra=_body(json_model, form_model))

    @image_route("/verify", m.VerifyResponse, m.VerifyRequest, m.VerifyForm)
    async def verify(request: Request) -> dict[str, Any]:
        """Do the two images show the same person? The closest pair of their faces decides."""
        body = await read_request(request, m.VerifyRequest, m.VerifyForm)
        threshold = body.threshold  # type: ignore[attr-defined]
        largest = METRIC_MAX_DISTANCE.get(pipeline.metric_name)
        if threshold is not None and largest is not None and threshold > largest:
            raise InvalidFieldError(f"threshold: {threshold:g} is out of range: {pipeline.metric_name} distances "
                                    f"lie in [0, {largest:g}], so send a threshold between 0 and {largest:g}")

        def job() -> dict[str, Any]:
            img1, img2 = image(body.img1, "img1"), image(body.img2, "img2")  # type: ignore[attr-defined]
            return pipeline.verify(img1, img2, threshold=threshold).to_dict()

        return await work(job)

    @image_route("/represent", m.RepresentResponse, m.ImageRequest, m.ImageForm)
    async def represent(request: Request) -> dict[str, Any]:
        """One embedding per face of the image."""
        body = await read_request(request, m.ImageRequest, m.ImageForm)

        def job() -> dict[str, Any]:
            reps = pipeline.represent(image(body.img, "img"))  # type: ignore[attr-defined]
            return {"results": [r.to_dict() for r in reps]}

        return await work(job)

    @image_route("/analyze", m.AnalyzeResponse, m.AnalyzeRequest, m.AnalyzeForm)
    async def analyze(request: Request) -> dict[str, Any]:
        """Attributes (age, gender, emotion, race, ...) of every face."""
        body = await read_request(request, m.AnalyzeRequest, m.AnalyzeForm)
        actions = body.actions or None  # type: ignore[attr-defined]
        configured = list(pipeline.config.analyzers)
        unknown = [a for a in actions or () if a not in configured]
        if unknown:
            raise InvalidFieldError(f"actions: no analyzer is configured for {', '.join(map(repr, unknown))}; "
                                    f"this service offers {', '.join(configured) or 'none'}")

        def job() -> dict[str, Any]:
            results = pipeline.analyze(image(body.img, "img"), actions)  # type: ignore[attr-defined]
            return {"results": [r.to_dict() for r in results]}

        return await work(job)

    @image_route("/extract_faces", m.ExtractFacesResponse, m.ExtractFacesRequest, m.ExtractFacesForm)
    async def extract_faces(request: Request) -> dict[str, Any]:
        """The faces of the image: boxes, eyes and detection confidence."""
        body = await read_request(request, m.ExtractFacesRequest, m.ExtractFacesForm)
        align = pipeline.config.align if body.align is None else body.align  # type: ignore[attr-defined]

        def job() -> dict[str, Any]:
            faces = pipeline.extract_faces(image(body.img, "img"), align=align)  # type: ignore[attr-defined]
            return {"results": [{"facial_area": f.area.to_dict(), "confidence": round(f.confidence, 2)}
                                for f in faces]}

        return await work(job)

    routes = dict(ROUTES)
    if gallery is not None:
        from facepipe.apps.gallery_ops import open_gallery
        from facepipe.apps.service_gallery import GALLERY_ROUTES, mount_gallery_routes

        store = open_gallery(gallery, pipeline)  # a bad URL or unreachable server stops the start
        app.state.gallery = store
        mount_gallery_routes(app, pipeline, store, authorize=authorize, image=image, work=work,
                             errors=_IMAGE_ERRORS, body=_body)
        routes.update(GALLERY_ROUTES)

    mount_web_page(app)  # GET / and /web/*, after the JSON routes

    def openapi() -> dict[str, Any]:
        # FastAPI documents only models it parses itself; the image routes read their bodies by hand
        # (JSON or form), so their request models are added to the components here.
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            models = m.REQUEST_MODELS + (GALLERY_REQUEST_MODELS if gallery is not None else ())
            _, defs = models_json_schema([(model, "validation") for model in models],
                                         ref_template="#/components/schemas/{model}")
            schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def serve(config: Any = None, *, host: str = "127.0.0.1", port: int = 5005, token: str | None = None,
          preload: bool = False, workers: int | None = None, queue: int | None = None,
          timeout_s: float = DEFAULT_TIMEOUT_S, gallery: str | None = None) -> None:
    """Run the service with uvicorn. A non-loopback host requires a token."""
    import uvicorn

    token = token or os.environ.get("FACEPIPE_API_TOKEN") or None
    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        raise ConfigError(f"listening on {host} needs a bearer token: set FACEPIPE_API_TOKEN or pass --token")
    app = create_app(config, token=token, preload=preload, workers=workers, queue=queue, timeout_s=timeout_s,
                     gallery=gallery)
    uvicorn.run(app, host=host, port=port, workers=1)
