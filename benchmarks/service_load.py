"""Load on the REST service: one real uvicorn server on 127.0.0.1, concurrent clients calling /verify.

The server runs in a subprocess (this script again, with ``--server``), by default on the real
pipeline (OpenCV detector + Dlib, preloaded) with photo pairs from ``$FACEPIPE_DATA``; with
``--hermetic`` on facepipe's numpy-only test plugins and synthetic faces (no dlib, no photos), which
measures the HTTP layer and the pool rather than the models.

``--clients`` threads each send ``--requests`` verifies (JSON bodies with base64 images) as fast as
they get answers.  The script prints p50 / p99 latency (of the 200 answers, and of all answers),
throughput, and the count of each status.  The service answers 503 + Retry-After when its pool
(``--workers`` threads, ``--queue`` waiting) is full; any other non-200 is an error and makes the
script exit 1.  A refused client does not retry: the 503 count shows how far past capacity the
load was.

Usage::

    python benchmarks/service_load.py                      # real Dlib pipeline, 16 clients x 20 verifies
    python benchmarks/service_load.py --hermetic --workers 2 --queue 32
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _bench_common import DATASET  # noqa: E402

REAL_CONFIG = {"detector": "opencv", "recognizer": "Dlib", "metric": "cosine", "detect_max_side": 800}
#: same-person and different-person pairs of the deepface test photos
PHOTO_PAIRS = [("img1.jpg", "img2.jpg"), ("img1.jpg", "img3.jpg"), ("img2.jpg", "img4.jpg"),
               ("img5.jpg", "img6.jpg"), ("img3.jpg", "img7.jpg")]


def run_server(args: argparse.Namespace) -> None:
    """The server side (``--server``): build the app and serve it until killed."""
    import uvicorn

    from facepipe.apps.service import create_app

    pool = {"workers": args.workers, "queue": args.queue, "timeout_s": args.timeout}
    if args.hermetic:
        from facepipe.testing import HERMETIC_CONFIG, hermetic_registry

        app = create_app(HERMETIC_CONFIG, registry=hermetic_registry(), **pool)
    else:
        app = create_app(REAL_CONFIG, preload=True, **pool)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


def bodies(hermetic: bool) -> list[dict[str, str]]:
    """The verify requests the clients cycle through."""
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    if hermetic:
        import cv2

        from facepipe.testing import synthetic_face_image

        faces = []
        for seed in range(3):
            ok, png = cv2.imencode(".png", synthetic_face_image(((seed, 40, 30, 96),)))
            faces.append(b64(png.tobytes()))
        return [{"img1": faces[i], "img2": faces[j]} for i, j in ((0, 0), (0, 1), (1, 2))]
    missing = [name for pair in PHOTO_PAIRS for name in pair if not (DATASET / name).is_file()]
    if missing:
        sys.exit(f"photos not found in {DATASET} ({', '.join(sorted(set(missing)))}): set FACEPIPE_DATA "
                 "or run with --hermetic")
    return [{"img1": b64((DATASET / a).read_bytes()), "img2": b64((DATASET / b).read_bytes())}
            for a, b in PHOTO_PAIRS]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(base: str, server: subprocess.Popen[bytes], limit_s: float = 300) -> None:
    import httpx

    deadline = time.time() + limit_s
    while time.time() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server exited with code {server.returncode} before answering")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit(f"the server did not answer /health within {limit_s:g} s")


def load(base: str, requests: list[dict[str, str]], clients: int, per_client: int
         ) -> tuple[list[tuple[int, float]], float, list[str]]:
    """(status, seconds) of every request, the wall time, and the first few unexpected answers."""
    import httpx

    results: list[tuple[int, float]] = []
    problems: list[str] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        with httpx.Client(base_url=base, timeout=300) as http:
            start_gate.wait()
            for k in range(per_client):
                body = requests[(index + k) % len(requests)]
                t0 = time.perf_counter()
                try:
                    r = http.post("/verify", json=body)
                    status, text = r.status_code, r.text
                    if status == 200 and "verified" not in r.json():
                        status, text = -1, "200 without 'verified': " + text[:200]
                except httpx.HTTPError as exc:
                    status, text = -2, f"{type(exc).__name__}: {exc}"
                took = time.perf_counter() - t0
                with lock:
                    results.append((status, took))
                    if status not in (200, 503) and len(problems) < 5:
                        problems.append(f"{status}: {text[:300]}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    start_gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return results, time.perf_counter() - t0, problems


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hermetic", action="store_true", help="numpy-only test plugins, synthetic faces")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=20, help="verifies per client")
    parser.add_argument("--workers", type=int, default=None, help="service worker threads (default: cores)")
    parser.add_argument("--queue", type=int, default=None, help="service queue (default: 8 x workers)")
    parser.add_argument("--timeout", type=float, default=60.0, help="service request timeout, seconds")
    parser.add_argument("--server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    if args.server:
        run_server(args)
        return 0

    requests = bodies(args.hermetic)
    port = free_port()
    cmd = [sys.executable, __file__, "--server", "--port", str(port), "--timeout", str(args.timeout)]
    cmd += ["--hermetic"] if args.hermetic else []
    cmd += ["--workers", str(args.workers)] if args.workers else []
    cmd += ["--queue", str(args.queue)] if args.queue is not None else []
    server = subprocess.Popen(cmd, env=dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, server)
        import httpx

        pool = httpx.get(base + "/health").json()["pool"]
        for body in requests[:2]:  # warm-up, not timed
            httpx.post(base + "/verify", json=body, timeout=300)
        results, wall, problems = load(base, requests, args.clients, args.requests)
    finally:
        server.terminate()
        server.wait(timeout=30)

    counts = Counter(status for status, _ in results)
    ok = sorted(t for status, t in results if status == 200)
    every = sorted(t for _, t in results)
    other = sum(n for status, n in counts.items() if status not in (200, 503))
    figures: dict[str, Any] = {
        "pipeline": "hermetic (blob + grid)" if args.hermetic else "opencv + Dlib",
        "clients": args.clients, "requests_per_client": args.requests, "pool": pool,
        "requests": len(results), "wall_s": round(wall, 2),
        "status_200": counts.get(200, 0), "status_503": counts.get(503, 0), "other": other,
        "p50_ms_200": round(1000 * percentile(ok, 50), 1) if ok else None,
        "p99_ms_200": round(1000 * percentile(ok, 99), 1) if ok else None,
        "p50_ms_all": round(1000 * percentile(every, 50), 1),
        "p99_ms_all": round(1000 * percentile(every, 99), 1),
        "throughput_rps_200": round(len(ok) / wall, 2),
    }
    print(f"{figures['pipeline']}: {args.clients} clients x {args.requests} verifies, pool {pool['workers']} workers "
          f"+ {pool['queue']} queued, timeout {pool['timeout_s']:g} s")
    print(f"  200: {figures['status_200']}   503: {figures['status_503']}   other: {other}   "
          f"in {figures['wall_s']} s")
    print(f"  latency of 200s: p50 {figures['p50_ms_200']} ms, p99 {figures['p99_ms_200']} ms; "
          f"of all: p50 {figures['p50_ms_all']} ms, p99 {figures['p99_ms_all']} ms")
    print(f"  throughput: {figures['throughput_rps_200']} verifies/s")
    for line in problems:
        print("  unexpected answer:", line)
    if args.json:
        print(json.dumps(figures))
    return 1 if other else 0


if __name__ == "__main__":
    sys.exit(main())
