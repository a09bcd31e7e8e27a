"""``from facepipe import DeepFace``: deepface's functions, parameters, defaults and result shapes.

A deepface user changes one import line.  Defaults are deepface's (VGG-Face, opencv, cosine),
results are plain dicts / DataFrames with deepface's keys, and the exception names exist.
Intended differences (quirks fixed) are listed in ``docs/compat.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

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
               "face_detector": "detector"}


def _pipeline(model_name: str = "VGG-Face", detector_backend: str = "opencv", distance_metric: str = "cosine",
              *, enforce_detection: bool = True, align: bool = True, expand_percentage: float = 0,
              normalization: str = "base", threshold: float | None = None, actions: Sequence[str] = ()) -> Any:
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
    return get_pipeline(config)


def build_model(model_name: str, task: str = "facial_recognition") -> Any:
    """The plugin instance for a deepface model name (cached per process)."""
    from facepipe.registry import default_registry

    kind = _TASK_KINDS.get(task)
    if kind is None:
        raise UnimplementedError(f"unimplemented task {task!r}; choose one of {', '.join(_TASK_KINDS)}")
    cache = _built.setdefault(kind, {})
    if model_name not in cache:
        cache[model_name] = default_registry().create(kind, model_name)  # type: ignore[arg-type]
    return cache[model_name]


_built: dict[str, dict[str, Any]] = {}


def extract_faces(img_path: Any, detector_backend: str = "opencv", enforce_detection: bool = True,
                  align: bool = True, expand_percentage: int = 0, grayscale: bool = False,
                  color_face: str = "rgb", normalize_face: bool = True, anti_spoofing: bool = False,
                  max_faces: int | None = None) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
    """deepface's ``extract_faces``: a list of {face, facial_area, confidence} per image."""
    _no_antispoofing(anti_spoofing)
    if color_face not in ("rgb", "bgr", "gray"):
        raise UnimplementedError(f"color_face must be 'rgb', 'bgr' or 'gray', not {color_face!r}")
    pipeline = _pipeline("Dlib", detector_backend, enforce_detection=enforce_detection, align=align,
                         expand_percentage=expand_percentage)
    faces = pipeline.extract_faces(img_path, max_faces=max_faces)
    color: Any = "gray" if grayscale else color_face

    def convert(items: list[Any]) -> list[dict[str, Any]]:
        return [f.to_dict(color, normalize_face) for f in items]

    if _is_batch(img_path):
        return [convert(items) for items in faces]  # type: ignore[arg-type]
    return convert(faces)  # type: ignore[arg-type]


def represent(img_path: Any, model_name: str = "VGG-Face", enforce_detection: bool = True,
              detector_backend: str = "opencv", align: bool = True, expand_percentage: int = 0,
              normalization: str = "base", anti_spoofing: bool = False, max_faces: int | None = None,
              l2_normalize: bool = False, minmax_normalize: bool = False,
              return_face: bool = False) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
    """deepface's ``represent``: [{embedding, facial_area, face_confidence}] per image.

    A batch of one returns the nested form (deepface un-nests it: quirk fixed).
    """
    from facepipe.pipeline import metrics

    _no_antispoofing(anti_spoofing)
    pipeline = _pipeline(model_name, detector_backend, enforce_detection=enforce_detection, align=align,
                         expand_percentage=expand_percentage, normalization=normalization)
    reps = pipeline.represent(img_path, max_faces=max_faces)
    recognizer = pipeline.recognizer
    value_range = getattr(pipeline.recognizer_spec, "value_range", None)

    def convert(items: list[Any]) -> list[dict[str, Any]]:
        out = []
        for rep in items:
            vector = np.asarray(rep.embedding, dtype=np.float64)
            if minmax_normalize:
                vector = metrics.minmax_normalize(vector[None, :], value_range)[0]
            if l2_normalize:
                vector = metrics.l2_normalize(vector[None, :])[0]
            item = rep.to_dict()
            item["embedding"] = [float(v) for v in vector]
            if return_face:
                item["face"] = recognizer.preprocess([rep.face.crop])[0]
            out.append(item)
        return out

    if _is_batch(img_path):
        return [convert(items) for items in reps]  # type: ignore[arg-type]
    return convert(reps)  # type: ignore[arg-type]


def verify(img1_path: Any, img2_path: Any, model_name: str = "VGG-Face", detector_backend: str = "opencv",
           distance_metric: str = "cosine", enforce_detection: bool = True, align: bool = True,
           expand_percentage: int = 0, normalization: str = "base", silent: bool = False,
           threshold: float | None = None, anti_spoofing: bool = False) -> dict[str, Any]:
    """deepface's ``verify`` dict (verified, distance, threshold, confidence, model, ...)."""
    from facepipe.pipeline.metrics import round_distance

    _no_antispoofing(anti_spoofing)
    pipeline = _pipeline(model_name, detector_backend, distance_metric, enforce_detection=enforce_detection,
                         align=align, expand_percentage=expand_percentage, normalization=normalization)
    result = pipeline.verify(img1_path, img2_path, threshold=threshold)
    data = result.to_dict()
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
    _no_antispoofing(anti_spoofing)
    if isinstance(actions, str):
        actions = (actions,)
    actions = tuple(actions)
    if not actions:
        raise ConfigError("`actions` must be a list of strings.")
    for action in actions:
        if action not in ACTIONS:
            raise UnimplementedError(f"Invalid action passed ({action!r})). Valid actions are {', '.join(ACTIONS)}.")
    pipeline = _pipeline("Dlib", detector_backend, enforce_detection=enforce_detection, align=align,
                         expand_percentage=expand_percentage, actions=actions)
    results = pipeline.analyze(img_path, actions=list(actions))

    def convert(items: list[Any]) -> list[dict[str, Any]]:
        out = []
        for analysis in items:
            item = analysis.to_dict()
            if "age" in item:
                item["age"] = int(item["age"])
            out.append(item)
        return out

    if _is_batch(img_path):
        return [convert(items) for items in results]  # type: ignore[arg-type]
    return convert(results)  # type: ignore[arg-type]


def find(img_path: Any, db_path: str | Path, model_name: str = "VGG-Face", distance_metric: str = "cosine",
         enforce_detection: bool = True, detector_backend: str = "opencv", align: bool = True,
         similarity_search: bool = False, k: int | None = None, expand_percentage: int = 0,
         threshold: float | None = None, normalization: str = "base", silent: bool = False,
         refresh_database: bool = True, anti_spoofing: bool = False, batched: bool = False) -> Any:
    """deepface's ``find``: one DataFrame per query face (``batched=True``: lists of dicts)."""
    from facepipe.gallery.find import find as find_in_folder

    _no_antispoofing(anti_spoofing)
    pipeline = _pipeline(model_name, detector_backend, distance_metric, enforce_detection=enforce_detection,
                         align=align, expand_percentage=expand_percentage, normalization=normalization)
    results = find_in_folder(pipeline, img_path, db_path, threshold=threshold or None, k=k,
                             similarity_search=similarity_search, refresh=refresh_database,
                             progress=not silent)
    if batched:  # deepface's batched rows have no confidence column
        return [[{key: v for key, v in row.items() if key != "confidence"} for row in r.rows] for r in results]
    return [r.to_pandas() for r in results]


def stream(db_path: str = "", model_name: str = "VGG-Face", detector_backend: str = "opencv",
           distance_metric: str = "cosine", enable_face_analysis: bool = True, source: Any = 0,
           time_threshold: int = 5, frame_threshold: int = 5, anti_spoofing: bool = False,
           output_path: str | None = None, debug: bool = False) -> None:
    """deepface's ``stream``: recognise (and analyse) faces from a camera or video, in a window.

    Differences: faces are annotated live every ``frame_threshold`` frames instead of freezing the
    picture for ``time_threshold`` seconds; an empty ``db_path`` means "no recognition".
    """
    from facepipe.apps.stream import stream as run_stream

    _no_antispoofing(anti_spoofing)
    actions = ("age", "gender", "emotion") if enable_face_analysis else ()
    pipeline = _pipeline(model_name, detector_backend, distance_metric, enforce_detection=False, actions=actions)
    run_stream(source, pipeline=pipeline, db_path=db_path or None, actions=actions,
               every_n_frames=max(int(frame_threshold), 1), output_path=output_path, display=True,
               min_face_width=130)


def _is_batch(img: Any) -> bool:
    from facepipe.pipeline.orchestrator import _as_batch

    return _as_batch(img)[1]


def _no_antispoofing(flag: bool) -> None:
    if flag:
        raise UnimplementedError("anti_spoofing needs an anti-spoofing plugin; none is installed in facepipe yet")
