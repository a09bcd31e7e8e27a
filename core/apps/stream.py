"""Face recognition and analysis on a video stream (a camera or a video file).

Every ``every_n_frames``-th frame is processed — faces detected, optionally identified against a
folder of photos (through the same incremental index as ``find``) and analysed — and the latest
results are drawn on every frame until the next processed one.  Frames can be written to a video
file and/or shown in a window.  :func:`iter_stream` yields the results for programs that want the
data rather than the picture.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from facepipe.apps.draw import KNOWN, UNKNOWN, Mark, draw_faces, face_label
from facepipe.errors import ConfigError, ImageNotFoundError
from facepipe.progress import ProgressArg

#: the box colour (BGR) of a face the anti-spoofing plugin judged fake
FAKE = (0, 0, 255)


@dataclass(frozen=True)
class StreamFace:
    """One face of a processed frame."""

    area: Any  # FacialArea
    confidence: float
    identity: str | None = None  # the matched photo's path (None: no match within the threshold)
    distance: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    is_real: bool | None = None  # set when anti-spoofing ran; a fake face is never identified
    antispoof_score: float | None = None

    def label(self) -> str:
        text = face_label(identity=self.identity, attributes=self.attributes)
        return f"fake {text}".strip() if self.is_real is False else text

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the box, landmarks, confidence, identity, distance and attributes; with
        anti-spoofing, deepface's ``is_real`` and ``antispoof_score``)."""
        out = {**self.area.to_dict(), "confidence": self.confidence, "identity": self.identity,
               "distance": self.distance, **self.attributes}
        if self.is_real is not None:
            out.update(is_real=self.is_real, antispoof_score=self.antispoof_score)
        return out


@dataclass(frozen=True)
class FrameResult:
    """The faces found in one processed frame."""

    frame_index: int
    faces: list[StreamFace]

    def to_dict(self) -> dict[str, Any]:
        return {"frame": self.frame_index, "faces": [face.to_dict() for face in self.faces]}


def _open(source: int | str | os.PathLike[str]) -> Any:
    import cv2

    target: int | str = source if isinstance(source, int) else os.fspath(source)
    if isinstance(target, str) and target.isdigit():
        target = int(target)
    capture = cv2.VideoCapture(target)
    if not capture.isOpened():
        raise ImageNotFoundError(f"could not open the video source {source!r} (a camera index or a video file)")
    return capture


def iter_stream(source: int | str | os.PathLike[str], pipeline: Any, *, db_path: str | os.PathLike[str] | None = None,
                actions: Sequence[str] = (), every_n_frames: int = 5, max_frames: int | None = None,
                min_face_width: int = 0, threshold: float | None = None,
                frames: list[np.ndarray] | None = None,
                index_progress: ProgressArg = False,
                antispoofer: Any = None) -> Iterator[tuple[int, np.ndarray, FrameResult | None]]:
    """Yield ``(frame_index, frame, result)`` for every frame; ``result`` is set on processed frames.

    ``frames``: if given, frames are taken from this list instead of ``source`` (for tests and
    for callers that decode video themselves).  ``index_progress``: the progress setting of the
    gallery's index refresh (see :mod:`facepipe.progress`; off by default).  ``antispoofer``: an
    :class:`facepipe.types.AntiSpoofer` that judges each face (deepface's ``anti_spoofing``);
    it runs here rather than in the pipeline so the photos of ``db_path`` are not judged.
    """
    if every_n_frames < 1:
        raise ConfigError(f"every_n_frames must be >= 1, got {every_n_frames}")
    index = None
    limit = pipeline.threshold(threshold)
    if db_path is not None:
        from facepipe.gallery.find import FaceIndex

        index = FaceIndex.open(db_path, pipeline)
        index.refresh(progress=index_progress)
    analyzers = {action: pipeline.analyzer(action) for action in actions}
    capture = None if frames is not None else _open(source)
    try:
        frame_index = 0
        while max_frames is None or frame_index < max_frames:
            if frames is not None:
                if frame_index >= len(frames):
                    break
                frame = frames[frame_index]
            else:
                ok, frame = capture.read()
                if not ok:
                    break
            result = None
            if frame_index % every_n_frames == 0:
                result = _process(frame_index, frame, pipeline, index, analyzers, limit, min_face_width,
                                  antispoofer)
            yield frame_index, frame, result
            frame_index += 1
    finally:
        if capture is not None:
            capture.release()
        if index is not None:
            index.close()


def _process(frame_index: int, frame: np.ndarray, pipeline: Any, index: Any, analyzers: dict[str, Any],
             limit: float, min_face_width: int, antispoofer: Any = None) -> FrameResult:
    from dataclasses import replace

    faces = [f for f in pipeline.faces([frame], on_no_face="skip")[0] if f.area.w >= min_face_width]
    if antispoofer is not None and faces:
        judged = antispoofer.check(frame, [(f.area.x, f.area.y, f.area.w, f.area.h) for f in faces])
        faces = [replace(f, is_real=bool(real), antispoof_score=float(score))
                 for f, (real, score) in zip(faces, judged)]
    identities: list[tuple[str | None, float | None]] = [(None, None)] * len(faces)
    # Fake faces are drawn and analysed but never identified (embed_faces refuses them).
    live = [i for i, f in enumerate(faces) if f.is_real is not False]
    if index is not None and live:
        hits = index.search(pipeline.embed_faces([faces[i] for i in live]), k=1, max_distance=limit)
        records = index.records
        for i, h in zip(live, hits):
            identities[i] = (records[h.indices[0]].path(index.root), float(h.distances[0])) if len(h.indices) \
                else (None, None)
    attributes: list[dict[str, Any]] = [{} for _ in faces]
    for analyzer in analyzers.values():
        for item, prediction in zip(attributes, analyzer.predict([f.crop for f in faces]) if faces else []):
            item.update(prediction)
    return FrameResult(frame_index, [
        StreamFace(f.area, f.confidence, identity, distance, attrs, f.is_real, f.antispoof_score)
        for f, (identity, distance), attrs in zip(faces, identities, attributes)
    ])


def draw(frame: np.ndarray, result: FrameResult) -> np.ndarray:
    """A copy of ``frame`` with boxes, landmarks and labels (identified faces in green)."""
    return draw_faces(frame, [Mark(face.area, face.label(), _color(face)) for face in result.faces])


def _color(face: StreamFace) -> tuple[int, int, int]:
    if face.is_real is False:
        return FAKE
    return KNOWN if face.identity else UNKNOWN


def stream(source: int | str | os.PathLike[str] = 0, *, pipeline: Any = None, config: Any = None,
           db_path: str | os.PathLike[str] | None = None, actions: Sequence[str] = (),
           every_n_frames: int = 5, output_path: str | os.PathLike[str] | None = None, display: bool = False,
           max_frames: int | None = None, min_face_width: int = 0,
           threshold: float | None = None, fps: float | None = None,
           on_frame: Callable[[int, FrameResult | None], None] | None = None,
           index_progress: ProgressArg = False, antispoofer: Any = None) -> list[FrameResult]:
    """Run the stream; write annotated frames to ``output_path`` and/or show them (``q`` quits).

    ``fps``: frame rate of the written video (default 25).  ``on_frame(frame_index, result)`` is
    called after every frame (``result`` None on frames that were not processed), e.g. to report
    progress or print results as they come.  ``antispoofer``: see :func:`iter_stream` (fake faces
    are drawn in red).  Returns the results of the processed frames.
    """
    import cv2

    if pipeline is None:
        from facepipe.functions import get_pipeline

        pipeline = get_pipeline(config)
    writer = None
    results: list[FrameResult] = []
    latest: FrameResult | None = None
    try:
        frames = iter_stream(source, pipeline, db_path=db_path, actions=actions, every_n_frames=every_n_frames,
                             max_frames=max_frames, min_face_width=min_face_width, threshold=threshold,
                             index_progress=index_progress, antispoofer=antispoofer)
        for frame_index, frame, result in frames:
            if result is not None:
                results.append(result)
                latest = result
            shown = draw(frame, latest) if latest is not None else frame
            if output_path is not None:
                if writer is None:
                    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
                    height, width = frame.shape[:2]
                    writer = cv2.VideoWriter(os.fspath(output_path), cv2.VideoWriter_fourcc(*"mp4v"), fps or 25.0,
                                             (width, height))
                    if not writer.isOpened():
                        raise ConfigError(f"cannot write the video {os.fspath(output_path)!r}; "
                                          "use a .mp4 or .avi file in a writable folder")
                writer.write(shown)
            if on_frame is not None:
                on_frame(frame_index, result)
            if display:
                cv2.imshow("facepipe", shown)
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    break
    finally:
        if writer is not None:
            writer.release()
        if display:
            cv2.destroyAllWindows()
    return results
