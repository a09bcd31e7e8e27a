"""``from facepipe import DeepFace``: deepface's functions, parameters, defaults and result shapes.

A deepface user changes one import line.  Defaults are deepface's (VGG-Face, opencv, cosine),
results are plain dicts / DataFrames with deepface's keys, and the exception names exist.
Intended differences (quirks fixed) are listed in ``docs/compat.md``.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from facepipe.apps import deepface_compat as compat
from facepipe.apps import deepface_gallery as dfg
from facepipe.errors import (  # noqa: F401 - deepface's exception names, re-exported
    ConfigError,
    DataTypeError,
    DimensionMismatchError,
    EmptyDatasource,
    FaceNotDetected,
    ImgNotFound,
    InvalidEmbeddingsShapeError,
    PathNotFound,
    SpoofDetected,
    UnimplementedError,
)

__version__ = "0.1.0"

ACTIONS = ("emotion", "age", "gender", "race")
_ANALYZERS = {"emotion": "Emotion", "age": "Age", "gender": "Gender", "race": "Race"}
_TASK_KINDS = {"facial_recognition": "recognizer", "facial_attribute": "analyzer",
               "face_detector": "detector", "spoofing": "antispoofer"}
#: the anti-spoofing plugin ``anti_spoofing=True`` uses (deepface's only one)
ANTISPOOFER = "Fasnet"
#: deepface's messages when a face is judged fake (verify's lacks "the")
SPOOF_MESSAGE = "Spoof detected in the given image."
VERIFY_SPOOF_MESSAGE = "Spoof detected in given image."


def _pipeline(model_name: str = "VGG-Face", detector_backend: str = "opencv", distance_metric: str = "cosine",
              *, enforce_detection: bool = True, align: bool = True, expand_percentage: float = 0,
              normalization: str = "base", threshold: float | None = None, actions: Sequence[str] = (),
              anti_spoofing: bool = False) -> Any:
    from facepipe.functions import get_pipeline
    from facepipe.registry import default_registry

    registry = default_registry()
    recognizer: Any = model_name
    if normalization != "base":
        spec = registry.get("recognizer", model_name)
        if "normalization" not in spec.config.model_fields:
            raise UnimplementedError(f"{model_name} does not support normalization={normalization!r}")
        recognizer = {"name": model_name, "normalization": normalization}
    config = {
        "detector": detector_backend,
        "recognizer": recognizer,
        "metric": distance_metric,
        "align": align,
        # deepface detects on a 50 %-padded image when aligning: keep that here so boxes and
        # distances match deepface's exactly (facepipe's own default skips the padding).
        "pad_before_detect": align,
        "expand_percentage": max(float(expand_percentage), 0.0),  # deepface: negative → 0 with a warning
        "on_no_face": "error" if enforce_detection else "whole_image",
        "threshold": threshold or None,
        "analyzers": {a: _ANALYZERS[a] for a in actions},
    }
    if anti_spoofing:
        config["anti_spoofing"] = ANTISPOOFER
    return get_pipeline(config)


def build_model(model_name: str, task: str = "facial_recognition") -> Any:
    """The plugin instance for a deepface model name (cached per process)."""
    from facepipe.registry import default_registry

    kind = _TASK_KINDS.get(task)
    if kind is None:
        raise UnimplementedError(f"unimplemented task {task!r}; choose one of {', '.join(_TASK_KINDS)}")
    cache = _built.setdefault(kind, {})
    if model_name not in cache:
        model = default_registry().create(kind, model_name)  # type: ignore[arg-type]
        # attribute models answer predict() with deepface's numpy types, not facepipe's dicts
        cache[model_name] = compat.AttributeClient(model, model_name) if kind == "analyzer" else model
    return cache[model_name]


_built: dict[str, dict[str, Any]] = {}


def extract_faces(img_path: Any, detector_backend: str = "opencv", enforce_detection: bool = True,
                  align: bool = True, expand_percentage: int = 0, grayscale: bool = False,
                  color_face: str = "rgb", normalize_face: bool = True, anti_spoofing: bool = False,
                  max_faces: int | None = None) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
    """deepface's ``extract_faces``: a list of {face, facial_area, confidence} per image
    (``anti_spoofing=True`` adds ``is_real`` and ``antispoof_score``)."""
    if color_face not in ("rgb", "bgr", "gray"):
        raise UnimplementedError(f"color_face must be 'rgb', 'bgr' or 'gray', not {color_face!r}")
    pipeline = _pipeline("Dlib", detector_backend, enforce_detection=enforce_detection, align=align,
                         expand_percentage=expand_percentage, anti_spoofing=anti_spoofing)
    batch = _is_batch(img_path)
    inputs, sizes = compat.load_inputs(img_path, batch)
    faces = pipeline.extract_faces(inputs, max_faces=max_faces)
    color: Any = "gray" if grayscale else color_face

    def convert(items: list[Any], size: tuple[int, int]) -> list[dict[str, Any]]:
        out = []
        for face in items:
            item = face.to_dict(color, normalize_face)
            item["facial_area"] = compat.deepface_area(item["facial_area"], size)
            out.append(item)
        return out

    if batch:
        return [convert(items, size) for items, size in zip(faces, sizes)]  # type: ignore[arg-type]
    return convert(faces, sizes[0])  # type: ignore[arg-type]


def represent(img_path: Any, model_name: str = "VGG-Face", enforce_detection: bool = True,
              detector_backend: str = "opencv", align: bool = True, expand_percentage: int = 0,
              normalization: str = "base", anti_spoofing: bool = False, max_faces: int | None = None,
              l2_normalize: bool = False, minmax_normalize: bool = False,
              return_face: bool = False) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
    """deepface's ``represent``: [{embedding, facial_area, face_confidence}] per image.

    A batch of one returns the nested form (deepface un-nests it: quirk fixed).
    """
    from facepipe.pipeline import metrics

    pipeline = _pipeline(model_name, detector_backend, enforce_detection=enforce_detection, align=align,
                         expand_percentage=expand_percentage, normalization=normalization,
                         anti_spoofing=anti_spoofing)
    batch = _is_batch(img_path)
    inputs, sizes = compat.load_inputs(img_path, batch)
    with _spoof_message(SPOOF_MESSAGE):
        reps = pipeline.represent(inputs, max_faces=max_faces)
    recognizer = pipeline.recognizer
    value_range = getattr(pipeline.recognizer_spec, "value_range", None)

    def convert(items: list[Any], size: tuple[int, int]) -> list[dict[str, Any]]:
        out = []
        for rep in items:
            vector = np.asarray(rep.embedding, dtype=np.float64)
            if minmax_normalize:
                vector = metrics.minmax_normalize(vector[None, :], value_range)[0]
            if l2_normalize:
                vector = metrics.l2_normalize(vector[None, :])[0]
            item = rep.to_dict()
            if detector_backend != "skip":  # deepface reports skip's whole image unclamped
                item["facial_area"] = compat.deepface_area(item["facial_area"], size)
            item["embedding"] = [float(v) for v in vector]
            if return_face:
                item["face"] = recognizer.preprocess([rep.face.crop])[0]
            out.append(item)
        return out

    if batch:
        return [convert(items, size) for items, size in zip(reps, sizes)]  # type: ignore[arg-type]
    return convert(reps, sizes[0])  # type: ignore[arg-type]


def verify(img1_path: Any, img2_path: Any, model_name: str = "VGG-Face", detector_backend: str = "opencv",
           distance_metric: str | Callable[..., Any] = "cosine", enforce_detection: bool = True, align: bool = True,
           expand_percentage: int = 0, normalization: str = "base", silent: bool = False,
           threshold: float | None = None, anti_spoofing: bool = False) -> dict[str, Any]:
    """deepface's ``verify`` dict (verified, distance, threshold, confidence, model, ...).

    ``distance_metric`` may be a callable taking two 1-D vectors (0.0.103); it needs ``threshold``.
    """
    from facepipe.pipeline.metrics import round_distance
    from facepipe.pipeline.orchestrator import is_embedding

    compat.require_threshold(distance_metric, threshold)
    custom = not isinstance(distance_metric, str)
    pipeline = _pipeline(model_name, detector_backend, "cosine" if custom else distance_metric,
                         enforce_detection=enforce_detection, align=align, expand_percentage=expand_percentage,
                         normalization=normalization, anti_spoofing=anti_spoofing)
    sides = []
    for index, value in ((1, img1_path), (2, img2_path)):
        compat.check_embedding_list(value, index, model_name, pipeline.embedding_size)
        # lists are deepface's embeddings; tuples and 1-D arrays are facepipe's too
        sides.append((value, isinstance(value, list) or is_embedding(value)))
    if custom:
        with _spoof_message(VERIFY_SPOOF_MESSAGE):
            return compat.custom_verify(pipeline, sides, distance_metric, float(threshold),  # type: ignore[arg-type]
                                        model_name, detector_backend)
    inputs, sizes = [], []
    for value, embedded in sides:
        if embedded:
            inputs.append(value)
            sizes.append((0, 0))
        else:
            loaded, (size,) = compat.load_inputs(value, batch=False)
            inputs.append(loaded)
            sizes.append(size)
    with _spoof_message(VERIFY_SPOOF_MESSAGE):
        result = pipeline.verify(inputs[0], inputs[1], threshold=threshold)
    data = result.to_dict()
    data["facial_areas"] = {key: compat.deepface_area(area, size)
                            for (key, area), size in zip(data["facial_areas"].items(), sizes)}
    data["distance"] = float(round_distance(data["distance"]))
    data["model"] = model_name
    data["detector_backend"] = detector_backend
    return data


def analyze(img_path: Any, actions: Sequence[str] | str = ACTIONS, enforce_detection: bool = True,
            detector_backend: str = "opencv", align: bool = True, expand_percentage: int = 0,
            silent: bool = False, anti_spoofing: bool = False) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
    """deepface's ``analyze``: per face the requested attributes, ``region`` and ``face_confidence``.

    ``age`` is an int here, as in deepface (facepipe's own API reports the float).
    """
    if isinstance(actions, str):
        actions = (actions,)
    actions = tuple(actions)
    if not actions:
        raise ConfigError("`actions` must be a list of strings.")
    for action in actions:
        if action not in ACTIONS:
            raise UnimplementedError(f"Invalid action passed ({action!r})). Valid actions are {', '.join(ACTIONS)}.")
    pipeline = _pipeline("Dlib", detector_backend, enforce_detection=enforce_detection, align=align,
                         expand_percentage=expand_percentage, actions=actions, anti_spoofing=anti_spoofing)
    batch = _is_batch(img_path)
    inputs, sizes = compat.load_inputs(img_path, batch)
    with _spoof_message(SPOOF_MESSAGE):
        results = pipeline.analyze(inputs, actions=list(actions))

    def convert(items: list[Any], size: tuple[int, int]) -> list[dict[str, Any]]:
        out = []
        for analysis in items:
            item = analysis.to_dict()
            if "age" in item:
                item["age"] = int(item["age"])
            item["region"] = compat.deepface_area(item["region"], size)
            out.append(item)
        return out

    if batch:
        return [convert(items, size) for items, size in zip(results, sizes)]  # type: ignore[arg-type]
    return convert(results, sizes[0])  # type: ignore[arg-type]


def find(img_path: Any, db_path: str | Path, model_name: str = "VGG-Face",
         distance_metric: str | Callable[..., Any] = "cosine", enforce_detection: bool = True,
         detector_backend: str = "opencv", align: bool = True, similarity_search: bool = False,
         k: int | None = None, expand_percentage: int = 0, threshold: float | None = None,
         normalization: str = "base", silent: bool = False, refresh_database: bool = True,
         anti_spoofing: bool = False, datastore_format: str = "npz", return_type: str | None = None,
         batched: bool = False) -> Any:
    """deepface's ``find``: one DataFrame per query face, or (``return_type="dict"``) one list of
    row dicts per query face.

    ``datastore_format`` is checked and otherwise moot (facepipe keeps a SQLite index);
    ``batched=True`` is the pre-0.0.103 spelling of dict rows (without ``confidence``).
    A callable ``distance_metric`` needs ``threshold`` and is called as 0.0.103 calls it.
    """
    from facepipe.gallery.find import find as find_in_folder

    return_type = compat.resolve_return_type("dict" if batched and return_type is None else return_type)
    compat.require_threshold(distance_metric, threshold)
    compat.check_datastore_format(datastore_format)
    compat.check_db_path(db_path)
    custom = not isinstance(distance_metric, str)
    pipeline = _pipeline(model_name, detector_backend, "cosine" if custom else distance_metric,
                         enforce_detection=enforce_detection, align=align, expand_percentage=expand_percentage,
                         normalization=normalization)
    distance_fn = compat.find_distance_fn(distance_metric, return_type) if custom else None  # type: ignore[arg-type]
    loaded, (size,) = compat.load_inputs(img_path, batch=False)
    if anti_spoofing:
        # Only the query is judged, as in deepface: the folder's photos are indexed without it.
        checker = _pipeline(model_name, detector_backend, enforce_detection=enforce_detection, align=align,
                            expand_percentage=expand_percentage, normalization=normalization, anti_spoofing=True)
        if any(face.is_real is False for face in checker.extract_faces(loaded)):
            raise SpoofDetected(SPOOF_MESSAGE)
    results = find_in_folder(pipeline, loaded, db_path, threshold=threshold if custom else threshold or None,
                             k=k, similarity_search=similarity_search, refresh=refresh_database,
                             progress=not silent, distance_fn=distance_fn)
    for result in results:  # the query's box as deepface reports it
        for row in result.rows:
            area = compat.deepface_area({"x": row["source_x"], "y": row["source_y"], "w": row["source_w"],
                                         "h": row["source_h"]}, size)
            row.update(source_x=area["x"], source_y=area["y"], source_w=area["w"], source_h=area["h"])
    if batched:  # the older batched rows have no confidence column
        return [[{key: v for key, v in row.items() if key != "confidence"} for row in r.rows] for r in results]
    if return_type == "dict":
        return [r.to_dicts() for r in results]
    return [r.to_pandas() for r in results]


def register(img: Any, img_name: str | None = None, model_name: str = "VGG-Face",
             detector_backend: str = "opencv", enforce_detection: bool = True, align: bool = True,
             l2_normalize: bool = False, expand_percentage: int = 0, normalization: str = "base",
             anti_spoofing: bool = False, database_type: str = "postgres",
             connection_details: dict[str, Any] | str | None = None, connection: Any = None) -> dict[str, int]:
    """deepface's ``register``: store the faces of ``img`` (or of each image of a list) as
    ``img_name``; returns ``{"inserted": n}`` (re-registering the same photo inserts nothing).

    ``database_type="sqlite"`` is facepipe's embedded store (``connection_details`` its folder);
    ``"pgvector"`` / ``"postgres"`` and ``"milvus"`` are the server stores.  ``connection`` may be an
    open :class:`facepipe.gallery.Gallery`.
    """
    from facepipe.apps import gallery_ops

    pipeline = _pipeline(model_name, detector_backend, enforce_detection=enforce_detection, align=align,
                         expand_percentage=expand_percentage, normalization=normalization,
                         anti_spoofing=anti_spoofing)
    gallery = _gallery(pipeline, database_type, connection_details, connection)
    sources = list(img) if isinstance(img, list) else [img]
    inserted = 0
    with _spoof_message(SPOOF_MESSAGE):
        for source in sources:
            image = compat.load_inputs(source, batch=False)[0].image
            inserted += gallery_ops.register(pipeline, gallery, image, img_name or dfg.default_img_name(source))
    return {"inserted": inserted}


def search(img: Any, model_name: str = "VGG-Face", detector_backend: str = "opencv",
           distance_metric: str = "cosine", enforce_detection: bool = True, align: bool = True,
           l2_normalize: bool = False, expand_percentage: int = 0, normalization: str = "base",
           anti_spoofing: bool = False, similarity_search: bool = False, k: int | None = None,
           database_type: str = "postgres", connection_details: dict[str, Any] | str | None = None,
           connection: Any = None, search_method: str = "exact", return_type: str | None = None) -> Any:
    """deepface's ``search``: per query face a DataFrame (or, ``return_type="dict"``, a list of
    dicts) of the stored faces within the threshold (all nearest with ``similarity_search``),
    nearest first, at most ``k``; deepface's columns (see ``SEARCH_COLUMNS``)."""
    from facepipe.apps import gallery_ops

    return_type = compat.resolve_return_type(return_type)
    metric = dfg.resolve_metric(distance_metric, l2_normalize, search_method)
    pipeline = _pipeline(model_name, detector_backend, metric, enforce_detection=enforce_detection, align=align,
                         expand_percentage=expand_percentage, normalization=normalization,
                         anti_spoofing=anti_spoofing)
    gallery = _gallery(pipeline, database_type, connection_details, connection)
    dfg.require_faces(len(gallery), pipeline)
    if k is None and search_method == "ann":
        k = dfg.ANN_DEFAULT_K
    results = []
    sources = list(img) if isinstance(img, list) else [img]
    with _spoof_message(SPOOF_MESSAGE):
        for source in sources:
            image = compat.load_inputs(source, batch=False)[0].image
            for query in gallery_ops.search(pipeline, gallery, image, None, exact=search_method == "exact"):
                results.append(dfg.search_rows(pipeline, query.matches, similarity_search=similarity_search,
                                               k=k, search_method=search_method, aligned=align,
                                               l2_normalized=l2_normalize))
    if return_type == "dict":
        return results
    import pandas as pd

    return [pd.DataFrame(rows, columns=list(dfg.SEARCH_COLUMNS)) for rows in results]


def identify(img: Any, identity_id: str | int, model_name: str = "VGG-Face", detector_backend: str = "opencv",
             distance_metric: str = "cosine", enforce_detection: bool = True, align: bool = True,
             l2_normalize: bool = False, expand_percentage: int = 0, normalization: str = "base",
             anti_spoofing: bool = False, database_type: str = "postgres",
             connection_details: dict[str, Any] | str | None = None, connection: Any = None) -> dict[str, Any]:
    """deepface's ``identify``: is the face of ``img`` (its nearest face) the stored face
    ``identity_id`` (an id from :func:`search`)?  deepface's verify-like dict."""
    import time

    from facepipe.apps import gallery_ops

    started = time.time()
    metric = dfg.resolve_metric(distance_metric, l2_normalize, "exact")
    pipeline = _pipeline(model_name, detector_backend, metric, enforce_detection=enforce_detection, align=align,
                         expand_percentage=expand_percentage, normalization=normalization,
                         anti_spoofing=anti_spoofing)
    gallery = _gallery(pipeline, database_type, connection_details, connection)
    loaded, (size,) = compat.load_inputs(img, batch=False)
    with _spoof_message(SPOOF_MESSAGE):
        query, match = gallery_ops.compare(pipeline, gallery, loaded.image, str(identity_id))
    return dfg.identify_result(pipeline, match.distance, match.face, compat.deepface_area(query.facial_area, size),
                               started)


def build_index(model_name: str = "VGG-Face", detector_backend: str = "opencv", align: bool = True,
                l2_normalize: bool = False, database_type: str = "postgres", connection: Any = None,
                connection_details: dict[str, Any] | str | None = None, max_neighbors_per_node: int = 32) -> None:
    """deepface's ``build_index``: make ``search_method="ann"`` fast.  facepipe's stores keep their
    approximate index up to date as faces are added, so this only checks the database can be
    opened (and builds the index of a store that builds it on request)."""
    pipeline = _pipeline(model_name, detector_backend, align=align)
    gallery = _gallery(pipeline, database_type, connection_details, connection)
    builder = getattr(gallery, "build_index", None)
    if callable(builder):
        builder()


def _gallery(pipeline: Any, database_type: str, connection_details: Any, connection: Any) -> Any:
    """deepface's database arguments → an open gallery (``connection``: an open Gallery is used as is)."""
    from facepipe.apps import gallery_ops

    if connection is not None:
        if not all(hasattr(connection, name) for name in ("add", "search", "get", "delete")):
            raise UnimplementedError("connection must be an open facepipe.gallery.Gallery; pass "
                                     "connection_details (a path or URL) otherwise")
        return connection
    return gallery_ops.open_gallery(dfg.store_url(database_type, connection_details), pipeline)


def stream(db_path: str = "", model_name: str = "VGG-Face", detector_backend: str = "opencv",
           distance_metric: str = "cosine", enable_face_analysis: bool = True, source: Any = 0,
           time_threshold: int = 5, frame_threshold: int = 5, anti_spoofing: bool = False,
           output_path: str | None = None, debug: bool = False) -> None:
    """deepface's ``stream``: recognise (and analyse) faces from a camera or video, in a window.

    Differences: faces are annotated live every ``frame_threshold`` frames instead of freezing the
    picture for ``time_threshold`` seconds; an empty ``db_path`` means "no recognition".  With
    ``anti_spoofing=True`` fake faces are boxed in red (as deepface does) and never identified.
    """
    from facepipe.apps.stream import stream as run_stream

    actions = ("age", "gender", "emotion") if enable_face_analysis else ()
    pipeline = _pipeline(model_name, detector_backend, distance_metric, enforce_detection=False, actions=actions)
    antispoofer = build_model(ANTISPOOFER, task="spoofing") if anti_spoofing else None
    run_stream(source, pipeline=pipeline, db_path=db_path or None, actions=actions,
               every_n_frames=max(int(frame_threshold), 1), output_path=output_path, display=True,
               min_face_width=130, antispoofer=antispoofer)


def _is_batch(img: Any) -> bool:
    from facepipe.pipeline.orchestrator import _as_batch

    return _as_batch(img)[1]


@contextmanager
def _spoof_message(message: str) -> Iterator[None]:
    """Re-raise the pipeline's SpoofDetected with deepface's exact message (the cause keeps facepipe's)."""
    try:
        yield
    except SpoofDetected as exc:
        raise SpoofDetected(message) from exc
