"""The single image loader: every input kind, every failure mode, limits, URLs, fuzzing.

Decisions pinned here:
* a truncated file is an error (ImageDecodeError), never a partial image;
* format is decided by content (img47.jpg is WebP bytes and loads);
* a URL that cannot be fetched (HTTP error, refused connection, timeout) is ImageNotFoundError;
* a URL given while allow_urls is False, a text-mode file and an unusable array are ImageTypeError.
"""

from __future__ import annotations

import base64
import http.server
import io
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.extras import need
from tests.helpers.loopback import base_url, serve
from facepipe.errors import (
    ImageDecodeError,
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    ImageTypeError,
)
from facepipe.pipeline.image import ImageLimits, LoadedImage, is_batch, load_image, load_images, sniff_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _halves(w: int = 40, h: int = 20) -> Image.Image:
    """RGB image: left half red, right half blue."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = (255, 0, 0)
    arr[:, w // 2:] = (0, 0, 255)
    return Image.fromarray(arr)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _bomb_png(width: int, height: int) -> bytes:
    """A PNG of a few hundred bytes whose IHDR claims width x height RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def _assert_bgr(loaded: LoadedImage) -> np.ndarray:
    img = loaded.image
    assert isinstance(loaded, LoadedImage)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.flags.c_contiguous
    return img


@pytest.fixture(scope="module")
def img1_bytes(dataset: Path) -> bytes:
    return (dataset / "img1.jpg").read_bytes()


@pytest.fixture(scope="module")
def img1_ref(dataset: Path) -> np.ndarray:
    return load_image(dataset / "img1.jpg").image


# --------------------------------------------------------------------------------------------
# one test per input kind, on a real photo
# --------------------------------------------------------------------------------------------


def test_str_path(dataset: Path) -> None:
    path = str(dataset / "img1.jpg")
    loaded = load_image(path)
    img = _assert_bgr(loaded)
    assert img.shape == (1868, 1382, 3)
    assert loaded.name == path
    assert img.std() > 10  # a real photo, not a blank buffer


def test_pathlib_path(dataset: Path, img1_ref: np.ndarray) -> None:
    loaded = load_image(dataset / "img1.jpg")
    assert np.array_equal(loaded.image, img1_ref)
    assert loaded.name == str(dataset / "img1.jpg")


def test_same_pixels_as_opencv_imread(dataset: Path) -> None:
    # deepface reads files with cv2.imread; facepipe must give the same BGR pixels.
    cv2 = need("cv2")
    for name in ("img1.jpg", "img2.jpg", "couple.jpg", "img47.jpg"):
        ours = load_image(dataset / name).image
        theirs = cv2.imread(str(dataset / name))
        assert ours.shape == theirs.shape, name
        assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 0.5, name


def test_unicode_path(dataset: Path, tmp_path: Path, img1_ref: np.ndarray) -> None:
    target = tmp_path / "fotoğraf_测试_é" / "fotoğraf_测试_é.jpg"
    target.parent.mkdir()
    shutil.copy(dataset / "img1.jpg", target)
    loaded = load_image(str(target))
    assert np.array_equal(loaded.image, img1_ref)
    assert loaded.name == str(target)


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
def test_bytes_like(kind: str, img1_bytes: bytes, img1_ref: np.ndarray) -> None:
    source = {"bytes": img1_bytes, "bytearray": bytearray(img1_bytes),
              "memoryview": memoryview(img1_bytes)}[kind]
    loaded = load_image(source)
    assert np.array_equal(loaded.image, img1_ref)
    assert loaded.name == "bytes"


def test_binary_file_objects(dataset: Path, img1_bytes: bytes, img1_ref: np.ndarray) -> None:
    with open(dataset / "img1.jpg", "rb") as fh:
        fh.seek(1000)  # a partially read file is rewound
        assert np.array_equal(load_image(fh).image, img1_ref)
    bio = io.BytesIO(img1_bytes)
    bio.seek(0, io.SEEK_END)
    loaded = load_image(bio)
    assert np.array_equal(loaded.image, img1_ref)
    assert loaded.name == "file object"


def test_non_seekable_stream_read_in_pieces(img1_bytes: bytes, img1_ref: np.ndarray) -> None:
    class Drip:
        """Only .read(); hands out at most 1000 bytes per call (like a socket)."""

        def __init__(self, data: bytes) -> None:
            self.data, self.pos = data, 0

        def read(self, size: int = -1) -> bytes:
            n = 1000 if size < 0 else min(size, 1000)
            chunk = self.data[self.pos:self.pos + n]
            self.pos += len(chunk)
            return chunk

    assert np.array_equal(load_image(Drip(img1_bytes)).image, img1_ref)


def test_file_object_with_unusable_seek_and_sizeless_read(img1_bytes: bytes, img1_ref: np.ndarray) -> None:
    class Upload:
        """Claims to be seekable but its seek takes no offset; read() takes no size (as some
        framework upload wrappers do): it is read as it is, like deepface does."""

        def __init__(self, data: bytes) -> None:
            self.data = data

        def seekable(self) -> bool:
            return True

        def seek(self) -> None:  # wrong signature: seek(0) raises TypeError
            raise AssertionError("never called without an offset")

        def read(self) -> bytes:
            return self.data

    assert np.array_equal(load_image(Upload(img1_bytes)).image, img1_ref)


def test_non_image_stream_says_failed_to_decode_image() -> None:
    # deepface's message for a file object that is not an image (callers match on it).
    with pytest.raises(ImageDecodeError, match="^Failed to decode image"):
        load_image(io.BytesIO(b"this is a text file, not a photo"))


def test_data_uri_without_base64_marker_is_decoded(img1_bytes: bytes, img1_ref: np.ndarray) -> None:
    # deepface decodes the part after the comma as base64 whatever the header says.
    loaded = load_image("data:image/jpeg," + base64.b64encode(img1_bytes).decode())
    assert np.array_equal(loaded.image, img1_ref)
    with pytest.raises(ImageDecodeError, match="no ';base64'"):
        load_image("data:image/jpeg,%FF%D8%FF not base64")


def test_base64_string_and_mime_lines(img1_bytes: bytes, img1_ref: np.ndarray) -> None:
    text = base64.b64encode(img1_bytes).decode()
    loaded = load_image(text)
    assert np.array_equal(loaded.image, img1_ref)
    assert loaded.name == "base64 string"
    # MIME-style line breaks (base64.encodebytes) are whitespace and ignored.
    assert np.array_equal(load_image(base64.encodebytes(img1_bytes).decode()).image, img1_ref)


@pytest.mark.parametrize("prefix", ["data:image/jpeg;base64,", "DATA:IMAGE/PNG;BASE64,", "data:;base64,"])
def test_data_uri(prefix: str, img1_bytes: bytes, img1_ref: np.ndarray) -> None:
    # The declared media type does not matter: the content decides (here it says PNG, data is JPEG).
    loaded = load_image(prefix + base64.b64encode(img1_bytes).decode())
    assert np.array_equal(loaded.image, img1_ref)
    assert loaded.name == "data URI"


def test_numpy_bgr_used_as_is(img1_ref: np.ndarray) -> None:
    loaded = load_image(img1_ref)
    assert loaded.image is img1_ref or np.shares_memory(loaded.image, img1_ref)
    assert loaded.name == "numpy array"


def test_name_override_and_loaded_image_passthrough(img1_bytes: bytes) -> None:
    loaded = load_image(img1_bytes, name="upload.jpg")
    assert loaded.name == "upload.jpg"
    assert load_image(loaded) is loaded
    assert load_image(loaded, name="x").name == "x"


def test_pil_image_input() -> None:
    loaded = load_image(_halves().convert("RGBA"))
    img = _assert_bgr(loaded)
    assert tuple(img[0, 0]) == (0, 0, 255) and tuple(img[0, -1]) == (255, 0, 0)


def test_webp_named_jpg_is_decoded_by_content(dataset: Path) -> None:
    data = (dataset / "img47.jpg").read_bytes()
    assert sniff_format(data) == "WEBP"
    img = _assert_bgr(load_image(dataset / "img47.jpg"))
    assert img.shape == (1800, 1350, 3)


# --------------------------------------------------------------------------------------------
# formats and colour modes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "WEBP", "GIF"])
def test_lossless_formats_give_bgr(fmt: str) -> None:
    kw = {"lossless": True} if fmt == "WEBP" else {}
    img = _assert_bgr(load_image(_encode(_halves(), fmt, **kw)))
    assert img.shape == (20, 40, 3)
    # BGR order: red is (0, 0, 255), blue is (255, 0, 0).
    assert tuple(img[5, 5]) == (0, 0, 255)
    assert tuple(img[5, 35]) == (255, 0, 0)


def test_gif_first_frame_only() -> None:
    red = Image.new("RGB", (8, 8), (255, 0, 0))
    blue = Image.new("RGB", (8, 8), (0, 0, 255))
    data = _encode(red, "GIF", save_all=True, append_images=[blue], duration=100)
    img = load_image(data).image
    assert tuple(img[4, 4]) == (0, 0, 255)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "1", "CMYK"])
def test_colour_modes_convert(mode: str) -> None:
    src = _halves().convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    img = _assert_bgr(load_image(_encode(src, fmt)))
    assert img.shape == (20, 40, 3)
    expected = np.asarray(src.convert("RGB"))[:, :, ::-1]
    tol = 12 if fmt == "JPEG" else 0
    assert np.abs(img.astype(int) - expected.astype(int)).max() <= tol


def test_palette_with_transparency_and_rgba_alpha_dropped() -> None:
    pal = _halves().convert("P")
    pal.info["transparency"] = 0
    img = load_image(_encode(pal, "PNG", transparency=0)).image
    assert img.shape == (20, 40, 3)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200  # red, fully transparent: colour kept, alpha ignored (like cv2.imread)
    out = load_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG")).image
    assert tuple(out[0, 0]) == (0, 0, 200)


def test_16bit_gray_png_scaled_not_clipped() -> None:
    arr = np.array([[0, 256 * 100, 65535]], np.uint16)
    img = load_image(_encode(Image.fromarray(arr), "PNG")).image
    assert img[0, :, 0].tolist() == [0, 100, 255]


def test_exif_orientation_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees clockwise
    data = _encode(_halves(40, 20), "JPEG", exif=exif.tobytes(), quality=95)
    img = load_image(data).image
    assert img.shape == (40, 20, 3)  # rotated: height and width swapped
    # Rotating clockwise puts the stored left (red) half on top.
    assert img[5, 10, 2] > 200 and img[5, 10, 0] < 60
    assert img[35, 10, 0] > 200 and img[35, 10, 2] < 60
    # Without the tag the image is not rotated.
    assert load_image(_encode(_halves(40, 20), "JPEG")).image.shape == (20, 40, 3)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_broken_exif_does_not_refuse_the_photo() -> None:
    data = _encode(_halves(), "JPEG", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f garbage")
    assert load_image(data).image.shape == (20, 40, 3)


# --------------------------------------------------------------------------------------------
# corrupt / empty / wrong inputs
# --------------------------------------------------------------------------------------------


def test_truncated_jpeg_is_an_error(img1_bytes: bytes) -> None:
    with pytest.raises(ImageDecodeError, match="truncated"):
        load_image(img1_bytes[: len(img1_bytes) // 2])


def test_truncated_png_is_an_error() -> None:
    rng = np.random.default_rng(0)
    data = _encode(Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)), "PNG")
    with pytest.raises(ImageDecodeError):
        load_image(data[: len(data) * 2 // 3])


def test_corrupt_bytes_with_jpeg_magic(img1_bytes: bytes) -> None:
    rng = np.random.default_rng(1)
    with pytest.raises(ImageDecodeError, match="JPEG"):
        load_image(b"\xff\xd8\xff" + rng.bytes(5000))


@pytest.mark.parametrize("source", [b"", bytearray(), io.BytesIO(b"")])
def test_empty_input(source: object) -> None:
    with pytest.raises(ImageDecodeError, match="empty"):
        load_image(source)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageDecodeError, match="empty"):
        load_image(path)


def test_non_image_bytes(tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("just some text, not a picture\n")
    with pytest.raises(ImageDecodeError, match="text"):
        load_image(text)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("a.txt", "hello")
    with pytest.raises(ImageDecodeError, match="ZIP"):
        load_image(zbuf.getvalue())
    with pytest.raises(ImageDecodeError, match="HEIC"):
        load_image(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00" + bytes(64))
    with pytest.raises(ImageDecodeError, match="HTML"):
        load_image(b"<!DOCTYPE html><html><body>404</body></html>")


def test_missing_path_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "missing.jpg"
    with pytest.raises(ImageNotFoundError, match="missing.jpg"):
        load_image(str(missing))
    with pytest.raises(ImageNotFoundError, match="missing.jpg"):
        load_image(missing)
    with pytest.raises(ImageNotFoundError):
        load_image("hello")
    with pytest.raises(ImageNotFoundError):
        load_image("")
    with pytest.raises(ImageNotFoundError, match="directory"):
        load_image(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ImageTypeError, match="regular file"):
        load_image(fifo)


def test_text_mode_file_objects(dataset: Path) -> None:
    with open(dataset / "PAIRS.md", encoding="utf-8") as fh, pytest.raises(ImageTypeError, match="text mode"):
        load_image(fh)
    with pytest.raises(ImageTypeError):
        load_image(io.StringIO("abc"))

    class TextReader:
        def read(self, size: int = -1) -> str:
            return "abc"

    with pytest.raises(ImageTypeError, match="text"):
        load_image(TextReader())


def test_closed_file_object(dataset: Path) -> None:
    with open(dataset / "img1.jpg", "rb") as fh:
        pass
    with pytest.raises(ImageError):
        load_image(fh)


def test_malformed_base64(img1_bytes: bytes) -> None:
    good = base64.b64encode(img1_bytes[:3000]).decode()
    with pytest.raises(ImageDecodeError, match="not valid base64"):
        load_image(good[:100] + "*" + good[101:])  # a character outside the alphabet
    with pytest.raises(ImageDecodeError, match="not valid base64"):
        load_image(good[:-1])  # bad padding / length
    with pytest.raises(ImageDecodeError, match="base64 string of"):
        load_image(good)  # valid base64 of the start of a JPEG: truncated image


def test_long_missing_path_made_of_base64_characters() -> None:
    path = "/srv/photos/" + "abcdefgh/" * 8 + "x"
    with pytest.raises(ImageNotFoundError, match="neither an existing file nor valid base64"):
        load_image(path)


def test_base64_of_non_image() -> None:
    text = base64.b64encode(b"this is a plain text document, not an image. " * 10).decode()
    with pytest.raises(ImageDecodeError, match=f"base64 string of {len(text)} chars"):
        load_image(text)


def test_bad_data_uris(img1_bytes: bytes) -> None:
    with pytest.raises(ImageDecodeError, match="base64"):
        load_image("data:image/svg+xml,%3Csvg%3E")
    with pytest.raises(ImageDecodeError, match="','"):
        load_image("data:image/png;base64")
    with pytest.raises(ImageDecodeError, match="not valid base64"):
        load_image("data:image/jpeg;base64,/9j/4AAQ$$$$")


@pytest.mark.parametrize("source", [42, 3.5, None, {"a": 1}, object()])
def test_unsupported_types(source: object) -> None:
    with pytest.raises(ImageTypeError, match="unsupported image input"):
        load_image(source)


def test_list_given_to_load_image(dataset: Path) -> None:
    with pytest.raises(ImageTypeError, match="load_images"):
        load_image([dataset / "img1.jpg"])


# --------------------------------------------------------------------------------------------
# limits and decompression bombs
# --------------------------------------------------------------------------------------------


def test_byte_cap_for_every_kind(dataset: Path, img1_bytes: bytes) -> None:
    lim = ImageLimits(max_bytes=100_000)
    for source in (dataset / "img1.jpg", img1_bytes, io.BytesIO(img1_bytes),
                   base64.b64encode(img1_bytes).decode()):
        with pytest.raises(ImageTooLargeError, match="100000"):
            load_image(source, limits=lim)


def test_base64_size_checked_before_decoding(monkeypatch: pytest.MonkeyPatch, img1_bytes: bytes) -> None:
    def boom(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("b64decode must not run for an oversized string")

    text = base64.b64encode(img1_bytes).decode()
    monkeypatch.setattr(base64, "b64decode", boom)
    with pytest.raises(ImageTooLargeError):
        load_image(text, limits=ImageLimits(max_bytes=1000))
    with pytest.raises(ImageTooLargeError):
        load_image("data:image/jpeg;base64," + text, limits=ImageLimits(max_bytes=1000))


@pytest.mark.parametrize(("size", "message"), [
    ((30000, 30000), r"900000000 pixels.*60000000"),  # also over Pillow's own guard: refused in open()
    ((9000, 9000), r"9000x9000 = 81000000 pixels.*60000000"),  # under Pillow's guard: our header check
])
def test_decompression_bomb_header_refused_quickly(size: tuple[int, int], message: str) -> None:
    data = _bomb_png(*size)
    assert len(data) < 1000
    t0 = time.perf_counter()
    # The IDAT holds only 4 KB of pixels: had the decoder run (and allocated gigabytes) the error
    # would be "truncated", so ImageTooLargeError proves the header check came first.
    with pytest.raises(ImageTooLargeError, match=message):
        load_image(data)
    assert time.perf_counter() - t0 < 1.0


def test_pillow_bomb_guard_also_mapped() -> None:
    # With facepipe's limit above Pillow's own (2 x MAX_IMAGE_PIXELS), Pillow's guard still holds.
    with pytest.raises(ImageTooLargeError, match="decompression bomb"):
        load_image(_bomb_png(30000, 30000), limits=ImageLimits(max_pixels=10**9))


def test_real_bomb_within_byte_cap_refused_by_pixels() -> None:
    # A valid, highly compressible 3000x3000 PNG (~30 KB) against a 4-megapixel limit.
    data = _encode(Image.new("L", (3000, 3000)), "PNG", optimize=True)
    assert len(data) < 100_000
    with pytest.raises(ImageTooLargeError, match="3000x3000"):
        load_image(data, limits=ImageLimits(max_pixels=4_000_000))
    assert load_image(data).image.shape == (3000, 3000, 3)


def test_array_pixel_limit() -> None:
    with pytest.raises(ImageTooLargeError):
        load_image(np.zeros((100, 100, 3), np.uint8), limits=ImageLimits(max_pixels=5000))


def test_limits_validate() -> None:
    with pytest.raises(ValueError):
        ImageLimits(max_bytes=0)
    with pytest.raises(ValueError):
        ImageLimits(unknown=1)  # type: ignore[call-arg]


# --------------------------------------------------------------------------------------------
# numpy arrays
# --------------------------------------------------------------------------------------------


def test_gray_arrays_to_bgr() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for arr in (gray, gray[:, :, None]):
        img = _assert_bgr(load_image(arr))
        assert img.shape == (3, 4, 3)
        assert all(np.array_equal(img[:, :, c], gray) for c in range(3))


def test_bgra_drops_alpha() -> None:
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[..., 0], bgra[..., 3] = 7, 255
    img = _assert_bgr(load_image(bgra))
    assert img.shape == (2, 3, 3) and (img[..., 0] == 7).all()


def test_float_arrays() -> None:
    unit = np.full((2, 2, 3), 0.5, np.float32)
    assert (load_image(unit).image == 128).all()  # [0, 1] scaled by 255
    wide = np.full((2, 2, 3), 200.4, np.float64)
    assert (load_image(wide).image == 200).all()  # [0, 255] rounded
    assert (load_image(np.ones((2, 2), np.float16)).image == 255).all()


def test_integer_arrays_in_range_and_non_contiguous() -> None:
    ints = np.full((2, 2, 3), 17, np.int64)
    assert (load_image(ints).image == 17).all()
    big = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    view = big[:, ::2]
    img = _assert_bgr(load_image(view))
    assert np.array_equal(img, view)


@pytest.mark.parametrize("arr", [
    np.zeros((4, 4, 3), bool),
    np.zeros((4, 4, 3), np.complex64),
    np.zeros((4, 4, 3), object),
    np.full((4, 4, 3), 65535, np.uint16),
    np.full((4, 4, 3), -1, np.int32),
    np.full((4, 4, 3), np.nan, np.float32),
    np.full((4, 4, 3), 300.0, np.float32),
    np.full((4, 4, 3), -0.5, np.float32),
    np.zeros((4, 4, 2), np.uint8),
    np.zeros((4, 4, 5), np.uint8),
    np.zeros((0, 4, 3), np.uint8),
    np.zeros(10, np.float32),
    np.zeros(10, np.uint8),
    np.zeros((1, 2, 2, 2, 3), np.uint8),
    np.zeros((2, 4, 4, 3), np.uint8),
], ids=lambda a: f"{a.dtype}{a.shape}")
def test_bad_arrays(arr: np.ndarray) -> None:
    with pytest.raises(ImageTypeError) as info:
        load_image(arr)
    assert str(arr.dtype) in str(info.value)


def test_flat_uint8_array_hint() -> None:
    with pytest.raises(ImageTypeError, match="tobytes"):
        load_image(np.frombuffer(b"\xff\xd8\xff\x00", np.uint8))


# --------------------------------------------------------------------------------------------
# batches
# --------------------------------------------------------------------------------------------


def test_is_batch() -> None:
    img = np.zeros((4, 4, 3), np.uint8)
    assert is_batch(np.zeros((2, 4, 4, 3), np.uint8))
    assert is_batch([img, img]) and is_batch((img,))
    assert is_batch(["a.jpg", Path("b.jpg"), b"\xff\xd8", io.BytesIO()])
    assert is_batch([])
    assert not is_batch([0.1, 0.2, 0.3])  # an embedding
    assert not is_batch(np.zeros(128, np.float32))
    assert not is_batch([[0.1, 0.2], [0.3, 0.4]])  # embeddings
    assert not is_batch(img)
    assert not is_batch("img1.jpg")
    assert not is_batch([img, 0.5])


def test_load_images_4d_array() -> None:
    batch = np.stack([np.full((5, 6, 3), i, np.uint8) for i in range(3)])
    out = load_images(batch)
    assert len(out) == 3
    for i, item in enumerate(out):
        assert item.image.shape == (5, 6, 3) and (item.image == i).all()
        assert item.name == f"numpy array [{i}]"
    gray_batch = np.zeros((2, 5, 6, 1), np.float32)
    assert [x.image.shape for x in load_images(gray_batch)] == [(5, 6, 3)] * 2


def test_load_images_mixed_list(dataset: Path, img1_bytes: bytes, img1_ref: np.ndarray) -> None:
    out = load_images([dataset / "img1.jpg", img1_bytes, img1_ref], names=["a", "b", "c"])
    assert [x.name for x in out] == ["a", "b", "c"]
    assert all(np.array_equal(x.image, img1_ref) for x in out)
    assert load_images([]) == []


def test_load_images_error_names_item(dataset: Path) -> None:
    with pytest.raises(ImageDecodeError, match="batch item 1"):
        load_images([dataset / "img1.jpg", b"not an image"])
    with pytest.raises(ImageTypeError, match="load_image"):
        load_images(dataset / "img1.jpg")
    with pytest.raises(ImageTypeError, match="names"):
        load_images([dataset / "img1.jpg"], names=["a", "b"])


# --------------------------------------------------------------------------------------------
# URLs (a local server on 127.0.0.1; no internet)
# --------------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    image = b""

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, code: int, body: bytes, ctype: str = "image/jpeg", length: int | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path
        try:
            if path == "/img1.jpg":
                self._send(200, self.image)
            elif path == "/announces-huge":
                self._send(200, self.image[:100], length=10**9)
            elif path == "/no-length-big":
                self.send_response(200)
                self.end_headers()  # HTTP/1.0 style: body ends when the connection closes
                for _ in range(40):
                    self.wfile.write(b"\xff" * 65536)
            elif path == "/slow-headers":
                time.sleep(3)
                self._send(200, self.image)
            elif path == "/drip":
                self.send_response(200)
                self.end_headers()
                self.wfile.write(self.image[:100])
                for byte in self.image[100:130]:
                    self.wfile.flush()
                    time.sleep(0.1)
                    self.wfile.write(bytes([byte]))
            elif path == "/redirect-file":
                self.send_response(302)
                self.send_header("Location", "file:///etc/passwd")
                self.end_headers()
            elif path == "/redirect-ok":
                self.send_response(302)
                self.send_header("Location", "/img1.jpg")
                self.end_headers()
            elif path == "/page":
                self._send(200, b"<!doctype html><html><body>hi</body></html>", "text/html")
            else:
                self._send(404, b"not found", "text/plain")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (size cap / timeout tests)


@pytest.fixture(scope="module")
def http_base(img1_bytes: bytes):  # type: ignore[no-untyped-def]
    _Handler.image = img1_bytes
    with serve(_Handler) as server:
        yield base_url(server)


@pytest.fixture(autouse=False)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


def test_url_refused_by_default(http_base: str) -> None:
    with pytest.raises(ImageTypeError, match="allow_urls=True"):
        load_image(http_base + "/img1.jpg")
    with pytest.raises(ImageTypeError, match="allow_urls"):
        load_image("HTTPS://example.invalid/x.jpg")


@pytest.mark.usefixtures("no_proxy")
def test_url_allowed(http_base: str, img1_ref: np.ndarray) -> None:
    url = http_base + "/img1.jpg"
    loaded = load_image(url, allow_urls=True)
    assert np.array_equal(loaded.image, img1_ref)
    assert loaded.name == url
    assert np.array_equal(load_image(http_base + "/redirect-ok", allow_urls=True).image, img1_ref)


@pytest.mark.usefixtures("no_proxy")
def test_url_size_caps(http_base: str) -> None:
    lim = ImageLimits(url_max_bytes=1_000_000)
    with pytest.raises(ImageTooLargeError, match="announces"):
        load_image(http_base + "/announces-huge", allow_urls=True, limits=lim)
    with pytest.raises(ImageTooLargeError, match="more than 1000000"):
        load_image(http_base + "/no-length-big", allow_urls=True, limits=lim)
    with pytest.raises(ImageTooLargeError):  # img1.jpg is 2.2 MB
        load_image(http_base + "/img1.jpg", allow_urls=True, limits=lim)


@pytest.mark.usefixtures("no_proxy")
def test_url_timeouts(http_base: str) -> None:
    lim = ImageLimits(url_timeout=0.5)
    for path in ("/slow-headers", "/drip"):
        t0 = time.perf_counter()
        with pytest.raises(ImageNotFoundError, match="timed out|longer than"):
            load_image(http_base + path, allow_urls=True, limits=lim)
        assert time.perf_counter() - t0 < 2.0, path


@pytest.mark.usefixtures("no_proxy")
def test_url_errors(http_base: str) -> None:
    with pytest.raises(ImageNotFoundError, match="404"):
        load_image(http_base + "/missing.jpg", allow_urls=True)
    with pytest.raises(ImageTypeError, match="file:///etc/passwd"):
        load_image(http_base + "/redirect-file", allow_urls=True)
    with pytest.raises(ImageDecodeError, match="HTML"):
        load_image(http_base + "/page", allow_urls=True)
    with pytest.raises(ImageTypeError, match="url_allowed_hosts"):
        load_image(http_base + "/img1.jpg", allow_urls=True,
                   limits=ImageLimits(url_allowed_hosts=("images.example.org",)))
    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ImageNotFoundError, match="could not be fetched"):
        load_image(f"http://127.0.0.1:{port}/x.jpg", allow_urls=True)


# --------------------------------------------------------------------------------------------
# module hygiene
# --------------------------------------------------------------------------------------------


def test_module_imports_neither_cv2_nor_pillow() -> None:
    code = ("import sys, facepipe.pipeline.image\n"
            "print(sorted(m for m in ('cv2', 'PIL', 'PIL.Image') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------
# property tests: nothing but ImageError escapes, whatever the input
# --------------------------------------------------------------------------------------------


_FUZZ_LIMITS = ImageLimits(max_pixels=2_000_000)  # keeps mutated headers from allocating much
_MAGICS = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"GIF89a", b"BM",
           b"II*\x00", b"MM\x00*"]


def _seed_files() -> list[bytes]:
    rng = np.random.default_rng(3)
    img = Image.fromarray(rng.integers(0, 255, (12, 16, 3), np.uint8))
    return [_encode(img, "JPEG"), _encode(img, "PNG"), _encode(img, "WEBP"), _encode(img, "GIF"),
            _encode(img, "BMP"), _encode(img, "TIFF"), _encode(img.convert("L"), "TIFF", compression="tiff_lzw")]


_SEEDS = _seed_files()


def _check(source: object) -> None:
    try:
        loaded = load_image(source, limits=_FUZZ_LIMITS)
    except ImageError:
        return
    _assert_bgr(loaded)


_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.filterwarnings("ignore::UserWarning")
@_FUZZ
@given(st.binary(max_size=4096))
def test_fuzz_random_bytes(data: bytes) -> None:
    _check(data)


@pytest.mark.filterwarnings("ignore::UserWarning")
@_FUZZ
@given(st.sampled_from(_MAGICS), st.binary(max_size=2048))
def test_fuzz_magic_then_random(magic: bytes, tail: bytes) -> None:
    _check(magic + tail)


@pytest.mark.filterwarnings("ignore::UserWarning")
@_FUZZ
@given(st.sampled_from(range(len(_SEEDS))),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, 10**6))
def test_fuzz_mutated_real_files(index: int, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_SEEDS[index])
    for pos, value in edits:
        data[pos % len(data)] = value
    _check(bytes(data[: max(1, len(data) - cut % 64)]))


@pytest.mark.filterwarnings("ignore::UserWarning")
@_FUZZ
@given(st.text(max_size=300))
def test_fuzz_random_strings(text: str) -> None:
    _check(text)
    _check("data:image/png;base64," + text)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 24), st.integers(1, 24), st.integers(0, 2**32 - 1))
def test_base64_png_round_trip(h: int, w: int, seed: int) -> None:
    bgr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)
    png = _encode(Image.fromarray(bgr[:, :, ::-1].copy()), "PNG")
    for text in (base64.b64encode(png).decode(), "data:image/png;base64," + base64.b64encode(png).decode()):
        assert np.array_equal(load_image(text).image, bgr)
