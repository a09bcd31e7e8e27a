"""``facepipe gallery add|search|identify|delete|stats|ingest``: a face gallery from the command line.

``--store`` names the gallery: a folder (the embedded store, default ``./faces``) or a store URL
(``postgresql://...``, ``milvus://...``).  Results go to stdout (``--json`` for JSON).
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Callable

DEFAULT_STORE = "./faces"


def add_gallery_parser(sub: Any, parents: list[argparse.ArgumentParser],
                       pipeline_options: Callable[[argparse.ArgumentParser], None],
                       make_pipeline: Callable[[argparse.Namespace], Any]) -> None:
    """Add the ``gallery`` command group to the CLI's subparsers."""
    group = sub.add_parser("gallery", help="a gallery of known faces: add, search, identify, delete, stats, ingest",
                           parents=parents)
    gsub = group.add_subparsers(dest="gallery_cmd", required=True, metavar="ACTION")

    def action(name: str, help_text: str, fn: Callable[[argparse.Namespace, Any, Any], int]) -> Any:
        p = gsub.add_parser(name, help=help_text, parents=parents)
        p.add_argument("--store", default=DEFAULT_STORE,
                       help=f"the gallery: a folder (embedded store) or a store URL such as "
                            f"postgresql://user@host/db or milvus://host:19530 (default {DEFAULT_STORE})")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        pipeline_options(p)
        p.set_defaults(func=lambda args: _run(args, fn, make_pipeline))
        return p

    p = action("add", "store the faces of images as one identity", _cmd_add)
    p.add_argument("identity", help="who the faces are")
    p.add_argument("images", nargs="+", help="image files of that person")
    p = action("search", "the gallery's nearest faces for each face of an image", _cmd_search)
    p.add_argument("img", help="the query image")
    p.add_argument("-k", type=int, default=5, help="at most this many matches per face (default 5)")
    p.add_argument("--all", dest="similar", action="store_true",
                   help="also list matches beyond the threshold (look-alikes)")
    p = action("identify", "is the face of an image this stored face?", _cmd_identify)
    p.add_argument("img", help="the query image")
    p.add_argument("face_id", help="a stored face's id (from 'gallery search')")
    p = action("delete", "remove stored faces by id, or every face of an identity", _cmd_delete)
    p.add_argument("face_ids", nargs="*", help="ids of stored faces to remove")
    p.add_argument("--identity", help="remove every face of this identity")
    action("stats", "how many faces and identities the gallery holds", _cmd_stats)
    try:  # facepipe gallery ingest lives in its own module
        from facepipe.apps.gallery_ingest_cli import add_ingest_parser
    except ImportError:
        return
    add_ingest_parser(gsub, parents, pipeline_options, make_pipeline)


def _run(args: argparse.Namespace, fn: Callable[[argparse.Namespace, Any, Any], int],
         make_pipeline: Callable[[argparse.Namespace], Any]) -> int:
    from facepipe.apps.gallery_ops import open_gallery

    pipeline = make_pipeline(args)
    gallery = open_gallery(args.store, pipeline)
    try:
        return fn(args, pipeline, gallery)
    finally:
        close = getattr(gallery, "close", None)
        if callable(close):
            close()


def _load(path: str) -> Any:
    from facepipe.pipeline.image import load_image

    return load_image(path).image


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def _cmd_add(args: argparse.Namespace, pipeline: Any, gallery: Any) -> int:
    from facepipe.apps import gallery_ops

    added = sum(gallery_ops.register(pipeline, gallery, _load(path), args.identity) for path in args.images)
    _emit(args, {"inserted": added, "identity": args.identity},
          f"{added} new face(s) of {args.identity} ({len(gallery)} in the gallery)")
    return 0


def _cmd_search(args: argparse.Namespace, pipeline: Any, gallery: Any) -> int:
    from facepipe.apps import gallery_ops
    from facepipe.apps.deepface_gallery import search_rows

    queries = gallery_ops.search(pipeline, gallery, _load(args.img), None)
    results = [search_rows(pipeline, q.matches, similarity_search=args.similar, k=args.k, search_method="exact",
                           aligned=pipeline.config.align, l2_normalized=False) for q in queries]
    lines = [f"face {i}: " + (", ".join(f"{r['img_name']} ({r['distance']:.4f}, id {r['id']})" for r in rows)
                              or "no match") for i, rows in enumerate(results)]
    _emit(args, results, "\n".join(lines) or "no face found")
    return 0


def _cmd_identify(args: argparse.Namespace, pipeline: Any, gallery: Any) -> int:
    import time

    from facepipe.apps import gallery_ops
    from facepipe.apps.deepface_gallery import identify_result

    started = time.time()
    query, match = gallery_ops.compare(pipeline, gallery, _load(args.img), args.face_id)
    result = identify_result(pipeline, match.distance, match.face, query.facial_area, started)
    verdict = "same person" if result["verified"] else "different people"
    _emit(args, result, f"{verdict} as {result['img_name']}: distance {result['distance']:.4f} "
                        f"(threshold {result['threshold']:.4f})")
    return 0


def _cmd_delete(args: argparse.Namespace, pipeline: Any, gallery: Any) -> int:
    from facepipe.apps import gallery_ops
    from facepipe.errors import ConfigError

    if not args.face_ids and args.identity is None:
        raise ConfigError("name the faces to remove: their ids, or --identity NAME")
    deleted = gallery_ops.delete(gallery, args.face_ids, args.identity)
    _emit(args, {"deleted": deleted}, f"{deleted} face(s) removed")
    return 0


def _cmd_stats(args: argparse.Namespace, pipeline: Any, gallery: Any) -> int:
    identities = gallery.identities()
    data = {"store": args.store, "faces": len(gallery), "identities": len(identities)}
    _emit(args, data, f"{data['faces']} face(s) of {data['identities']} identities in {args.store}")
    return 0
