"""File primitives shared by the weights cache, the ONNX export cache and the face index.

* :func:`sha256_file` - the hex sha256 of a file, read in blocks.
* :func:`atomic_path` / :func:`atomic_write_bytes` / :func:`atomic_write_text` - write into a
  temporary file next to the target, fsync it and ``os.replace`` it into place: readers see the
  old file or the whole new one, and a failure leaves nothing half-written behind.
* :func:`file_lock` - an exclusive lock between threads and processes on every platform (built
  on the ``filelock`` package; the OS drops it with a crashed process, so it never goes stale).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("facepipe.files")

_BLOCK = 1 << 20

__all__ = ["sha256_file", "atomic_path", "atomic_write_bytes", "atomic_write_text", "file_lock"]


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of the file at ``path`` (read in 1 MiB blocks, so big files fit in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a fresh temporary path next to ``target``; on a clean exit it replaces ``target``.

    The caller writes the temporary file any way it likes (``open``, SQLite, an exporter).  The
    file is then flushed to disk and renamed over ``target`` in one step (same folder, so the
    rename is atomic).  On any error the temporary file is removed and ``target`` is untouched.
    ``suffix`` ends the temporary name (some writers choose the format by extension).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Process and thread in the name: concurrent writers of one target never share a temp file.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}{suffix}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        yield tmp
        if not tmp.is_file():
            raise FileNotFoundError(f"nothing was written to {tmp} for {target}")
        _fsync(tmp)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``target`` with ``data`` atomically (see :func:`atomic_path`)."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Replace ``target`` with ``text`` atomically (see :func:`atomic_path`)."""
    atomic_write_bytes(target, text.encode(encoding))


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], *, waiting_message: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on the lock file ``path`` for the ``with`` block.

    Excludes other processes and other threads of this process alike, on Linux, macOS and
    Windows.  When the lock is busy, ``waiting_message`` (if given) is logged once before waiting.
    """
    import filelock  # imported here: only code that locks pays for it

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # thread_local=False: a lock object is held by one ``with`` block, whatever thread releases it;
    # a new object per call means two threads exclude each other like two processes do.
    lock = filelock.FileLock(str(path), thread_local=False)
    try:
        lock.acquire(blocking=False)
    except filelock.Timeout:
        if waiting_message:
            log.info("%s", waiting_message)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
