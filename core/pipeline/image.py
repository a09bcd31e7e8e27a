"""The single place where facepipe turns user input into an image.

Everything that takes an image (pipelines, the deepface-compatible functions, the REST service)
calls :func:`load_image` / :func:`load_images`, so the safety checks live here once:

1. byte cap (``ImageLimits.max_bytes``), checked before anything is read in full;
2. strict base64 (``validate=True``), with the decoded size computed from the string length first;
3. format sniffed from the magic bytes against an allow-list (JPEG, PNG, WebP, BMP, TIFF, GIF) —
   the file extension is never trusted, and Pillow is told to try only the sniffed format;
4. the header's width x height checked against ``ImageLimits.max_pixels`` *before* pixels are
   decoded (decompression bombs are refused without allocating);
5. decode with Pillow (truncated or corrupt data is an error, never a partial image);
6. EXIF orientation applied, then conversion to BGR ``uint8`` ``(H, W, 3)``, C-contiguous.

Every failure is one of the typed errors in :mod:`facepipe.errors` (all ``ValueError``
subclasses) and names the input.  This module never imports OpenCV; Pillow is imported lazily.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from facepipe.errors import (
    ImageDecodeError,
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    ImageTypeError,
)
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image as PILImage

__all__ = ["SUPPORTED_FORMATS", "ImageLimits", "LoadedImage", "is_batch", "load_image", "load_images"]

log = logging.getLogger(__name__)

MiB = 1024 * 1024

#: Formats accepted for encoded input (Pillow format ids).
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")

# Paths longer than this cannot exist on any common file system; skip the stat() call for them
# (a multi-megabyte base64 string would otherwise be encoded and handed to the OS first).
_MAX_PATH_CHARS = 4096
_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
# A bare string this long made only of base64 characters is treated as base64 even if it does
# not start like a known image (so "base64 of a text file" gets a decode error, not "not found").
_B64_MIN_CHARS = 64


class ImageLimits(BaseModel):
    """Resource limits applied by :func:`load_image`.

    The defaults suit a library user; a public service should lower them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_bytes: int = Field(default=50 * MiB, gt=0, description="largest encoded input accepted, in bytes")
    max_pixels: int = Field(default=60_000_000, gt=0, description="largest width*height accepted (header check)")
    url_timeout: float = Field(default=10.0, gt=0, description="seconds allowed for a whole URL download")
    url_max_bytes: int = Field(default=20 * MiB, gt=0, description="largest URL download, in bytes")
    url_allowed_hosts: tuple[str, ...] | None = Field(
        default=None, description="if set, URLs (and their redirects) may only point at these host names"
    )


_DEFAULT_LIMITS = ImageLimits()


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image: ``image`` is BGR ``uint8`` ``(H, W, 3)``, C-contiguous.

    ``name`` is a short description of where it came from, for messages and results (the path,
    the URL, ``"bytes"``, ``"file object"``, ``"base64 string"``, ``"data URI"``,
    ``"numpy array"``...).
    """

    image: np.ndarray
    name: str

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------
def load_image(
    source: Any,
    *,
    name: str | None = None,
    limits: ImageLimits | None = None,
    allow_urls: bool = False,
) -> LoadedImage:
    """Load one image from any supported input and return it as BGR ``uint8``.

    Accepted ``source`` kinds:

    * ``str`` / ``os.PathLike``: a local file (any Unicode path; read in Python);
    * ``str`` starting with ``data:``: a base64 data URI (``data:image/png;base64,...``; like
      deepface, the data is read as base64 even without the ``;base64`` marker);
    * ``str`` made of base64 characters: base64-encoded file bytes (standard alphabet,
      whitespace ignored, otherwise strict);
    * ``str`` starting with ``http://`` / ``https://``: fetched only when ``allow_urls=True``;
    * ``bytes`` / ``bytearray`` / ``memoryview``: encoded file bytes;
    * a binary file object (anything with ``.read``; rewound first when ``seek(0)`` works,
      otherwise read from where it is; a stream that is not an image fails with a message
      starting ``Failed to decode image``, deepface's wording);
    * ``numpy.ndarray``: BGR ``(H, W, 3)`` ``uint8`` is used as is (not copied); gray
      ``(H, W)``/``(H, W, 1)`` and BGRA ``(H, W, 4)`` are converted; float arrays in [0, 1] are
      scaled by 255, float arrays in [0, 255] are rounded; integer arrays must hold values in
      [0, 255];
    * a ``PIL.Image.Image`` or a :class:`LoadedImage`.

    ``name`` overrides the description stored in the result and used in error messages.

    Raises:
        ImageNotFoundError: a path does not exist / cannot be read, or a URL cannot be fetched.
        ImageDecodeError: empty, corrupt, truncated, malformed base64 or unsupported format.
        ImageTooLargeError: over ``limits.max_bytes`` / ``max_pixels`` / ``url_max_bytes``.
        ImageTypeError: an input kind (or array dtype/shape) that is not accepted, or a URL
            while ``allow_urls`` is False.
    """
    lim = limits if limits is not None else _DEFAULT_LIMITS
    if isinstance(source, LoadedImage):
        return source if name is None else LoadedImage(source.image, name)
    if isinstance(source, np.ndarray):
        label = name or "numpy array"
        return LoadedImage(_from_array(source, label, lim), label)
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "bytes"
        data = _bytes_of(source, f"{label} input", lim)
        return LoadedImage(_decode(data, f"{label} input ({len(data)} bytes)", lim), label)
    if isinstance(source, str):
        return _from_string(source, name, lim, allow_urls)
    if isinstance(source, os.PathLike):
        path = os.fspath(source)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        return _from_path(path, name, lim)
    if _is_pil_image(source):
        label = name or "PIL image"
        return LoadedImage(_pil_to_bgr(source, f"{label}", lim), label)
    if callable(getattr(source, "read", None)):
        label = name or "file object"
        data = _read_file_object(source, label, lim)
        try:
            image = _decode(data, f"{label} ({len(data)} bytes)", lim)
        except ImageDecodeError as exc:
            # deepface's wording for a stream that is not an image; callers match on it.
            raise ImageDecodeError(f"Failed to decode image: {exc}") from None
        return LoadedImage(image, label)
    if isinstance(source, (list, tuple)):
        raise ImageTypeError(
            f"load_image() takes one image but got a {type(source).__name__} of {len(source)} items; "
            "use load_images() for a batch"
        )
    raise ImageTypeError(
        f"unsupported image input of type {type(source).__module__}.{type(source).__qualname__}; "
        "pass a file path, bytes, a binary file object, a base64 string or a numpy array"
    )


def load_images(
    sources: Any,
    *,
    names: Sequence[str] | None = None,
    limits: ImageLimits | None = None,
    allow_urls: bool = False,
) -> list[LoadedImage]:
    """Load a batch: a list/tuple of inputs (any kinds :func:`load_image` accepts) or a 4-D
    array ``(N, H, W, C)``.  An error names the failing item's position.
    """
    if not is_batch(sources):
        raise ImageTypeError(
            f"load_images() expects a list/tuple of images or a 4-D array, got {_describe_type(sources)}; "
            "use load_image() for a single image"
        )
    if names is not None and len(names) != len(sources):
        raise ImageTypeError(f"got {len(names)} names for {len(sources)} images")
    out: list[LoadedImage] = []
    four_d = isinstance(sources, np.ndarray)
    for i, item in enumerate(sources):
        label = names[i] if names is not None else (f"numpy array [{i}]" if four_d else None)
        try:
            out.append(load_image(item, name=label, limits=limits, allow_urls=allow_urls))
        except ImageError as exc:
            # Same type, message prefixed with the position so a caller can find the bad item.
            raise type(exc)(f"batch item {i}: {exc}") from exc
    return out


def is_batch(x: Any) -> bool:
    """True for a batch of images: a 4-D array, or a list/tuple whose items are all image inputs.

    A flat list of numbers (an embedding) or a list of number lists is not a batch.  An empty
    list/tuple is an (empty) batch.
    """
    if isinstance(x, np.ndarray):
        return x.ndim == 4
    if isinstance(x, (list, tuple)):
        return all(_is_single_image_input(item) for item in x)
    return False


# --------------------------------------------------------------------------------------------
# input kinds
# --------------------------------------------------------------------------------------------
def _is_single_image_input(item: Any) -> bool:
    if isinstance(item, np.ndarray):
        return item.ndim in (2, 3)
    if isinstance(item, (str, bytes, bytearray, memoryview, os.PathLike, LoadedImage)):
        return True
    return _is_pil_image(item) or callable(getattr(item, "read", None))


def _is_pil_image(obj: Any) -> bool:
    # Checked by module name so PIL is not imported just to test an isinstance.
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "getbands")


def _describe_type(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"a {x.ndim}-D array of shape {x.shape}"
    return f"a {type(x).__name__}"


def _short(text: str, limit: int = 120) -> str:
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} chars)"


def _from_string(s: str, name: str | None, lim: ImageLimits, allow_urls: bool) -> LoadedImage:
    if not s:
        raise ImageNotFoundError("an empty string is neither an image path nor base64 data")
    head = s[:16].lower()
    if head.startswith("data:"):
        label = name or "data URI"
        data = _decode_data_uri(s, lim)
        return LoadedImage(_decode(data, f"data URI of {len(s)} chars", lim), label)
    if head.startswith(("http://", "https://")):
        if not allow_urls:
            raise ImageTypeError(
                f"URL input {_short(s)} refused: fetching URLs is off. Download the image yourself "
                "and pass the bytes, or call with allow_urls=True"
            )
        label = name or s
        data = _fetch_url(s, lim)
        return LoadedImage(_decode(data, f"image at URL {_short(s)} ({len(data)} bytes)", lim), label)
    if len(s) <= _MAX_PATH_CHARS and os.path.isfile(s):
        return _from_path(s, name, lim)
    kind = _base64_kind(s)
    if kind is not None:
        label = name or "base64 string"
        what = f"base64 string of {len(s)} chars"
        try:
            data = _decode_base64(s, what, lim)
        except ImageDecodeError:
            if kind == "image":
                raise
            # Only "long and made of base64 characters" (a path like /srv/photos/abc/... also
            # is): report the more likely mistake, naming both readings.
            raise ImageNotFoundError(
                f"{_short(s)} is neither an existing file nor valid base64 "
                f"(relative paths are resolved against {os.getcwd()!r})"
            ) from None
        return LoadedImage(_decode(data, what, lim), label)
    return _from_path(s, name, lim)  # raises ImageNotFoundError with the path in the message


def _from_path(path: str, name: str | None, lim: ImageLimits) -> LoadedImage:
    label = name or path
    what = f"image file {_short(path)}"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageNotFoundError(
            f"{what} does not exist (relative paths are resolved against {os.getcwd()!r}); "
            "check the path, or pass bytes / a base64 string instead"
        ) from None
    except (OSError, ValueError) as exc:  # too long, embedded NUL, permission on a parent...
        raise ImageNotFoundError(f"{what} cannot be accessed: {exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageNotFoundError(f"{what} is a directory, not an image file")
    if not stat.S_ISREG(st.st_mode):
        # FIFOs, sockets and devices could block forever or never end.
        raise ImageTypeError(f"{what} is not a regular file (device, pipe or socket); pass a regular file")
    if st.st_size > lim.max_bytes:
        raise ImageTooLargeError(
            f"{what} is {st.st_size} bytes, over the limit of {lim.max_bytes} bytes "
            "(raise ImageLimits.max_bytes to accept it)"
        )
    try:
        with open(path, "rb") as fh:
            data = fh.read(lim.max_bytes + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise ImageNotFoundError(f"{what} cannot be read: {exc}") from None
    if len(data) > lim.max_bytes:
        raise ImageTooLargeError(f"{what} is over the limit of {lim.max_bytes} bytes")
    return LoadedImage(_decode(data, what, lim), label)


def _bytes_of(buf: bytes | bytearray | memoryview, what: str, lim: ImageLimits) -> bytes:
    size = buf.nbytes if isinstance(buf, memoryview) else len(buf)
    if size > lim.max_bytes:
        raise ImageTooLargeError(
            f"{what} is {size} bytes, over the limit of {lim.max_bytes} bytes "
            "(raise ImageLimits.max_bytes to accept it)"
        )
    if isinstance(buf, memoryview):
        return buf.tobytes()
    return bytes(buf) if isinstance(buf, bytearray) else buf


def _read_file_object(fobj: Any, label: str, lim: ImageLimits) -> bytes:
    if isinstance(fobj, io.TextIOBase):
        raise ImageTypeError(f"{label} is opened in text mode; open the image file with mode 'rb'")
    _rewind(fobj)
    cap = lim.max_bytes
    chunks: list[bytes] = []
    total = 0
    sized = True  # False once read(size) turned out unsupported: then one read() takes it all
    try:
        while total <= cap:
            if sized:
                try:
                    chunk = fobj.read(min(4 * MiB, cap + 1 - total))
                except TypeError:
                    if chunks:
                        raise
                    sized = False
                    chunk = fobj.read()
            else:
                chunk = b""  # the single read() already returned everything
            if chunk is None:  # non-blocking stream with nothing available
                raise ImageDecodeError(f"{label} returned no data (non-blocking stream?); pass the bytes")
            if isinstance(chunk, str):
                raise ImageTypeError(f"{label} returned text, not bytes; open the image file with mode 'rb'")
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise ImageTypeError(f"{label}.read() returned {type(chunk).__name__}, expected bytes")
            if not chunk:
                break
            chunks.append(bytes(chunk))
            total += len(chunk)
    except ImageError:
        raise
    except TypeError:
        raise ImageTypeError(f"{label}.read() cannot be called; pass the bytes instead") from None
    except (OSError, ValueError) as exc:  # closed file, I/O error
        raise ImageDecodeError(f"could not read from {label}: {exc}") from None
    if total > cap:
        raise ImageTooLargeError(
            f"{label} holds more than {cap} bytes (raise ImageLimits.max_bytes to accept it)"
        )
    return b"".join(chunks)


def _rewind(fobj: Any) -> None:
    """Seek to the start when the object allows it (deepface rewinds too); a ``seek`` that is
    missing, refuses, or has another signature just means "read from where it is"."""
    seek = getattr(fobj, "seek", None)
    if not callable(seek):
        return
    try:
        if callable(getattr(fobj, "seekable", None)) and not fobj.seekable():
            return
        seek(0)
    except (OSError, ValueError, TypeError, AttributeError):
        pass


# --------------------------------------------------------------------------------------------
# base64 / data URIs / URLs
# --------------------------------------------------------------------------------------------
_B64_IMAGE_PREFIXES = ("/9j/", "iVBORw0KGgo", "R0lGOD", "UklGR", "Qk", "SUkq", "TU0AK")


def _base64_kind(s: str) -> str | None:
    """``"image"`` if ``s`` starts like the base64 of a supported format, ``"maybe"`` if it is a
    long string of base64 characters, None if it does not look like base64 at all."""
    head = "".join(s[:4096].split())
    if len(head) < 16:
        return None
    if head.startswith(_B64_IMAGE_PREFIXES) and set(head[:64]) <= _B64_ALPHABET:
        return "image"
    if len(s) >= _B64_MIN_CHARS and set(head) <= _B64_ALPHABET:
        return "maybe"  # decoding is strict, so the rest of the string is checked then
    return None


def _decode_base64(text: str, what: str, lim: ImageLimits) -> bytes:
    # Size first, from the length alone: a whitespace-free string of n chars decodes to <= 3n/4.
    if len(text) // 4 * 3 > 2 * lim.max_bytes:  # generous for line breaks; exact check below
        raise ImageTooLargeError(
            f"{what} would decode to more than {lim.max_bytes} bytes (raise ImageLimits.max_bytes)"
        )
    compact = "".join(text.split())  # MIME-style line breaks are common; nothing else is allowed
    if (len(compact) + 3) // 4 * 3 > lim.max_bytes + 2:
        raise ImageTooLargeError(
            f"{what} would decode to about {len(compact) // 4 * 3} bytes, over the limit of "
            f"{lim.max_bytes} bytes (raise ImageLimits.max_bytes)"
        )
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageDecodeError(
            f"{what} is not valid base64 ({exc}); use the standard alphabet (A-Z a-z 0-9 + /) "
            "with '=' padding, or pass the raw bytes"
        ) from None
    if len(data) > lim.max_bytes:
        raise ImageTooLargeError(f"{what} decodes to {len(data)} bytes, over the limit of {lim.max_bytes}")
    return data


def _decode_data_uri(uri: str, lim: ImageLimits) -> bytes:
    what = f"data URI of {len(uri)} chars"
    comma = uri.find(",", 0, 256)
    if comma < 0:
        raise ImageDecodeError(f"{what} has no ',' after its header; expected 'data:image/<type>;base64,<data>'")
    header = uri[5:comma].strip().lower()
    if header.endswith(";base64"):
        return _decode_base64(uri[comma + 1:], what, lim)
    # No ';base64' marker: deepface decodes the payload as base64 anyway, and so do we (strictly).
    try:
        return _decode_base64(uri[comma + 1:], what, lim)
    except ImageDecodeError:
        raise ImageDecodeError(
            f"{what} has no ';base64' in its header ({uri[:comma]!r}) and its data is not base64 either; "
            "expected 'data:image/<type>;base64,<data>'"
        ) from None


def _fetch_url(url: str, lim: ImageLimits) -> bytes:
    import http.client
    import urllib.error
    import urllib.parse
    import urllib.request

    what = f"URL {_short(url)}"

    def check_target(target: str) -> None:
        parts = urllib.parse.urlsplit(target)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ImageTypeError(f"{what}: only http(s) URLs with a host are fetched, not {_short(target)}")
        allowed = lim.url_allowed_hosts
        if allowed is not None and parts.hostname.lower() not in {h.lower() for h in allowed}:
            raise ImageTypeError(
                f"{what}: host {parts.hostname!r} is not in ImageLimits.url_allowed_hosts {list(allowed)}"
            )

    class _Redirects(urllib.request.HTTPRedirectHandler):
        # Every redirect hop must pass the same scheme/host checks as the original URL.
        max_redirections = 5

        def http_error_302(self, req, fp, code, msg, headers):  # type: ignore[no-untyped-def]
            location = headers.get("location") or headers.get("uri")
            if location:
                try:
                    check_target(urllib.parse.urljoin(req.full_url, location))
                except ImageError:
                    fp.close()
                    raise
            return super().http_error_302(req, fp, code, msg, headers)

        http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    check_target(url)
    cap = min(lim.url_max_bytes, lim.max_bytes)
    deadline = time.monotonic() + lim.url_timeout
    opener = urllib.request.build_opener(_Redirects())
    request = urllib.request.Request(url, headers={"User-Agent": "facepipe", "Accept": "image/*"})
    chunks: list[bytes] = []
    total = 0
    try:
        with opener.open(request, timeout=lim.url_timeout) as resp:
            length = resp.headers.get("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) > cap:
                raise ImageTooLargeError(
                    f"{what} announces {int(length)} bytes, over the limit of {cap} bytes "
                    "(ImageLimits.url_max_bytes)"
                )
            read = getattr(resp, "read1", resp.read)
            while total <= cap:
                if time.monotonic() > deadline:
                    raise ImageNotFoundError(
                        f"{what}: download took longer than {lim.url_timeout} s (ImageLimits.url_timeout)"
                    )
                # read1() returns after one socket read, so a server dripping bytes slowly is
                # caught by the deadline instead of filling a whole chunk first.
                chunk = read(min(256 * 1024, cap + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
    except ImageError:
        raise
    except urllib.error.HTTPError as exc:
        raise ImageNotFoundError(f"{what} answered HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ImageError):  # raised by a redirect check inside urllib
            raise reason from None
        raise ImageNotFoundError(f"{what} could not be fetched: {reason}") from None
    except TimeoutError:
        raise ImageNotFoundError(f"{what} timed out after {lim.url_timeout} s (ImageLimits.url_timeout)") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:  # reset, bad status line...
        raise ImageNotFoundError(f"{what} could not be fetched: {exc}") from None
    if total > cap:
        raise ImageTooLargeError(f"{what} sent more than {cap} bytes (ImageLimits.url_max_bytes)")
    return b"".join(chunks)


# --------------------------------------------------------------------------------------------
# decoding encoded bytes
# --------------------------------------------------------------------------------------------
def sniff_format(data: bytes) -> str | None:
    """The Pillow format id of ``data`` from its magic bytes, or None if not a supported format."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:2] == b"BM":
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


def _unsupported_hint(data: bytes) -> str:
    """Name well-known non-supported contents so the message says what the bytes actually are."""
    head = data[:64]
    low = head.lstrip().lower()
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", "replace")
        kind = "HEIC/HEIF" if brand.startswith(("hei", "mif", "msf", "hev")) else \
            "AVIF" if brand.startswith("avi") else f"an ISO media file (brand {brand!r})"
        return f"it is {kind}, which is not supported; convert it to JPEG or PNG"
    if head.startswith(b"%PDF"):
        return "it is a PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "it is a ZIP archive"
    if head.startswith(b"\x1f\x8b"):
        return "it is gzip-compressed data"
    if low.startswith((b"<svg", b"<?xml")):
        return "it is XML/SVG; vector images are not supported"
    if low.startswith((b"<!doctype", b"<html")):
        return "it is an HTML page (a URL that returned a web page instead of an image?)"
    if head.startswith(b"\x00\x00\x01\x00"):
        return "it is an ICO icon"
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    if head and printable == len(head):
        return f"it looks like text starting with {head[:24].decode('ascii')!r} (a path passed as bytes?)"
    return f"it starts with {head[:12]!r}"


def _decode(data: bytes, what: str, lim: ImageLimits) -> np.ndarray:
    if not data:
        raise ImageDecodeError(f"{what} is empty (0 bytes); nothing to decode")
    if len(data) > lim.max_bytes:
        raise ImageTooLargeError(f"{what} is {len(data)} bytes, over the limit of {lim.max_bytes} bytes")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageDecodeError(
            f"{what} is not a supported image ({', '.join(SUPPORTED_FORMATS)}): {_unsupported_hint(data)}"
        )

    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        # Pillow's own guard (2 x Image.MAX_IMAGE_PIXELS) fires inside open() for huge headers.
        raise ImageTooLargeError(
            f"{what} is refused as a decompression bomb ({exc}); facepipe's limit is "
            f"{lim.max_pixels} pixels (ImageLimits.max_pixels)"
        ) from None
    except MemoryError:
        raise ImageTooLargeError(f"{what} needs more memory than is available to open") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds (OSError, SyntaxError, struct.error)
        raise ImageDecodeError(f"{what} looks like {fmt} but its header is invalid: {_exc_text(exc)}") from None
    try:
        return _pil_to_bgr(img, what, lim, fmt=fmt)
    finally:
        img.close()


def _exc_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def _check_pixels(width: int, height: int, what: str, lim: ImageLimits) -> None:
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"{what} has no pixels ({width}x{height})")
    if width * height > lim.max_pixels:
        raise ImageTooLargeError(
            f"{what} is {width}x{height} = {width * height} pixels, over the limit of {lim.max_pixels} "
            "pixels (ImageLimits.max_pixels); downscale it or raise the limit"
        )


def _pil_to_bgr(img: PILImage.Image, what: str, lim: ImageLimits, fmt: str | None = None) -> np.ndarray:
    from PIL import Image

    width, height = img.size
    _check_pixels(width, height, what, lim)  # header only: nothing decoded yet
    kind = fmt or "image"
    try:
        img.load()
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{what} is refused as a decompression bomb: {exc}") from None
    except MemoryError:
        raise ImageTooLargeError(f"{what} needs more memory than is available to decode") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure means corrupt input
        raise ImageDecodeError(
            f"{what}: the {kind} data is truncated or corrupt ({_exc_text(exc)}); re-export or "
            "re-download the file"
        ) from None
    img = _apply_exif_orientation(img, what)
    try:
        bgr = _to_bgr_array(img)
    except ImageError:
        raise
    except MemoryError:
        raise ImageTooLargeError(f"{what} needs more memory than is available to convert") from None
    except Exception as exc:  # noqa: BLE001 - unusual modes (LAB, HSV...) may not convert
        raise ImageDecodeError(f"{what}: cannot convert mode {img.mode!r} to RGB ({_exc_text(exc)})") from None
    if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
        raise ImageDecodeError(f"{what} decoded to an unexpected array {bgr.shape} {bgr.dtype}")
    _check_pixels(bgr.shape[1], bgr.shape[0], what, lim)
    return bgr


def _apply_exif_orientation(img: PILImage.Image, what: str) -> PILImage.Image:
    from PIL import ImageOps

    try:
        orientation = img.getexif().get(0x0112, 1)  # 0x0112 = Orientation
        if orientation in (2, 3, 4, 5, 6, 7, 8):  # 1 (or none) = upright: skip the copy
            return ImageOps.exif_transpose(img) or img
    except Exception as exc:  # noqa: BLE001
        # Broken EXIF must not make an otherwise good photo unusable: keep it unrotated then.
        log.debug("%s: EXIF orientation ignored (%s)", what, exc)
    return img


def _to_bgr_array(img: PILImage.Image) -> np.ndarray:
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        # High bit depth gray: Pillow's convert() clips at 255; scale to 8 bits instead (like OpenCV).
        arr = np.asarray(img)
        if mode == "F":
            arr = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
            if arr.size and arr.min() >= 0.0 and arr.max() <= 1.0:
                arr = arr * 255.0
            gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        else:
            gray = (np.clip(arr.astype(np.int64), 0, 65535) >> 8).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # avoids Pillow's palette-transparency warning; alpha dropped next
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, LA, P, RGBA (alpha dropped), CMYK, YCbCr, 1...
    width, height = img.size
    # Pillow packs straight to BGR; the copy makes the array writable (3x faster than a numpy flip).
    packed = img.tobytes("raw", "BGR")
    return np.frombuffer(packed, dtype=np.uint8).reshape(height, width, 3).copy()


# --------------------------------------------------------------------------------------------
# numpy arrays
# --------------------------------------------------------------------------------------------
def _from_array(arr: np.ndarray, label: str, lim: ImageLimits) -> np.ndarray:
    what = f"{label} of shape {arr.shape} and dtype {arr.dtype}"
    if arr.ndim == 4:
        raise ImageTypeError(f"{what} is a batch; use load_images() for 4-D arrays")
    if arr.ndim == 1 and arr.dtype == np.uint8:
        raise ImageTypeError(f"{what} looks like encoded file bytes; pass arr.tobytes() instead")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ImageTypeError(f"{what}: expected (H, W), (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA")
    height, width = int(arr.shape[0]), int(arr.shape[1])
    if height == 0 or width == 0:
        raise ImageTypeError(f"{what} is empty")
    _check_pixels(width, height, what, lim)
    arr = _to_uint8(arr, what)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    channels = arr.shape[2]
    if channels == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif channels == 4:
        arr = arr[:, :, :3]
    return np.ascontiguousarray(arr)  # no copy when already contiguous BGR uint8


def _to_uint8(arr: np.ndarray, what: str) -> np.ndarray:
    kind = arr.dtype.kind
    if arr.dtype == np.uint8:
        return arr
    if kind in "iu":
        lo, hi = (int(arr.min()), int(arr.max()))
        if lo < 0 or hi > 255:
            raise ImageTypeError(
                f"{what} holds values in [{lo}, {hi}]; integer images must be in [0, 255] "
                "(scale 16-bit images with arr >> 8 first)"
            )
        return arr.astype(np.uint8)
    if kind == "f":
        if not np.isfinite(arr).all():
            raise ImageTypeError(f"{what} contains NaN or infinite values")
        lo_f, hi_f = float(arr.min()), float(arr.max())
        if lo_f < 0.0 or hi_f > 255.0:
            raise ImageTypeError(
                f"{what} holds values in [{lo_f:g}, {hi_f:g}]; float images must be in [0, 1] or [0, 255]"
            )
        # Values all within [0, 1] are taken as a [0, 1] image (a nearly black [0, 255] image is
        # indistinguishable; pass uint8 to be explicit).
        scaled = arr.astype(np.float32) * 255.0 if hi_f <= 1.0 else arr.astype(np.float32)
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    raise ImageTypeError(f"{what}: unsupported dtype; use uint8 (or float in [0, 1] / [0, 255])")
