"""Request and response models of the service's gallery routes (``/register``, ``/search``,
``/identify``, ``/delete``, ``/build/index``); keys follow deepface's database functions."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from facepipe.apps.service_models import Base64Image, UploadedImage, _Request

ImgName = Annotated[str, Field(min_length=1, max_length=512,
                               description="who the face is (deepface's img_name); default: a random uuid")]
FaceId = Annotated[str, Field(min_length=1, max_length=128, description="a stored face's id (from /search)")]
K = Annotated[int, Field(ge=1, le=1000, description="at most this many matches per query face "
                                                    "(default: every match within the threshold)")]
SIMILARITY = Field(default=False, description="return the nearest faces even beyond the threshold (look-alikes)")
SEARCH_METHOD = Field(default="exact", pattern="^(exact|ann)$",
                      description="exact, or ann (an approximate index, where the store keeps one)")


class RegisterRequest(_Request):
    """``POST /register`` as JSON: a base64 image and who it is."""

    img: Base64Image
    img_name: ImgName | None = None


class RegisterForm(_Request):
    """``POST /register`` as a form."""

    img: UploadedImage
    img_name: ImgName | None = None


class SearchRequest(_Request):
    """``POST /search`` as JSON."""

    img: Base64Image
    k: K | None = None
    similarity_search: bool = SIMILARITY
    search_method: str = SEARCH_METHOD


class SearchForm(_Request):
    """``POST /search`` as a form."""

    img: UploadedImage
    k: K | None = None
    similarity_search: bool = SIMILARITY
    search_method: str = SEARCH_METHOD


class IdentifyRequest(_Request):
    """``POST /identify`` as JSON: is the image's face the stored face ``identity_id``?"""

    img: Base64Image
    identity_id: FaceId


class IdentifyForm(_Request):
    """``POST /identify`` as a form."""

    img: UploadedImage
    identity_id: FaceId


class DeleteRequest(_Request):
    """``POST /delete``: remove stored faces by id, or every face of an identity."""

    ids: Annotated[list[FaceId], Field(max_length=1000)] = Field(default_factory=list, description="face ids")
    img_name: ImgName | None = Field(default=None, description="also remove every face of this identity")


class BuildIndexRequest(_Request):
    """``POST /build/index``: no fields (an empty JSON object)."""


GALLERY_REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    RegisterRequest, RegisterForm, SearchRequest, SearchForm, IdentifyRequest, IdentifyForm,
)


class RegisterResponse(BaseModel):
    """How many faces were new (re-registering the same photo adds nothing)."""

    inserted: int


class SearchRow(BaseModel):
    """One stored face that matches (deepface's search columns)."""

    id: str
    img_name: str
    model_name: str
    detector_backend: str
    aligned: bool
    l2_normalized: bool
    search_method: str
    target_x: int
    target_y: int
    target_w: int
    target_h: int
    threshold: float
    distance_metric: str
    distance: float
    confidence: float


class SearchResponse(BaseModel):
    """One list of matches per face of the query image, nearest first."""

    results: list[list[SearchRow]]


class IdentifyFacialAreas(BaseModel):
    """The query face's box; the stored face's is not returned (as in deepface)."""

    img1: dict[str, int | list[int] | None]
    img2: None = None


class IdentifyResponse(BaseModel):
    """deepface's identify dict."""

    verified: bool
    distance: float
    threshold: float
    confidence: float
    model: str
    detector_backend: str
    similarity_metric: str
    id: str
    img_name: str
    facial_areas: IdentifyFacialAreas
    time: float


class DeleteResponse(BaseModel):
    """How many stored faces were removed."""

    deleted: int


class BuildIndexResponse(BaseModel):
    """The index is ready (stores without an approximate index have nothing to build)."""

    message: str
