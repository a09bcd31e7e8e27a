"""A throw-away HTTP server on 127.0.0.1 (tests never reach the internet)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest


@dataclass
class Loopback:
    """A running server: its base URL, the folder it serves and the paths requested so far."""

    base: str
    root: Path | None = None
    requests: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


class _FolderHandler(SimpleHTTPRequestHandler):
    """Serves a folder, records every requested path, keeps the test output quiet."""

    def __init__(self, *args: Any, record: list[str], **kwargs: Any) -> None:
        self._record = record
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:  # noqa: N802
        self._record.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """Run ``handler`` on a free port of 127.0.0.1 for the ``with`` block; yields the server."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def base_url(httpd: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}"


@contextlib.contextmanager
def serve_folder(root: Path) -> Iterator[Loopback]:
    """Serve the files of ``root`` (plain GET) for the ``with`` block; records the requested paths."""
    served = Loopback(base="", root=root)
    with serve(partial(_FolderHandler, record=served.requests, directory=str(root))) as httpd:
        served.base = base_url(httpd)
        yield served


def keep_loopback_off_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never route 127.0.0.1 through a proxy, and keep the user's weights mirror out of the tests."""
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.delenv("FACEPIPE_WEIGHTS_MIRROR", raising=False)
