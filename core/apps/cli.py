"""The ``facepipe`` command line.

Results go to stdout (JSON where it says so); progress bars, notes and errors go to stderr.  A
typed facepipe error prints one line and exits with status 2; ``verify --exit-code`` exits 1 for
different people.  Progress bars follow :mod:`facepipe.progress`: drawn when stderr is a
terminal, never with ``--quiet``, always with ``--progress``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any, Sequence

from facepipe import __version__
from facepipe.apps import evaluate, gallery_cli
from facepipe.errors import ConfigError, ExtraNotInstalledError, FacepipeError

#: top-level packages of the ``service`` extra: an ImportError naming one of them means the extra is missing
_SERVICE_PACKAGES = {"fastapi", "starlette", "uvicorn", "multipart", "python_multipart"}


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=_json_default))


def _compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), default=_json_default)


def _print_json_rows(rows: list[Any]) -> None:
    """A JSON array with one item per line: valid JSON, and still readable when items are long."""
    print("[" + ",\n ".join(_compact(row) for row in rows) + "]")


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join("{:<%d}" % w for w in widths)
    out = [line.format(*headers), line.format(*["-" * w for w in widths])]
    out += [line.format(*[str(c) for c in r]) for r in rows]
    return "\n".join(out)


def _actions(text: str | None) -> list[str] | None:
    return [a.strip() for a in text.split(",") if a.strip()] if text else None


# ------------------------------------------------------------------------------------ plugins
def cmd_plugins(args: argparse.Namespace) -> int:
    from facepipe.registry import default_registry

    rows = default_registry().plugins()
    if args.kind:
        rows = [r for r in rows if r.kind in (args.kind, "unknown")]
    if args.json:
        _print_json([r.to_dict() for r in rows])
        return 0
    table = [[r.kind, r.name, r.status, r.distribution or "", r.version or "", r.license or "",
              r.install or (r.error or "") if r.status != "ok" else ""] for r in rows]
    print(_table(table, ["kind", "name", "status", "distribution", "version", "licence", "notes"]))
    return 0


# ------------------------------------------------------------------------------------ config
def cmd_config_schema(args: argparse.Namespace) -> int:
    from facepipe.pipeline.config import config_schema

    _print_json(config_schema())
    return 0


def cmd_config_validate(args: argparse.Namespace) -> int:
    from facepipe.pipeline.config import parse_config, resolve_config
    from facepipe.registry import default_registry

    cfg = parse_config(args.file)
    resolve_config(cfg, default_registry())
    print(f"{args.file}: valid")
    return 0


# ------------------------------------------------------------------------------------ models
def cmd_models(args: argparse.Namespace) -> int:
    from facepipe.registry import default_registry
    from facepipe.weights import default_manager

    registry, manager = default_registry(), default_manager()
    pairs = list(registry.weight_files())
    if args.models_cmd == "list":
        statuses = [dict(manager.status(wf), plugin=spec.name, kind=spec.kind) for spec, wf in pairs]
        if args.json:
            _print_json(statuses)
        else:
            print(_table([[s["kind"], s["plugin"], s["name"], s["where"], str(s.get("path") or "")]
                          for s in statuses], ["kind", "plugin", "file", "where", "path"]))
        return 0
    if args.models_cmd == "pull":
        if not args.all and not args.name:
            raise FacepipeError("say which model to pull (a plugin or file name), or --all")
        wanted = [(s, wf) for s, wf in pairs
                  if args.all or args.name.lower() in (s.name.lower(), wf.name.lower())]
        if not wanted:
            raise FacepipeError(f"no plugin or weight file named {args.name!r}; see 'facepipe models list'")
        failed = 0
        for spec, wf in wanted:
            try:
                print(f"{wf.name}: {manager.pull(wf, force=args.force)}")
            except FacepipeError as exc:
                failed += 1
                print(f"{wf.name}: FAILED: {exc}", file=sys.stderr)
        return 1 if failed else 0
    if args.models_cmd == "verify":
        bad = 0
        for spec, wf in pairs:
            result = manager.verify(wf)
            label = {True: "ok", False: "MISMATCH", None: "unverifiable/missing"}[result]
            bad += result is False
            print(f"{wf.name}: {label}")
        return 1 if bad else 0
    raise AssertionError(args.models_cmd)


# ------------------------------------------------------------------------------------ pipeline jobs
def _pipeline(args: argparse.Namespace) -> Any:
    from facepipe.pipeline.config import load_config_file
    from facepipe.pipeline.orchestrator import Pipeline

    data: dict[str, Any] = load_config_file(args.config) if getattr(args, "config", None) else {}
    for key in ("detector", "recognizer", "metric", "on_no_face"):
        value = getattr(args, key, None)
        if value:
            data[key] = value
    if getattr(args, "threshold", None) is not None:
        data["threshold"] = args.threshold
    if getattr(args, "no_align", False):
        data["align"] = False
    return Pipeline.from_config(data, registry=getattr(args, "registry", None))


def cmd_verify(args: argparse.Namespace) -> int:
    result = _pipeline(args).verify(args.img1, args.img2)
    if args.json:
        _print_json(result.to_dict())
    else:
        verdict = "same person" if result.verified else "different people"
        print(f"{verdict}: distance {result.distance:.4f} (threshold {result.threshold:.4f}, "
              f"{result.similarity_metric}, {result.model} + {result.detector_backend}), "
              f"confidence {result.confidence:.1f}%")
    return 1 if args.exit_code and not result.verified else 0


def cmd_represent(args: argparse.Namespace) -> int:
    reps = _pipeline(args).represent(args.img)
    _print_json_rows([r.to_dict() for r in reps])
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    results = _pipeline(args).analyze(args.img, actions=_actions(args.actions))
    _print_json([r.to_dict() for r in results])
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from facepipe.apps.calibrate import calibrate

    result = calibrate(_pipeline(args), args.pairs, target_far=args.far)
    if args.json:
        _print_json(result.to_dict())
    else:
        print(f"threshold {result.threshold:.6f} for FAR <= {result.target_far:g} "
              f"({result.model}, {result.metric}; {result.pairs} pairs, {result.same_pairs} same-person)\n"
              f"  on these pairs: FAR {result.far:.3f}, FRR {result.frr:.3f}, accuracy {result.accuracy:.3f}\n"
              f"  default threshold {result.default_threshold:g}: accuracy {result.default_accuracy:.3f}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401 - checked here so a missing extra is one clear line

        from facepipe.apps.service import serve
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in _SERVICE_PACKAGES:
            raise
        raise ExtraNotInstalledError(
            f"'facepipe serve' needs FastAPI and uvicorn ({exc.name} is not installed): "
            "pip install 'facepipe[service]'") from None

    serve(args.config, host=args.host, port=args.port, token=args.token, preload=args.preload,
          workers=args.workers, queue=args.queue, timeout_s=args.timeout, gallery=args.gallery)
    return 0


def cmd_find(args: argparse.Namespace) -> int:
    from facepipe.gallery.find import find

    results = find(_pipeline(args), args.img, args.db_path, threshold=args.threshold, k=args.k)
    _print_json([list(r.rows) for r in results])
    return 0


def cmd_draw(args: argparse.Namespace) -> int:
    from facepipe.apps.draw import KNOWN, UNKNOWN, Mark, draw_faces, face_label, save_image
    from facepipe.pipeline.image import load_image

    pipeline = _pipeline(args)
    image = load_image(args.img).image
    if args.analyze or args.actions:
        found = [(a.face, a.attributes) for a in pipeline.analyze(image, actions=_actions(args.actions))]
    else:
        found = [(face, {}) for face in pipeline.faces([image])[0]]
    marks = [Mark(face.area, face_label(confidence=face.confidence if face.detected else None, attributes=attrs),
                  KNOWN if face.detected else UNKNOWN) for face, attrs in found]
    path = save_image(args.output, draw_faces(image, marks, landmarks=not args.no_landmarks))
    if args.json:
        _print_json({"output": str(path), "faces": [
            {**face.area.to_dict(), "confidence": face.confidence, "label": mark.label, **attrs}
            for (face, attrs), mark in zip(found, marks)]})
    else:
        print(f"{path}: {len(marks)} face(s) drawn")
    return 0


def _video_info(path: str) -> tuple[float | None, int | None]:
    """(frames per second, frame count) of a video file, where the container says them."""
    try:
        import cv2
    except ImportError:
        raise ExtraNotInstalledError("video needs OpenCV: pip install 'facepipe[opencv]'") from None
    from facepipe.errors import ImageNotFoundError

    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise ImageNotFoundError(f"could not open the video {path!r} (missing, or not a video OpenCV can read)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    return (fps if fps and fps > 0 else None), (count if count > 0 else None)


def cmd_video(args: argparse.Namespace) -> int:
    from facepipe.apps.stream import FrameResult, stream
    from facepipe.progress import Progress

    if args.every < 1:
        raise ConfigError(f"--every must be >= 1, got {args.every}")
    fps, count = _video_info(args.input)
    if count is not None and args.max_frames is not None:
        count = min(count, args.max_frames)
    pipeline = _pipeline(args)
    frames = faces = 0
    identities: Counter[str] = Counter()

    def on_frame(index: int, result: FrameResult | None) -> None:
        nonlocal frames, faces
        frames += 1
        bar.advance()
        if result is None:
            return
        faces += len(result.faces)
        identities.update(f.identity for f in result.faces if f.identity is not None)
        if not args.summary_only:
            print(_compact(result.to_dict()), flush=True)

    with Progress(count, "Frames", unit="frame") as bar:
        results = stream(args.input, pipeline=pipeline, db_path=args.db, actions=_actions(args.actions) or (),
                         every_n_frames=args.every, output_path=args.output, max_frames=args.max_frames,
                         threshold=args.threshold, fps=fps, on_frame=on_frame, index_progress=None)
    print(_compact({"summary": {"frames": frames, "processed": len(results), "faces": faces,
                                "identities": dict(identities.most_common()), "output": args.output}}))
    return 0


# ------------------------------------------------------------------------------------ parser
def _add_pipeline_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="pipeline config file (.yaml, .yml, .json, .toml)")
    p.add_argument("--detector", help="detector plugin name (overrides the config)")
    p.add_argument("--recognizer", "--model", dest="recognizer", help="recognizer plugin name")
    p.add_argument("--metric", help="distance metric plugin name")
    p.add_argument("--no-align", action="store_true", help="do not rotate faces to level the eyes")


def _add_face_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--on-no-face", choices=["error", "skip", "whole_image"],
                   help="when an image has no face: fail (error, the default), go on without it (skip), "
                        "or use the whole image as the face (whole_image; deepface's enforce_detection=False)")


def _common_options(top: bool) -> argparse.ArgumentParser:
    """--quiet / --progress, accepted before the command and after it (SUPPRESS keeps a value given
    before the command from being reset by the subcommand's default)."""
    common = argparse.ArgumentParser(add_help=False)
    default: Any = False if top else argparse.SUPPRESS
    group = common.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", dest="quiet_all", action="store_true", default=default,
                       help="no progress bars on stderr")
    group.add_argument("--progress", dest="progress_all", action="store_true", default=default,
                       help="draw progress bars on stderr even when it is not a terminal "
                            "(default: only on a terminal; FACEPIPE_PROGRESS=1/0 sets it too)")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facepipe", description="Face recognition in which every model is a plugin.",
                                     parents=[_common_options(top=True)])
    parser.add_argument("--version", action="version", version=f"facepipe {__version__}",
                        help="print facepipe's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [_common_options(top=False)]

    p = sub.add_parser("plugins", help="list installed plugins and their status", parents=common)
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.add_argument("--kind", choices=["detector", "recognizer", "analyzer", "metric"], help="only plugins of this kind")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("config", help="configuration tools", parents=common)
    csub = p.add_subparsers(dest="config_cmd", required=True, metavar="ACTION")
    c = csub.add_parser("schema", help="print the JSON schema of the pipeline config")
    c.set_defaults(func=cmd_config_schema)
    c = csub.add_parser("validate", help="check a config file, plugins and options included")
    c.add_argument("file", help="the config file (.yaml, .yml, .json, .toml)")
    c.set_defaults(func=cmd_config_validate)

    p = sub.add_parser("models", help="weight files: list, pull, verify", parents=common)
    msub = p.add_subparsers(dest="models_cmd", required=True, metavar="ACTION")
    m = msub.add_parser("list", help="where each plugin's weight files are (or would go)")
    m.add_argument("--json", action="store_true", help="print the list as JSON")
    m = msub.add_parser("pull", help="download weight files now (resumable, verified)")
    m.add_argument("name", nargs="?", help="a plugin name (e.g. Facenet) or a weight file name")
    m.add_argument("--all", action="store_true", help="pull the weight files of every installed plugin")
    m.add_argument("--force", action="store_true", help="download again even when a good copy exists")
    msub.add_parser("verify", help="hash every local weight file again and compare it with its declaration")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("verify", help="do two images show the same person?", parents=common)
    p.add_argument("img1", help="first image (a path)")
    p.add_argument("img2", help="second image (a path)")
    p.add_argument("--threshold", type=float, help="distance threshold (default: the model's for the metric)")
    p.add_argument("--json", action="store_true", help="print deepface's verify dict as JSON")
    p.add_argument("--exit-code", action="store_true",
                   help="exit with status 1 when the images show different people (0: same person)")
    _add_face_options(p)
    _add_pipeline_options(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("represent", help="embeddings of the faces in an image (JSON, one face per line)",
                       parents=common)
    p.add_argument("img", help="the image (a path)")
    _add_face_options(p)
    _add_pipeline_options(p)
    p.set_defaults(func=cmd_represent)

    p = sub.add_parser("analyze", help="age, gender, emotion, race of the faces in an image (JSON)", parents=common)
    p.add_argument("img", help="the image (a path)")
    p.add_argument("--actions", help="comma-separated, e.g. age,gender (default: the config's analyzers)")
    _add_face_options(p)
    _add_pipeline_options(p)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("find", help="search a folder of photos for the faces in an image (JSON)", parents=common)
    p.add_argument("img", help="the image whose faces are looked for (a path)")
    p.add_argument("db_path", help="the folder of photos (indexed on first use, then kept up to date)")
    p.add_argument("--threshold", type=float, help="distance threshold (default: the model's for the metric)")
    p.add_argument("-k", type=int, help="keep the k closest matches per face")
    _add_face_options(p)
    _add_pipeline_options(p)
    p.set_defaults(func=cmd_find)

    p = sub.add_parser("draw", help="draw boxes, landmarks and labels on the faces of an image", parents=common)
    p.add_argument("img", help="the image (a path)")
    p.add_argument("--output", "-o", required=True, help="where to write the drawing (.png, .jpg, ...)")
    p.add_argument("--analyze", action="store_true",
                   help="add attributes to the labels (the config's analyzers, or --actions)")
    p.add_argument("--actions", help="comma-separated attributes to add, e.g. age,gender (implies --analyze)")
    p.add_argument("--no-landmarks", action="store_true", help="draw boxes and labels only")
    p.add_argument("--json", action="store_true", help="print the faces drawn as JSON")
    _add_face_options(p)
    _add_pipeline_options(p)
    p.set_defaults(func=cmd_draw)

    p = sub.add_parser("video", help="detect, identify and analyse the faces of a video file (JSON lines)",
                       parents=common)
    p.add_argument("input", help="the video file (anything OpenCV reads: .mp4, .avi, ...)")
    p.add_argument("--output", "-o", help="write the video with boxes and labels here (.mp4)")
    p.add_argument("--db", help="a folder of photos to identify faces against (find's index)")
    p.add_argument("--actions", help="comma-separated attributes per face, e.g. age,emotion")
    p.add_argument("--every", type=int, default=5,
                   help="process every N-th frame; the others show the latest boxes (default 5)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--threshold", type=float, help="distance threshold for --db (default: the model's)")
    p.add_argument("--summary-only", action="store_true",
                   help="print only the final summary line, not one line per processed frame")
    _add_pipeline_options(p)
    p.set_defaults(func=cmd_video)

    p = sub.add_parser("calibrate", help="choose a threshold for a target false-accept rate from labelled pairs",
                       parents=common)
    p.add_argument("pairs", help="CSV with file_x,file_y,Decision (Yes/No), paths relative to the CSV")
    p.add_argument("--far", type=float, default=0.01, help="target false-accept rate (default 0.01)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_pipeline_options(p)
    p.set_defaults(func=cmd_calibrate)

    evaluate.add_parser(sub, parents=common)  # its options and command live in facepipe.apps.evaluate
    gallery_cli.add_gallery_parser(sub, parents=common, pipeline_options=_add_pipeline_options,
                                   make_pipeline=_pipeline)  # facepipe gallery ACTION

    p = sub.add_parser("serve", help="run the REST service (needs facepipe[service])", parents=common)
    p.add_argument("--config", help="pipeline config file")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5005, help="port to listen on (default 5005)")
    p.add_argument("--token", help="bearer token (or FACEPIPE_API_TOKEN); required off loopback")
    p.add_argument("--preload", action="store_true",
                   help="load every configured model before listening (first request as fast as the rest)")
    p.add_argument("--workers", type=int, help="threads running model work (default: one per CPU core)")
    p.add_argument("--queue", type=int,
                   help="requests that may wait for a worker; past that 503 + Retry-After (default: 8 x workers)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds one request may wait and run before 504 (default 60)")
    p.add_argument("--gallery", help="a gallery (folder or store URL) for /register, /search, /identify, /delete")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None, *, registry: Any = None) -> int:
    """Run the command line; returns the exit status.  ``registry``: the plugins to use instead of
    the installed ones (tests pass :func:`facepipe.testing.hermetic_registry`)."""
    from facepipe.progress import forced_progress

    parser = build_parser()
    args = parser.parse_args(argv)
    args.registry = registry
    quiet = bool(getattr(args, "quiet_all", False))
    if quiet and hasattr(args, "quiet"):
        args.quiet = True  # a command with its own --quiet (evaluate) follows the global one
    show = False if quiet else True if getattr(args, "progress_all", False) else None
    try:
        with forced_progress(show):
            return int(args.func(args) or 0)
    except FacepipeError as exc:
        print(f"facepipe: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
