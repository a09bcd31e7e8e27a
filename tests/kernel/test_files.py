"""facepipe.files: one digest, one atomic write, one cross-platform lock."""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from facepipe.files import atomic_path, atomic_write_bytes, atomic_write_text, file_lock, sha256_file


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000  # spans several read blocks
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_atomic_write_replaces_the_target(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"
    atomic_write_text(target, "first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk gone"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk gone")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_atomic_path_without_a_written_file_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with pytest.raises(FileNotFoundError):
        with atomic_path(target):
            pass
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_lock_excludes_a_second_thread(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    inside, overlaps = [], []

    def work() -> None:
        for _ in range(5):
            with file_lock(lock):
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                time.sleep(0.002)
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not overlaps


def _hold(lock: str, ready: "multiprocessing.synchronize.Event", release: "multiprocessing.synchronize.Event") -> None:
    with file_lock(lock):
        ready.set()
        release.wait(30)


def test_lock_excludes_a_second_process(tmp_path: Path) -> None:
    lock = str(tmp_path / "x.lock")
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold, args=(lock, ready, release))
    other.start()
    try:
        assert ready.wait(60), "the other process never took the lock"
        got = threading.Event()

        def take() -> None:
            with file_lock(lock):
                got.set()

        taker = threading.Thread(target=take)
        taker.start()
        assert not got.wait(0.5), "the lock was taken while another process held it"
        release.set()
        assert got.wait(30)
        taker.join()
    finally:
        release.set()
        other.join(30)
