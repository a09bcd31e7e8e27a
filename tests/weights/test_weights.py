"""The weights manager against a real HTTP server on 127.0.0.1 (nothing else is ever contacted)."""

from __future__ import annotations

import bz2
import hashlib
import importlib.util
import io
import random
import socket
import sys
import threading
import time
import types
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from facepipe.errors import ChecksumMismatchError, OfflineError, WeightsError
from facepipe.registry import PluginRegistry
from facepipe.specs import DetectorSpec, PackageFile, WeightFile
from facepipe.weights import WeightsManager
from tests.helpers.loopback import base_url, serve

EYE_SHA = "71cc64fc305a355dc60067880f6fbbd43dd155bd63ee3844661a1bda34b2fd8c"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload(n: int = 300_000, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


# --------------------------------------------------------------------------------------- server
@dataclass
class ServerState:
    """What the test server serves and what it saw."""

    files: dict[str, bytes] = field(default_factory=dict)
    #: per file: actions for the next requests, consumed one per request
    #: ("truncate": full Content-Length, half the body; "short": Content-Length = half;
    #:  "drop": a third of the body then a hard close; "503"; "stall": sleep before answering; "slow")
    actions: dict[str, list[str]] = field(default_factory=dict)
    ignore_range: bool = False
    etag: str | None = '"v1"'
    stall_s: float = 1.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base: str = ""

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def gets(self, name: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if name is None or r["name"] == name]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        st: ServerState = self.server.state
        name = self.path.lstrip("/")
        with st.lock:
            st.requests.append({"name": name, "range": self.headers.get("Range"),
                                "if_range": self.headers.get("If-Range")})
            queue = st.actions.get(name) or []
            action = queue.pop(0) if queue else None
        if name not in st.files:
            self.send_error(404)
            return
        if action == "503":
            self.send_error(503)
            return
        if action == "stall":
            time.sleep(st.stall_s)
        data = st.files[name]
        start, status = 0, 200
        wanted = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if wanted and not st.ignore_range and (if_range is None or if_range == st.etag):
            start = int(wanted.split("=", 1)[1].split("-", 1)[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        declared = len(body) // 2 if action == "short" else len(body)
        self.send_header("Content-Length", str(declared))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        if st.etag:
            self.send_header("ETag", st.etag)
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        try:
            if action in ("truncate", "short"):
                self.wfile.write(body[: len(body) // 2])
            elif action == "drop":
                self.wfile.write(body[: len(body) // 3])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            elif action == "slow":
                for i in range(0, len(body), 32_768):
                    self.wfile.write(body[i:i + 32_768])
                    self.wfile.flush()
                    time.sleep(0.02)
            else:
                self.wfile.write(body)
        except OSError:
            pass  # the client went away


@pytest.fixture(autouse=True)
def _local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # Never route 127.0.0.1 through a proxy, and keep the user's mirror setting out of the tests.
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.delenv("FACEPIPE_WEIGHTS_MIRROR", raising=False)


@pytest.fixture
def server() -> Iterator[ServerState]:
    # A scripted handler (faults, ranges, ETags) on the shared loopback server.
    with serve(Handler) as httpd:
        state = ServerState(base=base_url(httpd))
        httpd.state = state  # type: ignore[attr-defined]
        yield state


@pytest.fixture
def make_manager(tmp_path: Path) -> Any:
    def make(**kw: Any) -> WeightsManager:
        opts: dict[str, Any] = {"home": tmp_path / "home", "offline": False, "deepface_home": tmp_path / "dfhome",
                                "mirrors": (), "retries": 2, "backoff": 0.01, "timeout": 5.0, "progress": False}
        opts.update(kw)
        return WeightsManager(**opts)

    return make


def leftovers(manager: WeightsManager) -> list[str]:
    """Files in the cache other than lock files and verification stamps."""
    if not manager.cache_dir.is_dir():
        return []
    return sorted(p.name for p in manager.cache_dir.iterdir() if p.name not in (".locks", ".verified"))


def weight(server: ServerState, name: str = "model.bin", data: bytes | None = None, **kw: Any) -> WeightFile:
    data = payload() if data is None else data
    server.files[name] = data
    kw.setdefault("sha256", sha(data))
    kw.setdefault("size", len(data))
    kw.setdefault("urls", (server.url(name),))
    return WeightFile(name=name, **kw)


# --------------------------------------------------------------------------------------- downloads
def test_good_download(server: ServerState, make_manager: Any) -> None:
    wf = weight(server)
    manager = make_manager()
    path = manager.path(wf)
    assert path == manager.cache_dir / "model.bin"
    assert path.read_bytes() == server.files["model.bin"]
    assert leftovers(manager) == ["model.bin"]  # no .part / .src / .tmp
    assert len(server.gets()) == 1
    # Second call: served from the cache (the stamp spares a re-hash), no new request.
    assert manager.path(wf) == path
    assert make_manager().path(wf) == path
    assert len(server.gets()) == 1


def test_checksum_mismatch_leaves_nothing(server: ServerState, make_manager: Any) -> None:
    wf = weight(server, sha256="0" * 64)
    manager = make_manager()
    with pytest.raises(ChecksumMismatchError) as info:
        manager.path(wf)
    msg = str(info.value)
    assert "model.bin" in msg and "0" * 64 in msg and sha(server.files["model.bin"]) in msg
    assert server.url("model.bin") in msg
    assert leftovers(manager) == []


def test_size_mismatch_reported_before_downloading(server: ServerState, make_manager: Any) -> None:
    wf = weight(server, size=123)
    manager = make_manager()
    with pytest.raises(ChecksumMismatchError, match="expected 123"):
        manager.path(wf)
    assert leftovers(manager) == []


@pytest.mark.parametrize("action", ["truncate", "short", "drop"])
def test_truncated_response_is_resumed(server: ServerState, make_manager: Any, action: str) -> None:
    wf = weight(server)
    server.actions["model.bin"] = [action]
    manager = make_manager()
    path = manager.path(wf)
    assert path.read_bytes() == server.files["model.bin"]
    gets = server.gets()
    assert len(gets) == 2
    assert gets[0]["range"] is None
    assert gets[1]["range"] is not None and gets[1]["range"].startswith("bytes=")
    assert int(gets[1]["range"][6:].rstrip("-")) > 0
    assert gets[1]["if_range"] == '"v1"'
    assert leftovers(manager) == ["model.bin"]


def test_keeps_failing_gives_up_without_half_file(server: ServerState, make_manager: Any) -> None:
    wf = weight(server)
    server.actions["model.bin"] = ["truncate"] * 50
    server.ignore_range = True  # every attempt restarts and is cut again: no progress
    manager = make_manager(retries=2)
    with pytest.raises(WeightsError, match="could not download") as info:
        manager.path(wf)
    assert not isinstance(info.value, ChecksumMismatchError)
    assert str(manager.cache_path(wf)) in str(info.value)
    assert not manager.cache_path(wf).exists()
    assert 3 <= len(server.gets()) <= 5


def test_interrupted_download_resumes_in_a_later_call(server: ServerState, make_manager: Any) -> None:
    data = payload(500_000, seed=3)
    wf = weight(server, data=data)
    server.actions["model.bin"] = ["drop", "503", "503", "503", "503"]
    with pytest.raises(WeightsError):
        make_manager(retries=0).path(wf)
    manager = make_manager()
    part = manager.cache_dir / "model.bin.part"
    assert part.is_file() and 0 < part.stat().st_size < len(data)
    assert not manager.cache_path(wf).exists()
    # Let the 503s run out, then a new manager (a new process, say) resumes from the .part.
    server.actions["model.bin"] = []
    have = part.stat().st_size
    path = manager.path(wf)
    assert path.read_bytes() == data
    assert server.gets()[-1]["range"] == f"bytes={have}-"
    assert leftovers(manager) == ["model.bin"]


def test_server_ignoring_range_restarts(server: ServerState, make_manager: Any) -> None:
    data = payload(seed=4)
    wf = weight(server, data=data)
    server.ignore_range = True
    server.actions["model.bin"] = ["truncate"]
    path = make_manager().path(wf)
    assert path.read_bytes() == data  # the 200 answer overwrote the partial file, no duplicate bytes
    assert server.gets()[1]["range"] is not None


def test_changed_file_on_server_restarts(server: ServerState, make_manager: Any) -> None:
    # A .part from an older version of the file: If-Range no longer matches, the server sends it all.
    data = payload(seed=5)
    wf = weight(server, data=data)
    manager = make_manager()
    manager.cache_dir.mkdir(parents=True)
    (manager.cache_dir / "model.bin.part").write_bytes(b"x" * 1000)
    (manager.cache_dir / "model.bin.part.src").write_text(
        f'{{"url": "{server.url("model.bin")}", "validator": "\\"old\\""}}')
    assert manager.path(wf).read_bytes() == data
    assert server.gets()[0]["if_range"] == '"old"'


def test_complete_part_gets_416_and_is_installed(server: ServerState, make_manager: Any) -> None:
    data = payload(seed=6)
    wf = weight(server, data=data)
    manager = make_manager()
    manager.cache_dir.mkdir(parents=True)
    (manager.cache_dir / "model.bin.part").write_bytes(data)
    (manager.cache_dir / "model.bin.part.src").write_text(
        f'{{"url": "{server.url("model.bin")}", "validator": "\\"v1\\""}}')
    assert manager.path(wf).read_bytes() == data
    assert len(server.gets()) == 1
    assert leftovers(manager) == ["model.bin"]


def test_server_errors_and_timeouts_are_retried(server: ServerState, make_manager: Any) -> None:
    wf = weight(server)
    server.stall_s = 1.0
    server.actions["model.bin"] = ["503", "stall"]
    path = make_manager(timeout=0.3).path(wf)
    assert path.read_bytes() == server.files["model.bin"]
    assert len(server.gets()) == 3


def test_mirror_fallback(server: ServerState, make_manager: Any) -> None:
    wf = weight(server)
    wf = WeightFile(name=wf.name, urls=(server.url("missing/model.bin"), server.url("model.bin")),
                    sha256=wf.sha256, size=wf.size)
    path = make_manager().path(wf)
    assert path.read_bytes() == server.files["model.bin"]
    assert [g["name"] for g in server.gets()] == ["missing/model.bin", "model.bin"]  # 404: no retry


def test_mirror_env_is_tried_first(server: ServerState, make_manager: Any,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    data = payload(seed=7)
    server.files["mirror/model.bin"] = data
    wf = WeightFile(name="model.bin", urls=(server.url("upstream/model.bin"),), sha256=sha(data))
    monkeypatch.setenv("FACEPIPE_WEIGHTS_MIRROR", server.url("mirror") + "/")
    manager = make_manager(mirrors=None)
    assert manager.source_urls(wf)[0] == server.url("mirror/model.bin")
    assert manager.path(wf).read_bytes() == data
    assert [g["name"] for g in server.gets()] == ["mirror/model.bin"]


def test_all_sources_failing_names_each(server: ServerState, make_manager: Any) -> None:
    wf = WeightFile(name="nothing.bin", urls=(server.url("a/nothing.bin"), server.url("b/nothing.bin")))
    with pytest.raises(WeightsError) as info:
        make_manager().path(wf)
    msg = str(info.value)
    assert "a/nothing.bin: HTTP 404" in msg and "b/nothing.bin: HTTP 404" in msg


def test_concurrent_requests_download_once(server: ServerState, make_manager: Any) -> None:
    wf = weight(server, data=payload(400_000, seed=8))
    server.actions["model.bin"] = ["slow"]
    results: list[Path | BaseException] = []

    def fetch() -> None:
        try:
            results.append(make_manager().path(wf))  # separate managers, like separate processes
        except BaseException as exc:  # noqa: BLE001 - reported below
            results.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(isinstance(r, Path) for r in results), results
    assert len(results) == 3 and len(set(results)) == 1
    assert len(server.gets()) == 1


# --------------------------------------------------------------------------------------- offline
@pytest.mark.parametrize("via_env", [False, True])
def test_offline_never_touches_the_network(server: ServerState, make_manager: Any,
                                           monkeypatch: pytest.MonkeyPatch, via_env: bool) -> None:
    wf = weight(server)
    if via_env:
        monkeypatch.setenv("FACEPIPE_OFFLINE", "1")
        manager = make_manager(offline=None)
    else:
        manager = make_manager(offline=True)
    assert manager.offline
    with pytest.raises(OfflineError) as info:
        manager.path(wf)
    msg = str(info.value)
    assert "model.bin" in msg and server.url("model.bin") in msg
    assert str(manager.cache_dir / "model.bin") in msg
    with pytest.raises(OfflineError):
        manager.pull(wf, force=True)
    assert server.gets() == []


def test_offline_uses_local_files(server: ServerState, make_manager: Any) -> None:
    wf = weight(server)
    manager = make_manager(offline=True)
    manager.cache_dir.mkdir(parents=True)
    manager.cache_path(wf).write_bytes(server.files["model.bin"])
    assert manager.path(wf) == manager.cache_path(wf)
    # A bad cached file cannot be re-fetched offline: a clear error, and the file is left alone.
    manager.cache_path(wf).write_bytes(b"corrupt")
    with pytest.raises(ChecksumMismatchError, match="does not match"):
        manager.path(wf)
    assert manager.cache_path(wf).read_bytes() == b"corrupt"
    assert server.gets() == []


# --------------------------------------------------------------------------------------- local sources
def test_package_shipped_file(server: ServerState, make_manager: Any) -> None:
    if importlib.util.find_spec("cv2") is None:
        pytest.skip("opencv-python is not installed")
    pf = PackageFile("cv2", "data/haarcascade_eye.xml", sha256=EYE_SHA)
    wf = WeightFile(name="haarcascade_eye.xml", urls=(server.url("haarcascade_eye.xml"),),
                    sha256=EYE_SHA, package_files=(pf,))
    manager = make_manager(offline=True)
    path = manager.path(wf)
    assert path.name == "haarcascade_eye.xml" and "cv2" in path.parts
    assert sha(path.read_bytes()) == EYE_SHA
    assert manager.status(wf)["where"] == "package"
    assert manager.verify(wf) is True
    assert server.gets() == []


def test_package_file_with_wrong_checksum_is_skipped(server: ServerState, make_manager: Any) -> None:
    if importlib.util.find_spec("cv2") is None:
        pytest.skip("opencv-python is not installed")
    data = payload(seed=9)
    server.files["haarcascade_eye.xml"] = data
    wf = WeightFile(name="haarcascade_eye.xml", urls=(server.url("haarcascade_eye.xml"),), sha256=sha(data),
                    package_files=(PackageFile("cv2", "data/haarcascade_eye.xml", sha256="1" * 64),))
    manager = make_manager()
    assert manager.path(wf) == manager.cache_path(wf)
    assert len(server.gets()) == 1


def test_override_wins(tmp_path: Path, server: ServerState, make_manager: Any) -> None:
    wf = weight(server)
    mine = tmp_path / "mine.bin"
    mine.write_bytes(b"fine-tuned")
    manager = make_manager(offline=True)
    assert manager.path(wf, override=mine) == mine
    with pytest.raises(WeightsError, match="does not exist"):
        manager.path(wf, override=tmp_path / "nope.bin")


def test_unverifiable_cached_file_used_as_is(make_manager: Any) -> None:
    wf = WeightFile(name="synthetic.h5", urls=("http://127.0.0.1:9/never",))
    manager = make_manager(offline=True)
    manager.cache_dir.mkdir(parents=True)
    manager.cache_path(wf).write_bytes(b"anything")
    assert manager.path(wf) == manager.cache_path(wf)
    assert manager.verify(wf) is None
    assert manager.status(wf)["verified"] is None


def test_bad_cached_file_is_refetched(server: ServerState, make_manager: Any) -> None:
    wf = weight(server)
    manager = make_manager()
    manager.cache_dir.mkdir(parents=True)
    manager.cache_path(wf).write_bytes(b"corrupt" * 10)
    assert manager.status(wf)["verified"] is False
    assert manager.verify(wf) is False
    assert manager.path(wf).read_bytes() == server.files["model.bin"]
    assert len(server.gets()) == 1
    assert manager.verify(wf) is True


def test_cache_stamp_notices_changed_file(server: ServerState, make_manager: Any) -> None:
    wf = weight(server)
    manager = make_manager()
    path = manager.path(wf)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF  # same size, different content, newer mtime
    time.sleep(0.01)
    path.write_bytes(bytes(data))
    assert manager.path(wf).read_bytes() == server.files["model.bin"]
    assert len(server.gets()) == 2


def test_deepface_cache_reused_when_it_fits(server: ServerState, make_manager: Any, tmp_path: Path) -> None:
    data = payload(seed=10)
    wf = weight(server, name="facepipe_name.h5", data=data, deepface_name="deepface_name.h5")
    manager = make_manager()
    df = tmp_path / "dfhome" / ".deepface" / "weights" / "deepface_name.h5"
    df.parent.mkdir(parents=True)
    df.write_bytes(data)
    assert manager.path(wf) == df
    assert manager.status(wf)["where"] == "deepface"
    assert server.gets() == []
    # A deepface copy with another checksum is ignored and the file is downloaded instead.
    df.write_bytes(data[:-1] + b"\0")
    assert manager.path(wf) == manager.cache_path(wf)
    assert df.read_bytes() != data  # deepface's file is never touched
    assert len(server.gets()) == 1


def test_deepface_cache_by_size_or_unchecked(make_manager: Any, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "dfenv"))
    df = tmp_path / "dfenv" / ".deepface" / "weights" / "w.h5"
    df.parent.mkdir(parents=True)
    df.write_bytes(b"12345")
    manager = make_manager(offline=True, deepface_home=None)
    assert manager.path(WeightFile(name="w.h5", size=5)) == df
    assert manager.path(WeightFile(name="w.h5")) == df
    with pytest.raises(OfflineError):
        manager.path(WeightFile(name="w.h5", size=6))


def test_deepface_cache_in_a_subfolder(make_manager: Any, tmp_path: Path) -> None:
    # deepface keeps some files in a folder of their own (Buffalo_L: buffalo_l/webface_r50.onnx)
    df = tmp_path / "dfhome" / ".deepface" / "weights" / "buffalo_l" / "webface_r50.onnx"
    df.parent.mkdir(parents=True)
    df.write_bytes(b"onnx")
    manager = make_manager(offline=True)
    wf = WeightFile(name="webface_r50.onnx", deepface_name="buffalo_l/webface_r50.onnx")
    assert manager.deepface_path(wf) == df
    assert manager.path(wf) == df and manager.status(wf)["where"] == "deepface"
    for bad in ("buffalo_l/../x.onnx", "/abs/x.onnx", "a//b.onnx", "a\\b.onnx"):
        with pytest.raises(WeightsError, match="deepface file name"):
            manager.deepface_path(WeightFile(name="x.onnx", deepface_name=bad))


# --------------------------------------------------------------------------------------- archives
def test_bz2_is_decompressed(server: ServerState, make_manager: Any) -> None:
    data = payload(seed=11)
    server.files["model.dat.bz2"] = bz2.compress(data)
    wf = WeightFile(name="model.dat", urls=(server.url("model.dat.bz2"),), sha256=sha(data), size=len(data),
                    compression="bz2")
    manager = make_manager()
    path = manager.path(wf)
    assert path.read_bytes() == data
    assert leftovers(manager) == ["model.dat"]


def test_bz2_resumes_and_rejects_garbage(server: ServerState, make_manager: Any) -> None:
    data = payload(seed=12)
    server.files["model.dat.bz2"] = bz2.compress(data)
    server.actions["model.dat.bz2"] = ["truncate"]
    wf = WeightFile(name="model.dat", urls=(server.url("model.dat.bz2"),), sha256=sha(data),
                    compression="bz2")
    assert make_manager().path(wf).read_bytes() == data
    server.files["bad.dat.bz2"] = b"not bz2 at all"
    bad = WeightFile(name="bad.dat", urls=(server.url("bad.dat.bz2"),), compression="bz2")
    manager = make_manager()
    with pytest.raises(WeightsError, match="bz2"):
        manager.path(bad)
    assert leftovers(manager) == ["model.dat"]


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


def test_zip_extracts_the_expected_member_only(server: ServerState, make_manager: Any, tmp_path: Path) -> None:
    data = payload(seed=13)
    server.files["pack.zip"] = _zip({"README.txt": b"hello", "models/model.onnx": data})
    wf = WeightFile(name="model.onnx", urls=(server.url("pack.zip"),), sha256=sha(data), compression="zip")
    manager = make_manager()
    assert manager.path(wf).read_bytes() == data
    assert leftovers(manager) == ["model.onnx"]


def test_zip_with_traversal_member_is_rejected(server: ServerState, make_manager: Any, tmp_path: Path) -> None:
    data = payload(seed=14)
    server.files["evil.zip"] = _zip({"model.onnx": data, "../../escaped.txt": b"pwned"})
    wf = WeightFile(name="model.onnx", urls=(server.url("evil.zip"),), compression="zip")
    manager = make_manager()
    with pytest.raises(WeightsError, match="unsafe"):
        manager.path(wf)
    assert leftovers(manager) == []
    assert not list(tmp_path.rglob("escaped.txt"))


def test_zip_without_the_member_is_rejected(server: ServerState, make_manager: Any) -> None:
    server.files["other.zip"] = _zip({"a.bin": b"a", "b.bin": b"b"})
    wf = WeightFile(name="model.onnx", urls=(server.url("other.zip"),), compression="zip")
    with pytest.raises(WeightsError, match="no single member"):
        make_manager().path(wf)


def test_zip_member_path_picks_that_file_from_a_wheel(server: ServerState, make_manager: Any) -> None:
    """A wheel holds many files, some with the same base name: ``member`` names the one to unpack."""
    data, decoy = payload(seed=15), payload(seed=16)
    server.files["pkg-1.0-py3-none-any.whl"] = _zip({
        "pkg/__init__.py": b"", "pkg/data/model.hdf5": data, "tests/data/model.hdf5": decoy,
        "pkg-1.0.dist-info/RECORD": b"",
    })
    wf = WeightFile(name="pkg_model.hdf5", urls=(server.url("pkg-1.0-py3-none-any.whl"),), sha256=sha(data),
                    size=len(data), compression="zip", member="pkg/data/model.hdf5")
    manager = make_manager()
    assert manager.path(wf).read_bytes() == data
    assert leftovers(manager) == ["pkg_model.hdf5"]


def test_zip_without_the_declared_member_path_is_rejected(server: ServerState, make_manager: Any) -> None:
    server.files["moved.whl"] = _zip({"pkg/model.hdf5": b"elsewhere"})
    wf = WeightFile(name="model.hdf5", urls=(server.url("moved.whl"),), compression="zip",
                    member="pkg/data/model.hdf5")
    manager = make_manager()
    with pytest.raises(WeightsError, match="no member pkg/data/model.hdf5"):
        manager.path(wf)
    assert leftovers(manager) == []


# --------------------------------------------------------------------------------------- google drive
GDRIVE = "https://drive.google.com/uc?id=abc"


def test_gdrive_without_gdown_is_a_clear_error(make_manager: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gdown", None)  # makes `import gdown` fail
    manager = make_manager()
    wf = WeightFile(name="yolo.pt", urls=(GDRIVE,))
    with pytest.raises(WeightsError, match="pip install gdown") as info:
        manager.path(wf)
    assert str(manager.cache_path(wf)) in str(info.value)


def test_gdrive_goes_through_gdown(make_manager: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    data = payload(seed=15)
    calls: list[str] = []

    def download(url: str, output: str, quiet: bool = False) -> str:
        calls.append(url)
        Path(output).write_bytes(data)
        return output

    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download=download))
    wf = WeightFile(name="yolo.pt", urls=(GDRIVE,), sha256=sha(data))
    assert make_manager().path(wf).read_bytes() == data
    assert calls == [GDRIVE]


# --------------------------------------------------------------------------------------- management
def test_status_pull_verify(server: ServerState, make_manager: Any) -> None:
    wf = weight(server)
    manager = make_manager()
    row = manager.status(wf)
    assert row["where"] == "missing" and row["path"] == str(manager.cache_path(wf))
    assert manager.verify(wf) is None  # nothing local to verify
    assert server.gets() == []
    path = manager.pull(wf)
    assert manager.status(wf) == {"name": "model.bin", "where": "cache", "path": str(path),
                                  "size": len(server.files["model.bin"]), "verified": True,
                                  "urls": [server.url("model.bin")]}
    assert manager.verify(wf) is True
    assert manager.pull(wf) == path and len(server.gets()) == 1
    assert manager.pull(wf, force=True) == path and len(server.gets()) == 2
    assert leftovers(manager) == ["model.bin"]


def test_failed_forced_pull_keeps_the_good_copy(server: ServerState, make_manager: Any) -> None:
    wf = weight(server)
    manager = make_manager()
    path = manager.pull(wf)
    server.files["model.bin"] = b"tampered"
    with pytest.raises(ChecksumMismatchError):
        manager.pull(wf, force=True)
    assert manager.verify(wf) is True and path.is_file()


def test_invalid_names_are_rejected(make_manager: Any) -> None:
    with pytest.raises(WeightsError, match="plain file name"):
        make_manager(offline=True).path(WeightFile(name="../escape.bin"))


def test_registry_weight_files() -> None:
    a = WeightFile(name="a.bin")
    b = WeightFile(name="b.bin")
    registry = PluginRegistry(autoload=False)
    registry.add(DetectorSpec(name="one", factory="x:Y", weights=(a, b)))
    registry.add(DetectorSpec(name="two", factory="x:Z"))
    found = [(spec.name, wf.name) for spec, wf in registry.weight_files()]
    assert found == [("one", "a.bin"), ("one", "b.bin")]
