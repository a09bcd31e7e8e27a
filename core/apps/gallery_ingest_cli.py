"""``facepipe gallery ingest``: register a folder of photos in a gallery store in bulk.

The command behind :func:`facepipe.gallery.ingest.ingest` (in this process or on Ray); the
``gallery`` group (:mod:`facepipe.apps.gallery_cli`) adds it with :func:`add_ingest_parser`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable


def cmd_ingest(args: argparse.Namespace, make_pipeline: Callable[[argparse.Namespace], Any]) -> int:
    from facepipe.gallery.ingest import ingest, load_registry

    if args.registry_path:
        args.registry = load_registry(args.registry_path)
    pipeline = make_pipeline(args)
    try:  # the store is opened with the pipeline's metric and fingerprint
        report = ingest(args.source, args.store, pipeline, identity_from=args.identity_from, batch=args.batch,
                        ray=args.ray, registry=args.registry_path, ray_workers=args.ray_workers)
    finally:
        pipeline.close()
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(f"{report.faces_added} new faces from {report.embedded} photos ({report.skipped} already stored, "
              f"{report.no_face} without a face, {len(report.failed)} unreadable) in {report.seconds:.1f} s, "
              f"{report.photos_per_second:.2f} photos/s")
    for path in report.failed:
        print(f"facepipe: could not read {path}", file=sys.stderr)
    return 0


def add_ingest_parser(gsub: Any, parents: list[argparse.ArgumentParser],
                      pipeline_options: Callable[[argparse.ArgumentParser], None],
                      make_pipeline: Callable[[argparse.Namespace], Any]) -> None:
    """Add ``ingest`` to the ``gallery`` group's subparsers ``gsub``."""
    g = gsub.add_parser("ingest", help="register every face of a folder of photos in a gallery store "
                                       "(resumable: photos already stored are skipped)", parents=parents)
    g.add_argument("source", help="folder of photos (JPEG/PNG; one sub-folder per person by default)")
    g.add_argument("--store", required=True,
                   help="the gallery: a folder for the embedded store, or postgresql://..., milvus://...")
    g.add_argument("--ray", metavar="ADDRESS",
                   help="run detection and embedding on Ray: a cluster address, or 'local' for a private "
                        "cluster on 127.0.0.1 (default: in this process)")
    g.add_argument("--ray-workers", type=int, default=2,
                   help="Ray actors, each with its own pipeline (default 2; with --ray local also its CPUs)")
    g.add_argument("--identity-from", choices=["folder", "filename"], default="folder",
                   help="name people by their sub-folder under SOURCE (default) or by the file name")
    g.add_argument("--batch", type=int, default=32,
                   help="photos per detect/embed batch and per store write (default 32)")
    g.add_argument("--json", action="store_true", help="print the run's report as JSON")
    g.add_argument("--registry", dest="registry_path", metavar="MODULE:FUNCTION",
                   help="use the plugins of the registry this function returns instead of the installed "
                        "ones (e.g. facepipe.testing:hermetic_registry)")
    pipeline_options(g)
    g.set_defaults(func=lambda args: cmd_ingest(args, make_pipeline))


__all__ = ["add_ingest_parser", "cmd_ingest"]
