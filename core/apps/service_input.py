"""Reading a request body into its pydantic model: JSON (base64 images) or a form (uploads).

Every way a body can be wrong ends in a typed error with the field's name: too large (413), not
JSON / not an object / broken multipart (400), a content type the service does not read (415),
a missing, empty, mistyped or out-of-range field (422).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from facepipe.apps.service_errors import (
    BodyTooLargeError,
    InvalidFieldError,
    MalformedBodyError,
    UnsupportedMediaTypeError,
    describe_validation_errors,
)

#: Limits for images sent to the service (lower than the library's defaults).
SERVICE_MAX_BYTES = 15 * 1024 * 1024
SERVICE_MAX_PIXELS = 40_000_000
#: a body holds at most two images, base64 inflates by 4/3, plus room for the other fields
MAX_BODY_BYTES = 2 * (SERVICE_MAX_BYTES * 4 // 3) + 64 * 1024

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
M = TypeVar("M", bound=BaseModel)


async def read_request(request: Any, json_model: type[M], form_model: type[M]) -> M:
    """The request's body validated by ``json_model`` (JSON) or ``form_model`` (a form)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large(int(declared))
    if content_type in FORM_TYPES:
        raw, model = await _read_form(request, json_model), form_model
    elif content_type in ("", "application/json") or content_type.endswith("+json"):
        raw, model = await _read_json(request, json_model), json_model
    else:
        raise UnsupportedMediaTypeError(
            f"Content-Type {content_type!r} is not accepted: send application/json with base64 images, "
            "or multipart/form-data with file uploads")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidFieldError(describe_validation_errors(list(exc.errors(include_url=False)))) from None


async def _read_json(request: Any, model: type[BaseModel]) -> dict[str, Any]:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise _too_large(len(body))
    example = _example(model)
    if not body.strip():
        raise MalformedBodyError(f"the request body is empty: send a JSON object such as {example}, "
                                 "or multipart/form-data with file uploads")
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise MalformedBodyError(f"the body is not valid JSON ({reason}); send a JSON object such as "
                                 f"{example}") from None
    if not isinstance(raw, dict):
        kind = _json_type(raw)
        article = "an" if kind[0] in "aeiou" else "a"
        raise MalformedBodyError(f"the JSON body must be an object such as {example}, not {article} {kind}")
    return raw


async def _read_form(request: Any, model: type[BaseModel]) -> dict[str, Any]:
    fields = len(model.model_fields)
    try:
        form = await request.form(max_files=fields, max_fields=4 * fields,
                                  max_part_size=SERVICE_MAX_BYTES * 4 // 3 + 1024)
    except Exception as exc:  # the multipart parser's errors differ across Starlette versions
        detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
        raise MalformedBodyError(f"the form could not be read ({detail}); send multipart/form-data with "
                                 f"the fields {', '.join(model.model_fields)}") from None
    raw: dict[str, Any] = {}
    try:
        for key in form.keys():
            values = [await v.read() if hasattr(v, "read") else v for v in form.getlist(key)]
            raw[key] = values[0] if len(values) == 1 else values
    finally:
        await form.close()
    return raw


def _too_large(size: int) -> BodyTooLargeError:
    return BodyTooLargeError(f"the request body has {size} bytes, more than the service's limit of "
                             f"{MAX_BODY_BYTES} bytes (images up to {SERVICE_MAX_BYTES // (1024 * 1024)} MB each)")


def _example(model: type[BaseModel]) -> str:
    required = [name for name, field in model.model_fields.items() if field.is_required()]
    return "{" + ", ".join(f'"{name}": "<base64>"' for name in required) + "}"


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)
