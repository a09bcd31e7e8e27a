"""The service's gallery routes: ``/register``, ``/search``, ``/identify``, ``/delete``,
``/build/index`` on the one gallery the service was started with (``facepipe serve --gallery URL``).

The routes are mounted only when a gallery is configured.  Store problems keep the error shape:
an unknown face id is 404, a mismatching model 422, an unreachable or refusing store server 503.
"""

from __future__ import annotations

from typing import Any, Callable

from fastapi import Depends, FastAPI, Request

from facepipe.apps import gallery_ops
from facepipe.apps import service_gallery_models as g
from facepipe.apps import service_models as m
from facepipe.apps.deepface_gallery import search_rows
from facepipe.apps.service_errors import InvalidFieldError
from facepipe.apps.service_input import read_request

#: the routes, for the ``/api`` index
GALLERY_ROUTES = {
    "POST /register": "img [, img_name]: store the image's faces in the gallery",
    "POST /search": "img [, k, similarity_search, search_method]: the gallery's nearest faces per face",
    "POST /identify": "img, identity_id: is the image's face this stored face?",
    "POST /delete": "ids and/or img_name: remove stored faces",
    "POST /build/index": "prepare the approximate index (search_method=ann)",
}

_STORE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": m.ErrorResponse, "description": "no stored face has this identity_id"},
    503: {"model": m.ErrorResponse, "description": "at capacity (Retry-After), or the gallery's server is "
                                                   "unreachable or refuses the service's credentials"},
}


def mount_gallery_routes(app: FastAPI, pipeline: Any, gallery: Any, *, authorize: Callable[..., None],
                         image: Callable[[bytes, str], Any], work: Callable[[Callable[[], Any]], Any],
                         errors: dict[int | str, dict[str, Any]], body: Callable[..., dict[str, Any]]) -> None:
    """Add the gallery routes to ``app`` (the service's token check, image limits and worker pool)."""
    responses = {**errors, **_STORE_ERRORS}

    def route(path: str, response: type[Any], json_model: type[Any], form_model: type[Any] | None = None) -> Any:
        extra = body(json_model, form_model or json_model)
        return app.post(path, response_model=response, dependencies=[Depends(authorize)], tags=["gallery"],
                        responses=responses, openapi_extra=extra)

    @route("/register", g.RegisterResponse, g.RegisterRequest, g.RegisterForm)
    async def register(request: Request) -> dict[str, Any]:
        """Store every face of the image as ``img_name`` (idempotent: the same photo adds nothing)."""
        req = await read_request(request, g.RegisterRequest, g.RegisterForm)
        name = req.img_name or gallery_ops.new_identity()  # type: ignore[attr-defined]

        def job() -> dict[str, Any]:
            img = image(req.img, "img")  # type: ignore[attr-defined]
            return {"inserted": gallery_ops.register(pipeline, gallery, img, name)}

        return await work(job)

    @route("/search", g.SearchResponse, g.SearchRequest, g.SearchForm)
    async def search(request: Request) -> dict[str, Any]:
        """The stored faces nearest to each face of the image (within the threshold unless
        ``similarity_search``), nearest first."""
        req: Any = await read_request(request, g.SearchRequest, g.SearchForm)

        def job() -> dict[str, Any]:
            queries = gallery_ops.search(pipeline, gallery, image(req.img, "img"), None,
                                         exact=req.search_method == "exact")
            return {"results": [search_rows(pipeline, q.matches, similarity_search=req.similarity_search, k=req.k,
                                            search_method=req.search_method, aligned=pipeline.config.align,
                                            l2_normalized=False) for q in queries]}

        return await work(job)

    @route("/identify", g.IdentifyResponse, g.IdentifyRequest, g.IdentifyForm)
    async def identify(request: Request) -> dict[str, Any]:
        """Is the image's face (its nearest face) the stored face ``identity_id``?"""
        import time

        from facepipe.apps.deepface_gallery import identify_result

        req: Any = await read_request(request, g.IdentifyRequest, g.IdentifyForm)
        started = time.time()

        def job() -> dict[str, Any]:
            query, match = gallery_ops.compare(pipeline, gallery, image(req.img, "img"), req.identity_id)
            return identify_result(pipeline, match.distance, match.face, query.facial_area, started)

        return await work(job)

    @route("/delete", g.DeleteResponse, g.DeleteRequest)
    async def delete(request: Request) -> dict[str, Any]:
        """Remove stored faces by id and/or every face of ``img_name``."""
        req: Any = await read_request(request, g.DeleteRequest, g.DeleteRequest)
        if not req.ids and req.img_name is None:
            raise InvalidFieldError("ids: send the ids of the faces to remove, or img_name to remove an identity")
        return await work(lambda: {"deleted": gallery_ops.delete(gallery, req.ids, req.img_name)})

    @route("/build/index", g.BuildIndexResponse, g.BuildIndexRequest)
    async def build_index(request: Request) -> dict[str, Any]:
        """Prepare the approximate index used by ``search_method=ann``."""
        await read_request(request, g.BuildIndexRequest, g.BuildIndexRequest)
        return await work(lambda: {"message": gallery_ops.build_index(gallery)})
