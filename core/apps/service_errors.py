"""The REST service's errors: one JSON shape, ``{"error": <type>, "detail": <message>}``, for every
status it answers other than 2xx, and the status code of each kind of problem.

A client can never cause a 5xx: typed errors (:class:`~facepipe.errors.FacepipeError`) map to
4xx, Starlette's own 404 / 405 and FastAPI's validation errors are reshaped, and the only 5xx are
503 (busy) and 504 (took too long), which are about the server, not the request.
"""

from __future__ import annotations

import logging
from typing import Any

from facepipe.errors import (
    ConfigError,
    DimensionMismatchError,
    FaceNotDetectedError,
    FacepipeError,
    ImageDecodeError,
    ImageTooLargeError,
    ImageTypeError,
    PluginError,
    SpoofDetectedError,
    StoreAuthError,
    StoreConnectionError,
    StoreError,
)

log = logging.getLogger("facepipe.service")


class ServiceError(FacepipeError):
    """A problem with an HTTP request itself (its shape, not its images); ``status`` is the answer."""

    status = 400


class MalformedBodyError(ServiceError):
    """The body could not be parsed (not JSON, not a JSON object, broken multipart)."""

    status = 400


class UnauthorizedError(ServiceError):
    """The bearer token is missing or wrong."""

    status = 401


class RouteNotFoundError(ServiceError):
    """No route has this path."""

    status = 404


class MethodNotAllowedError(ServiceError):
    """The route exists but not with this HTTP method."""

    status = 405


class BodyTooLargeError(ServiceError):
    """The request body exceeds the service's byte limit."""

    status = 413


class UnsupportedMediaTypeError(ServiceError):
    """The body is neither JSON nor a form (multipart or url-encoded)."""

    status = 415


class InvalidFieldError(ServiceError):
    """A field is missing, of the wrong type or out of range; the message names it."""

    status = 422


class ServiceBusyError(ServiceError):
    """Every worker is busy and the queue is full: try again after ``retry_after`` seconds."""

    status = 503

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestTimeoutError(ServiceError):
    """The model work did not finish within the service's request timeout."""

    status = 504


def status_for(exc: FacepipeError) -> int:
    """The HTTP status of a typed error: every FacepipeError a client causes is a 4xx, never a 500."""
    if isinstance(exc, ServiceError):
        return exc.status
    if isinstance(exc, ImageTooLargeError):
        return 413
    if isinstance(exc, (ImageDecodeError, ImageTypeError)):
        return 415
    if isinstance(exc, (FaceNotDetectedError, DimensionMismatchError, SpoofDetectedError)):
        return 422
    if isinstance(exc, (StoreConnectionError, StoreAuthError)):
        return 503  # the gallery's server, not the request
    if isinstance(exc, StoreError) and type(exc).__name__ == "FaceIdNotFoundError":
        return 404
    if isinstance(exc, (ConfigError, PluginError)):
        return 400
    return 400


def error_body(error: str, detail: str) -> dict[str, str]:
    """The one error shape of the service."""
    return {"error": error, "detail": detail}


def describe_validation_errors(errors: list[dict[str, Any]], root: str = "body") -> str:
    """Pydantic's error list as one sentence per field: ``threshold: Input should be a finite number``."""
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",)) or root
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        if err.get("type") == "missing":
            message = "this field is required"
        elif err.get("type") == "extra_forbidden":
            message = "unknown field (check its spelling; see /docs for the accepted fields)"
        parts.append(f"{loc}: {message}")
    return "; ".join(parts)


def install_error_handlers(app: Any) -> None:
    """Route every exception the app can meet to the ``{"error", "detail"}`` shape."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import Request

    def answer(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(status_code=status, content=error_body(error, detail), headers=headers)

    @app.exception_handler(FacepipeError)
    async def facepipe_error(request: Request, exc: FacepipeError) -> JSONResponse:
        headers = None
        if isinstance(exc, ServiceBusyError):
            headers = {"Retry-After": str(exc.retry_after)}
        elif isinstance(exc, UnauthorizedError):
            headers = {"WWW-Authenticate": "Bearer"}
        return answer(status_for(exc), type(exc).__name__, str(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return answer(422, InvalidFieldError.__name__, describe_validation_errors(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return answer(404, RouteNotFoundError.__name__,
                          f"no route {request.url.path!r}; see /api for the routes and /docs to try them")
        if exc.status_code == 405:
            return answer(405, MethodNotAllowedError.__name__,
                          f"{request.method} is not allowed on {request.url.path}; allowed: "
                          f"{(exc.headers or {}).get('Allow', 'see /docs')}", exc.headers)
        if exc.status_code == 400:  # e.g. Starlette's multipart parser
            return answer(400, MalformedBodyError.__name__, str(exc.detail))
        return answer(exc.status_code, "HTTPError", str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        # A bug in facepipe, never the client's input: keep the shape, log the traceback.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return answer(500, "InternalError", f"{type(exc).__name__}: an unexpected server error; it is logged")
