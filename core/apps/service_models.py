"""The REST service's request and response models (pydantic), which are also its OpenAPI schema.

Each image route takes the same fields two ways: a JSON body with the images as base64 strings
(data URIs allowed), or a form (``multipart/form-data`` uploads, or base64 text fields).  The two
request models of a route differ only in how an image is described in the schema; both validate
the image into its raw bytes.  Responses keep deepface's keys.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema


def image_bytes(value: Any) -> bytes:
    """An uploaded file's bytes, or a base64 string / data URI decoded; ValueError says what is wrong."""
    if isinstance(value, (bytes, bytearray)):
        if not value:
            raise ValueError("the uploaded file is empty (0 bytes); attach the image file itself")
        return bytes(value)
    if not isinstance(value, str):
        raise ValueError(f"expected the image as a base64 string (or a data URI), got {type(value).__name__}")
    text = value.strip()
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            raise ValueError("a data URI must be base64-encoded: data:image/jpeg;base64,<data>")
    if not text:
        raise ValueError("the image is empty; send the file's bytes base64-encoded")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(
            f"not valid base64 ({exc}); send the file's bytes base64-encoded, optionally as a data URI "
            "(data:image/jpeg;base64,...). Server-side paths and URLs are not accepted"
        ) from None


_B64_DOC = "the image file's bytes, base64-encoded; a data URI (data:image/jpeg;base64,...) is fine"
#: an image in a JSON body: a base64 string, validated into bytes
Base64Image = Annotated[bytes, BeforeValidator(image_bytes),
                        WithJsonSchema({"type": "string", "contentEncoding": "base64", "description": _B64_DOC})]
#: an image in a form: a file upload (or a base64 text field), validated into bytes
UploadedImage = Annotated[bytes, BeforeValidator(image_bytes),
                          WithJsonSchema({"type": "string", "format": "binary",
                                          "description": "the image file (JPEG, PNG, ...)"})]

Threshold = Annotated[float, Field(ge=0, allow_inf_nan=False,
                                   description="decision threshold on the distance (default: the model's "
                                               "pre-tuned one); a finite number >= 0, at most the metric's "
                                               "largest distance (2 for cosine and euclidean_l2, 1 for angular)")]


def _action_names(value: Any) -> Any:
    """``"age, gender"`` or ``["age", "gender"]`` → ``["age", "gender"]``; other types left to pydantic."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [name.strip() for item in value for name in item.split(",") if name.strip()]
    return value


_ActionList = Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=16)]
Actions = Annotated[_ActionList | None, BeforeValidator(_action_names),
                    Field(default=None,
                          description="attributes to predict, a list or a comma-separated string "
                                      "(default: every configured analyzer)",
                          examples=[["age", "gender"]])]


class _Request(BaseModel):
    # Unknown fields are refused: a misspelt option ("treshold") must not be silently ignored.
    model_config = ConfigDict(extra="forbid")


class VerifyRequest(_Request):
    """``POST /verify`` as JSON: two base64 images."""

    img1: Base64Image
    img2: Base64Image
    threshold: Threshold | None = None


class VerifyForm(_Request):
    """``POST /verify`` as a form: two uploaded images."""

    img1: UploadedImage
    img2: UploadedImage
    threshold: Threshold | None = None


class ImageRequest(_Request):
    """``POST /represent`` as JSON: one base64 image."""

    img: Base64Image


class ImageForm(_Request):
    """``POST /represent`` as a form: one uploaded image."""

    img: UploadedImage


class AnalyzeRequest(ImageRequest):
    """``POST /analyze`` as JSON."""

    actions: Actions = None


class AnalyzeForm(ImageForm):
    """``POST /analyze`` as a form (``actions`` repeated or comma-separated)."""

    actions: Actions = None


class ExtractFacesRequest(ImageRequest):
    """``POST /extract_faces`` as JSON."""

    align: bool | None = Field(default=None, description="rotate faces upright (default: the config's align)")


class ExtractFacesForm(ImageForm):
    """``POST /extract_faces`` as a form."""

    align: bool | None = Field(default=None, description="rotate faces upright (default: the config's align)")


#: every request model, for the OpenAPI components (routes refer to them by name)
REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    VerifyRequest, VerifyForm, ImageRequest, ImageForm, AnalyzeRequest, AnalyzeForm,
    ExtractFacesRequest, ExtractFacesForm,
)


# --- responses ---------------------------------------------------------------------------------
Point = tuple[int, int]


class FacialArea(BaseModel):
    """A face's box and landmarks in pixels of the sent image (deepface's ``facial_area``)."""

    x: int
    y: int
    w: int
    h: int
    left_eye: Point | None = None
    right_eye: Point | None = None
    nose: Point | None = None
    mouth_left: Point | None = None
    mouth_right: Point | None = None


class VerifyFacialAreas(BaseModel):
    """The faces that decided: the closest pair."""

    img1: FacialArea
    img2: FacialArea


class VerifyResponse(BaseModel):
    """deepface's verify dict."""

    verified: bool
    distance: float
    threshold: float
    confidence: float
    model: str
    detector_backend: str
    similarity_metric: str
    facial_areas: VerifyFacialAreas
    time: float


class Representation(BaseModel):
    """One face's embedding (deepface's ``represent`` item)."""

    embedding: list[float]
    facial_area: FacialArea
    face_confidence: float


class RepresentResponse(BaseModel):
    """Every face of the image, one embedding each."""

    results: list[Representation]


class Analysis(BaseModel):
    """One face's attributes (deepface's ``analyze`` item): each action's keys, e.g. ``age``,
    ``dominant_gender`` and ``gender``, plus ``region`` and ``face_confidence``."""

    model_config = ConfigDict(extra="allow")

    region: FacialArea
    face_confidence: float


class AnalyzeResponse(BaseModel):
    """Every face of the image with its attributes."""

    results: list[Analysis]


class ExtractedFace(BaseModel):
    """A detected face."""

    facial_area: FacialArea
    confidence: float


class ExtractFacesResponse(BaseModel):
    """Every face of the image."""

    results: list[ExtractedFace]


class PluginRow(BaseModel):
    """One installed plugin (as ``facepipe plugins --json``)."""

    name: str
    kind: str
    distribution: str | None = None
    version: str | None = None
    status: str
    extra: str | None = None
    install: str | None = None
    aliases: list[str] = []
    error: str | None = None
    description: str | None = None
    license: str | None = None


class PoolInfo(BaseModel):
    """The bounded pool the model work runs on."""

    workers: int
    queue: int
    timeout_s: float
    busy: int = Field(description="requests running or waiting now")


class ServiceInfo(BaseModel):
    """What ``/health`` and ``/api`` say about the service."""

    service: str
    version: str
    detector: str
    recognizer: str
    metric: str
    pool: PoolInfo


class ApiIndex(ServiceInfo):
    """``/api``: the service's info plus its routes."""

    routes: dict[str, str]
    docs: str


class ErrorResponse(BaseModel):
    """Every non-2xx answer: the error's type and a message naming the field and the fix."""

    error: str = Field(examples=["InvalidFieldError"])
    detail: str = Field(examples=["threshold: Input should be a finite number"])
