"""The ``facepipe`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from facepipe.apps import evaluate
from facepipe.errors import FacepipeError


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=_json_default))


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
    for key in ("detector", "recognizer", "metric"):
        value = getattr(args, key, None)
        if value:
            data[key] = value
    if getattr(args, "threshold", None) is not None:
        data["threshold"] = args.threshold
    if getattr(args, "no_align", False):
        data["align"] = False
    return Pipeline.from_config(data)


def cmd_verify(args: argparse.Namespace) -> int:
    result = _pipeline(args).verify(args.img1, args.img2)
    if args.json:
        _print_json(result.to_dict())
    else:
        verdict = "same person" if result.verified else "different people"
        print(f"{verdict}: distance {result.distance:.4f} (threshold {result.threshold:.4f}, "
              f"{result.similarity_metric}, {result.model} + {result.detector_backend}), "
              f"confidence {result.confidence:.1f}%")
    return 0


def cmd_represent(args: argparse.Namespace) -> int:
    reps = _pipeline(args).represent(args.img)
    _print_json([r.to_dict() for r in reps])
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    actions = args.actions.split(",") if args.actions else None
    results = _pipeline(args).analyze(args.img, actions=actions)
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
    from facepipe.apps.service import serve

    serve(args.config, host=args.host, port=args.port, token=args.token, preload=args.preload,
          workers=args.workers, queue=args.queue, timeout_s=args.timeout)
    return 0


def cmd_find(args: argparse.Namespace) -> int:
    from facepipe.gallery.find import find

    results = find(_pipeline(args), args.img, args.db_path, threshold=args.threshold, k=args.k)
    _print_json([list(r.rows) for r in results])
    return 0


def _add_pipeline_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="pipeline config file (.yaml, .yml, .json, .toml)")
    p.add_argument("--detector", help="detector plugin name (overrides the config)")
    p.add_argument("--recognizer", "--model", dest="recognizer", help="recognizer plugin name")
    p.add_argument("--metric", help="distance metric plugin name")
    p.add_argument("--no-align", action="store_true", help="do not rotate faces to level the eyes")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facepipe", description="Face recognition in which every model is a plugin.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plugins", help="list installed plugins and their status")
    p.add_argument("--json", action="store_true")
    p.add_argument("--kind", choices=["detector", "recognizer", "analyzer", "metric"])
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("config", help="configuration tools")
    csub = p.add_subparsers(dest="config_cmd", required=True)
    c = csub.add_parser("schema", help="print the JSON schema of the pipeline config")
    c.set_defaults(func=cmd_config_schema)
    c = csub.add_parser("validate", help="check a config file, plugins and options included")
    c.add_argument("file")
    c.set_defaults(func=cmd_config_validate)

    p = sub.add_parser("models", help="weight files: list, pull, verify")
    msub = p.add_subparsers(dest="models_cmd", required=True)
    m = msub.add_parser("list")
    m.add_argument("--json", action="store_true")
    m = msub.add_parser("pull")
    m.add_argument("name", nargs="?")
    m.add_argument("--all", action="store_true")
    m.add_argument("--force", action="store_true")
    msub.add_parser("verify")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("verify", help="do two images show the same person?")
    p.add_argument("img1")
    p.add_argument("img2")
    p.add_argument("--threshold", type=float)
    p.add_argument("--json", action="store_true", help="print deepface's verify dict as JSON")
    _add_pipeline_options(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("represent", help="embeddings of the faces in an image (JSON)")
    p.add_argument("img")
    _add_pipeline_options(p)
    p.set_defaults(func=cmd_represent)

    p = sub.add_parser("analyze", help="age, gender, emotion, race of the faces in an image (JSON)")
    p.add_argument("img")
    p.add_argument("--actions", help="comma-separated, e.g. age,gender")
    _add_pipeline_options(p)
    p.set_defaults(func=cmd_analyze)
    p = sub.add_parser("find", help="search a folder of photos for the faces in an image (JSON)")
    p.add_argument("img")
    p.add_argument("db_path")
    p.add_argument("--threshold", type=float)
    p.add_argument("-k", type=int, help="keep the k closest matches per face")
    _add_pipeline_options(p)
    p.set_defaults(func=cmd_find)

    p = sub.add_parser("calibrate", help="choose a threshold for a target false-accept rate from labelled pairs")
    p.add_argument("pairs", help="CSV with file_x,file_y,Decision (Yes/No), paths relative to the CSV")
    p.add_argument("--far", type=float, default=0.01, help="target false-accept rate (default 0.01)")
    p.add_argument("--json", action="store_true")
    _add_pipeline_options(p)
    p.set_defaults(func=cmd_calibrate)

    evaluate.add_parser(sub)  # facepipe evaluate: its options and command live in facepipe.apps.evaluate

    p = sub.add_parser("serve", help="run the REST service (needs facepipe[service])")
    p.add_argument("--config", help="pipeline config file")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5005)
    p.add_argument("--token", help="bearer token (or FACEPIPE_API_TOKEN); required off loopback")
    p.add_argument("--preload", action="store_true",
                   help="load every configured model before listening (first request as fast as the rest)")
    p.add_argument("--workers", type=int, help="threads running model work (default: one per CPU core)")
    p.add_argument("--queue", type=int,
                   help="requests that may wait for a worker; past that 503 + Retry-After (default: 2 x workers)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds one request may wait and run before 504 (default 60)")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FacepipeError as exc:
        print(f"facepipe: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
