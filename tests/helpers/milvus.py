"""A throw-away Milvus Lite gRPC server on 127.0.0.1 for store tests (never another interface)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(port: int, timeout: float) -> bool:
    """True once a Milvus client can talk to the server (a bare TCP accept is not enough)."""
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=1.0).close()
            return True
        except MilvusException:
            time.sleep(0.2)
    return False


@contextlib.contextmanager
def milvus_lite_server(data_dir: Path, *, startup_s: float = 60.0) -> Iterator[str]:
    """Run ``python -m milvus_lite server`` on a free loopback port; yields ``milvus://127.0.0.1:PORT``."""
    port = free_port()
    log = data_dir / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data_dir / "data"),
             "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT)
    try:
        if not _ready(port, startup_s) or proc.poll() is not None:
            raise RuntimeError(f"Milvus Lite did not start on 127.0.0.1:{port}: {log.read_text()[-2000:]}")
        yield f"milvus://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
