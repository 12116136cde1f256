"""Image intake shared by the command line and the app: decode one photo safely, or say why not.

Every image a user hands us, as a file in a folder or as the bytes of a browser upload, goes
through `load_image`. It either returns a fully decoded RGB picture or raises `ImageRejected`
with a short reason the user can act on, so a broken file never surfaces as a traceback in
the middle of training.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageRejected
from . import decode_budget

# Anything that names a file, or the raw bytes of an upload.
ImageSource = str | os.PathLike | bytes | bytearray | memoryview

# Decoders PIL may use, as PIL names them. Passing these to Image.open means no other plugin
# (EPS through Ghostscript, PDF, exotic formats with little-tested parsers) ever sees a file.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")

# File name endings treated as images when scanning folders (compare with suffix.lower()).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
)

# Largest image accepted, in pixels, checked from the header before any pixel is decoded.
# 120 megapixels admits full-resolution photos from 108-megapixel phone sensors and every
# common industrial camera, yet keeps one decoded RGB image near 360 MB, which a laptop
# survives. CLIP looks at 224x224 pixels, so larger files only cost memory and time.
# (PIL refuses anything past twice its own MAX_IMAGE_PIXELS when opening; that case is
# reported as "too large" too.)
MAX_PIXELS = 120_000_000
# Threads that decode photos at once (folder checks, tuning's up-front decode): Pillow releases the
# GIL while it reads and decodes, so a few threads use a few cores; more than 4 adds little.
DECODE_THREADS = min(4, os.cpu_count() or 1)

_ACCEPTED_NAMES = "JPEG, PNG, WebP, GIF, BMP or TIFF"

# What PIL raises on broken or truncated pixel data; anything else escaping is a bug.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)

# How many leading bytes are read to explain a file PIL could not identify.
_SNIFF_BYTES = 1024

# Modes whose values are not 0-255 bytes; they are stretched to full contrast (see _stretch_to_rgb).
_WIDE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})

# Leading bytes of the accepted formats. Used only when PIL refused a file, to tell a damaged
# PNG from something that is not a PNG at all.
_ACCEPTED_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)

# Leading bytes of files people commonly mistake for usable photos.
_OTHER_SIGNATURES = (
    (b"%PDF", "PDF"),
    (b"%!PS", "EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"8BPS", "PSD (Photoshop)"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xffO\xffQ", "JPEG 2000"),
    (b"\xff\n", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"PK\x03\x04", "ZIP archive"),
)

# ISO media "brands" (bytes 8-12 after "ftyp") of formats phones produce.
_FTYP_BRANDS = {
    b"heic": "HEIC",
    b"heix": "HEIC",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
    b"avif": "AVIF",
    b"avis": "AVIF",
}


def load_image(source: ImageSource, name: str | None = None) -> Image.Image:
    """Decode one image completely and return it as RGB, or raise ImageRejected saying why.

    Args:
        source: a path (str or os.PathLike) or the raw bytes of an uploaded file.
        name: shown before the reason in the error message ("scratch_01.png: empty file");
            without it the message is the bare reason, which is what folder scans record.

    The first frame of animations and multi-page TIFFs is used, EXIF orientation is applied,
    transparency is flattened onto white and high-bit-depth images are stretched to 0-255.
    """
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            return _decode(io.BytesIO(bytes(source)))
        if isinstance(source, (str, os.PathLike)):
            return _decode_file(Path(source))
        raise TypeError(f"load_image takes a path or bytes, not {type(source).__name__}")
    except ImageRejected as rejected:
        if name is None:
            raise
        raise ImageRejected(f"{name}: {rejected}") from None


# EXIF orientations that turn a photo by 90 degrees: `load_image` returns it with width and height swapped.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """A photo's (width, height) as `load_image` returns it (upright), read from its header alone;
    None for a file that cannot be read. For counting tiles and sizes without decoding pixels."""
    try:
        with Image.open(path, formats=ACCEPTED_FORMATS) as image:
            width, height = image.size
            try:
                turned = image.getexif().get(0x0112) in _QUARTER_TURNS  # 0x0112: Orientation
            except (*_DECODE_ERRORS, KeyError, TypeError):
                turned = False  # damaged EXIF: load_image ignores it too
    except (*_DECODE_ERRORS, UnidentifiedImageError):
        return None
    return (height, width) if turned else (width, height)


def largest_size(paths) -> tuple[int, int] | None:
    """The (width, height) of the largest (by area) readable photo among `paths`; None if none is."""
    sizes = [size for size in map(image_size, paths) if size is not None]
    return max(sizes, key=lambda size: size[0] * size[1]) if sizes else None


def check_image(source: ImageSource) -> None:
    """Raise ImageRejected, saying why, where load_image would; return None where it would succeed.

    What a folder scan needs before it draws few-shot sets: a JPEG is decoded at an eighth of its
    size (libjpeg still reads every coded block, so truncated or corrupt data fails as in a full
    decode, while skipping most of the work: a camera's 12-megapixel photo checks several times
    faster); other formats are decoded whole.
    """
    if isinstance(source, (str, os.PathLike)):
        _decode_file(Path(source), reduced=True)
    else:
        load_image(source)


def sha256_of(source: ImageSource) -> str:
    """Hex SHA-256 of a file's contents (read in blocks, never whole) or of bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return hashlib.sha256(source).hexdigest()
    digest = hashlib.sha256()
    with open(source, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _decode_file(path: Path, reduced: bool = False) -> Image.Image:
    if path.is_dir():
        raise ImageRejected("is a folder, not an image file")
    try:
        with open(path, "rb") as stream:
            return _decode(stream, reduced)
    except FileNotFoundError:
        raise ImageRejected("file not found") from None
    except OSError as error:  # permissions, a disk or network share failing mid-read
        raise ImageRejected(f"cannot read file: {error.strerror or error}") from None


def _decode(stream: BinaryIO, reduced: bool = False) -> Image.Image:
    head = stream.read(_SNIFF_BYTES)
    if not head:
        raise ImageRejected("empty file")
    stream.seek(0)
    try:
        image = Image.open(stream, formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as error:
        raise ImageRejected(_too_large_from_pil(str(error))) from None
    except UnidentifiedImageError:
        raise ImageRejected(_why_unidentified(head)) from None
    except _DECODE_ERRORS as error:
        raise ImageRejected(f"corrupt image: {error}") from None

    # Not `with image:`: closing it would free the pixels it returns. The stream is the caller's.
    _check_dimensions(image.width, image.height)
    file_format = image.format or "image"
    if reduced and file_format == "JPEG":  # see check_image
        image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
    total = decode_budget.budget_bytes()
    cost = _cost_of(image)
    if cost > total and file_format == "JPEG":  # decoded reduced, at the largest size that fits (decode_budget.py)
        # The scale is chosen first: a JPEG takes one draft request only (later ones change nothing).
        sizes = [(-(-image.width // scale), -(-image.height // scale)) for scale in (2, 4, 8)]
        fitting = [size for size in sizes
                   if decode_budget.decode_cost(image.mode, *size, "transparency" in image.info) <= total]
        image.draft("RGB", fitting[0] if fitting else sizes[-1])
        cost = _cost_of(image)
    if cost > total:
        raise ImageRejected(f"too large to decode: {image.width}x{image.height} pixels need about "
                            f"{-(-cost // decode_budget.MB):,} MB of memory, more than the "
                            f"{total // decode_budget.MB:,} MB allowed; downscale it or save it as JPEG")
    with decode_budget.BUDGET.reserve(cost, total):
        try:
            image.load()  # decodes every pixel: truncated data fails here, not in training
        except _DECODE_ERRORS as error:
            raise ImageRejected(f"truncated or corrupt {file_format}: {error}") from None
        return _to_rgb(_apply_exif_orientation(image))


def _cost_of(image: Image.Image) -> int:
    transparent = image.mode in ("P", "L", "RGB") and "transparency" in image.info
    return decode_budget.decode_cost(image.mode, image.width, image.height, transparent)


def _check_dimensions(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageRejected("image has no pixels")
    if width * height > MAX_PIXELS:
        raise ImageRejected(
            f"too large: {width}x{height} pixels exceeds the limit of {MAX_PIXELS:,}; downscale it"
        )


def _too_large_from_pil(pil_message: str) -> str:
    """PIL refused the size before we could see it; keep its pixel count if it gave one."""
    counted = re.search(r"\((\d+) pixels\)", pil_message)
    size = f"{int(counted.group(1)):,} pixels" if counted else "the image"
    return f"too large: {size} exceeds the limit of {MAX_PIXELS:,}; downscale it"


def _apply_exif_orientation(image: Image.Image) -> Image.Image:
    """Rotate as the camera recorded, in place (an upright photo is not copied). Damaged EXIF is
    ignored: the pixels are still good."""
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except (*_DECODE_ERRORS, KeyError, TypeError):
        pass
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _WIDE_MODES:
        return _stretch_to_rgb(image)
    try:
        if image.has_transparency_data:
            # White, not black: a part photographed on black would look like another object,
            # and white is how the user saw the transparent areas in most viewers. Pasted through
            # the alpha mask onto a white RGB picture: one RGB copy and one mask, not three RGBA
            # copies (decode_budget.py counts on it).
            rgba = image if image.mode == "RGBA" else image.convert("RGBA")
            flattened = Image.new("RGB", rgba.size, (255, 255, 255))
            flattened.paste(rgba, mask=rgba.getchannel("A"))
            return flattened
        return image if image.mode == "RGB" else image.convert("RGB")
    except ValueError:
        raise ImageRejected(f"unsupported colour mode {image.mode}") from None


def _stretch_to_rgb(image: Image.Image) -> Image.Image:
    """Map 16-bit, 32-bit and float images to 0-255 by their own darkest and brightest values.

    PIL's plain conversion clips everything above 255 to white, and dividing by the type's
    full range leaves the common 12-bit industrial camera images almost black. NaN and
    infinite values, which float TIFFs can hold, become black.
    """
    values = np.array(image, dtype=np.float32)
    finite = np.isfinite(values)
    if not finite.any():
        return Image.new("RGB", image.size)
    values[~finite] = np.nan
    del finite
    darkest, brightest = float(np.nanmin(values)), float(np.nanmax(values))
    # In place: a 120-megapixel picture's float copy is 480 MB, and every temporary another such copy.
    if brightest > darkest:
        values -= darkest
        values *= 255.0 / (brightest - darkest)
    np.rint(values, out=values)
    np.clip(values, 0, 255, out=values)
    np.nan_to_num(values, copy=False, nan=0.0)
    return Image.fromarray(values.astype(np.uint8)).convert("RGB")


def _why_unidentified(head: bytes) -> str:
    """Explain a file PIL could not open with the accepted decoders, from its first bytes."""
    accepted = _accepted_format_of(head)
    if accepted is not None:
        if _declares_no_pixels(head, accepted):
            return "image has no pixels"
        return f"corrupt {accepted} file: its header cannot be read"
    other = _other_format_of(head)
    if other is not None:
        return f"unsupported format {other}; save it as {_ACCEPTED_NAMES}"
    if _looks_like_text(head):
        start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        if start.startswith((b"<!doctype html", b"<html")):
            return "not an image (looks like a web page saved under an image name)"
        if start.startswith(b"<svg") or (start.startswith(b"<?xml") and b"<svg" in start):
            return f"unsupported format SVG; save it as {_ACCEPTED_NAMES}"
        return "not an image (looks like a text file)"
    return f"not an image, or not a supported format ({_ACCEPTED_NAMES})"


def _accepted_format_of(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    for signature, file_format in _ACCEPTED_SIGNATURES:
        if head.startswith(signature):
            return file_format
    return None


def _other_format_of(head: bytes) -> str | None:
    if head[4:8] == b"ftyp" and head[8:12] in _FTYP_BRANDS:
        return _FTYP_BRANDS[head[8:12]]
    for signature, file_format in _OTHER_SIGNATURES:
        if head.startswith(signature):
            return file_format
    return None


def _declares_no_pixels(head: bytes, file_format: str) -> bool:
    """Whether the header states a zero width or height (PIL refuses such files unnamed)."""
    try:
        if file_format == "PNG":
            width, height = struct.unpack(">II", head[16:24])
        elif file_format == "GIF":
            width, height = struct.unpack("<HH", head[6:10])
        elif file_format == "BMP":
            width, height = struct.unpack("<ii", head[18:26])
        else:
            return False
    except struct.error:
        return False
    return width == 0 or height == 0


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    text = head.decode("utf-8", errors="replace")
    printable = sum(character.isprintable() or character in "\t\r\n" for character in text)
    return printable >= 0.95 * len(text)
