"""Image intake: what a user's files turn into, and the reasons given for unusable files."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image, ImageFile

from dapt_core.data import images
from dapt_core.data.images import IMAGE_SUFFIXES, load_image, sha256_of
from dapt_core.errors import ImageRejected

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


def two_halves(mode: str = "RGB", left=RED, right=BLUE, size=(40, 20)) -> Image.Image:
    """An image whose left half is `left` and right half is `right`."""
    image = Image.new(mode, size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return image


def encoded(image: Image.Image, file_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, file_format, **options)
    return buffer.getvalue()


def close_to(actual, expected, tolerance=40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims the given size; its pixel data is far too short."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def bmp_claiming(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 16, 0, 0, 54) + info + b"\x00" * 16


def rejection(source, **kwargs) -> str:
    with pytest.raises(ImageRejected) as caught:
        load_image(source, **kwargs)
    return str(caught.value)


@pytest.fixture
def decoding_forbidden(monkeypatch):
    """Fail the test if any pixel data is decoded: proves a rejection came from the header."""

    def refuse(self, *args, **kwargs):
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


# ----------------------------------------------------------------------------- accepted files


@pytest.mark.parametrize(
    "file_format, suffix, options",
    [
        ("JPEG", ".jpg", {"quality": 95}),
        ("PNG", ".png", {}),
        ("WEBP", ".webp", {"quality": 95}),
        ("GIF", ".gif", {}),
        ("BMP", ".bmp", {}),
        ("TIFF", ".tiff", {}),
    ],
)
def test_each_accepted_format_loads_as_rgb_with_its_colours(tmp_path, file_format, suffix, options):
    path = tmp_path / f"part{suffix}"
    path.write_bytes(encoded(two_halves(), file_format, **options))

    for source in (path, str(path), path.read_bytes()):
        image = load_image(source)
        assert image.mode == "RGB"
        assert image.size == (40, 20)
        assert close_to(image.getpixel((5, 10)), RED)
        assert close_to(image.getpixel((35, 10)), BLUE)


def test_content_decides_the_format_not_the_file_name(tmp_path):
    path = tmp_path / "really_a_png.jpg"
    path.write_bytes(encoded(two_halves(), "PNG"))
    assert load_image(path).getpixel((5, 10)) == RED


def test_exif_orientation_is_applied(tmp_path):
    # Stored 40x20 with red on the left; orientation 6 means "turn 90 degrees clockwise to view".
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    path.write_bytes(encoded(two_halves(), "JPEG", exif=exif, quality=95))

    image = load_image(path)

    assert image.size == (20, 40)
    assert close_to(image.getpixel((10, 5)), RED)  # the left half is now on top
    assert close_to(image.getpixel((10, 35)), BLUE)


def test_gif_animation_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)]
    path = tmp_path / "blink.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)

    image = load_image(path)

    assert image.getpixel((8, 8)) == RED


# Each mode is stored dark on the left and bright on the right; after conversion that
# contrast must still be there, whatever the mode's value range.
MODE_CASES = [
    ("1", "PNG", 0, 1),
    ("L", "PNG", 20, 230),
    ("P", "PNG", 1, 2),
    ("RGB", "PNG", (20, 20, 20), (230, 230, 230)),
    ("CMYK", "JPEG", (0, 0, 0, 230), (0, 0, 0, 0)),
    ("CMYK", "TIFF", (0, 0, 0, 230), (0, 0, 0, 0)),
    ("YCbCr", "TIFF", (20, 128, 128), (230, 128, 128)),
    ("LAB", "TIFF", (20, 128, 128), (240, 128, 128)),  # L stored as 0-255
    ("I;16", "PNG", 1000, 3000),  # a 12-bit camera in a 16-bit file
    ("I;16", "TIFF", 0, 65535),
    ("I;16B", "TIFF", 200, 60000),
    ("I", "TIFF", -50_000, 2_000_000),
    ("F", "TIFF", 0.1, 0.9),
]


@pytest.mark.parametrize("mode, file_format, dark, bright", MODE_CASES)
def test_every_mode_becomes_rgb_keeping_its_contrast(tmp_path, mode, file_format, dark, bright):
    image = two_halves(mode, dark, bright)
    if mode == "P":
        image.putpalette([0, 0, 0, 20, 20, 20, 230, 230, 230] + [0] * 759)
    path = tmp_path / f"mode.{file_format.lower()}"
    path.write_bytes(encoded(image, file_format))
    with Image.open(path) as stored:
        assert stored.mode == mode  # the fixture really holds this mode

    loaded = load_image(path)

    assert loaded.mode == "RGB"
    left, right = np.asarray(loaded)[10, 5], np.asarray(loaded)[10, 35]
    assert int(right.mean()) - int(left.mean()) > 150, (left, right)


def test_sixteen_bit_grey_is_stretched_not_clipped_to_white(tmp_path):
    ramp = np.linspace(1000, 4000, 64, dtype=np.uint16).reshape(1, 64).repeat(8, axis=0)
    path = tmp_path / "depth.png"
    Image.fromarray(ramp).save(path)
    with Image.open(path) as stored:
        assert stored.mode == "I;16"

    pixels = np.asarray(load_image(path))[0, :, 0]

    assert pixels[0] == 0 and pixels[-1] == 255
    assert np.all(np.diff(pixels.astype(int)) >= 0)  # still a smooth ramp
    assert 100 < pixels[32] < 160


def test_float_image_with_nan_loads_with_nan_as_black(tmp_path):
    values = np.array([[0.0, 0.5, 1.0, np.nan]], dtype=np.float32).repeat(4, axis=0)
    path = tmp_path / "float.tiff"
    Image.fromarray(values).save(path)

    pixels = np.asarray(load_image(path))[0, :, 0]

    assert list(pixels) == [0, 128, 255, 0]


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparent_pixels_come_out_white(tmp_path, mode):
    image = Image.new(mode, (10, 10), (0,) * len(mode))  # black, fully transparent
    image.putpixel((0, 0), (0, 255) if mode == "LA" else (0, 0, 0, 255))  # one opaque black pixel
    path = tmp_path / "cutout.png"
    image.save(path)

    loaded = load_image(path)

    assert loaded.getpixel((5, 5)) == WHITE
    assert loaded.getpixel((0, 0)) == (0, 0, 0)


def test_half_transparent_red_is_blended_with_white(tmp_path):
    path = tmp_path / "glass.png"
    Image.new("RGBA", (4, 4), (255, 0, 0, 128)).save(path)
    assert close_to(load_image(path).getpixel((1, 1)), (255, 127, 127), tolerance=2)


@pytest.mark.parametrize("file_format", ["PNG", "GIF"])
def test_palette_transparency_comes_out_white(tmp_path, file_format):
    image = Image.new("P", (10, 10), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.putpixel((0, 0), 1)
    path = tmp_path / f"icon.{file_format.lower()}"
    image.save(path, transparency=0)

    loaded = load_image(path)

    assert loaded.getpixel((5, 5)) == WHITE
    assert loaded.getpixel((0, 0)) == RED


def test_returned_image_is_independent_of_the_file(tmp_path):
    path = tmp_path / "part.png"
    two_halves().save(path)
    image = load_image(path)
    path.unlink()  # the file handle was closed and the pixels are already in memory
    assert image.getpixel((5, 5)) == RED


# ----------------------------------------------------------------------------- rejected files


def test_empty_file_is_rejected(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert rejection(path) == "empty file"
    assert rejection(b"") == "empty file"


def test_name_is_put_in_front_of_the_reason():
    assert rejection(b"", name="upload 7.png") == "upload 7.png: empty file"


def test_text_file_renamed_jpg_is_called_a_text_file(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("batch 42: three scratches on the left panel\n" * 5, encoding="utf-8")
    assert rejection(path) == "not an image (looks like a text file)"


def test_web_page_saved_as_jpg_is_recognised():
    page = b"<!DOCTYPE html><html><head><title>Image</title></head><body></body></html>"
    assert "web page" in rejection(page)


def test_random_bytes_are_not_an_image():
    noise = bytes(np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8))
    reason = rejection(noise)
    assert reason.startswith("not an image")
    assert "JPEG, PNG" in reason


@pytest.mark.parametrize("file_format", ["JPEG", "PNG"])
def test_truncated_file_is_rejected_with_its_format(tmp_path, file_format):
    noise = np.random.default_rng(1).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(noise), file_format)
    path = tmp_path / f"cut.{file_format.lower()}"
    path.write_bytes(data[: len(data) // 2])

    reason = rejection(path)

    assert reason.startswith(f"truncated or corrupt {file_format}: ")


def test_truncation_is_not_silently_accepted_by_pil_settings():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_png_with_damaged_header_is_called_corrupt():
    data = bytearray(encoded(two_halves(), "PNG"))
    data[20] ^= 0xFF  # inside IHDR, so its checksum no longer matches
    assert rejection(bytes(data)) == "corrupt PNG file: its header cannot be read"


@pytest.mark.parametrize("claiming", [png_claiming, bmp_claiming])
def test_huge_dimensions_are_rejected_from_the_header(decoding_forbidden, claiming):
    reason = rejection(claiming(100_000, 100_000))
    assert reason.startswith("too large: 10,000,000,000 pixels exceeds the limit")
    assert reason.endswith("downscale it")


@pytest.mark.parametrize("claiming", [png_claiming, bmp_claiming])
def test_huge_dimensions_are_rejected_even_if_pils_own_limit_is_off(
    monkeypatch, decoding_forbidden, claiming
):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # some libraries switch PIL's check off
    limit = f"{images.MAX_PIXELS:,}"
    reason = rejection(claiming(100_000, 100_000))
    assert reason == f"too large: 100000x100000 pixels exceeds the limit of {limit}; downscale it"


def test_size_limit_is_the_module_constant(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 500)
    data = encoded(two_halves(size=(30, 20)), "PNG")
    assert rejection(data) == "too large: 30x20 pixels exceeds the limit of 500; downscale it"
    monkeypatch.setattr(images, "MAX_PIXELS", 600)
    assert load_image(data).size == (30, 20)


@pytest.mark.parametrize(
    "header", [png_claiming(0, 10), png_claiming(10, 0), bmp_claiming(0, 5), bmp_claiming(5, 0)]
)
def test_zero_pixel_images_are_rejected(header):
    assert rejection(header) == "image has no pixels"


def test_zero_pixel_gif_is_rejected():
    data = bytearray(encoded(Image.new("L", (1, 1)), "GIF"))
    data[6:10] = b"\x00\x00\x00\x00"  # logical screen 0x0
    descriptor = data.index(b",")
    data[descriptor + 5 : descriptor + 9] = b"\x00\x00\x00\x00"  # first frame 0x0
    assert rejection(bytes(data)) == "image has no pixels"


def test_eps_is_refused_without_running_its_decoder(tmp_path, monkeypatch):
    path = tmp_path / "drawing.jpg"
    Image.new("L", (8, 8)).save(path, "EPS")

    def forbidden(*args, **kwargs):
        raise AssertionError("the EPS plugin was invoked")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", forbidden)
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", forbidden)

    assert rejection(path).startswith("unsupported format EPS; save it as JPEG, PNG")


def test_pdf_is_refused(tmp_path):
    path = tmp_path / "report.png"
    Image.new("RGB", (8, 8)).save(path, "PDF")
    assert rejection(path).startswith("unsupported format PDF")


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00" + b"\x00" * 32, "unsupported format HEIC"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00" + b"\x00" * 32, "unsupported format AVIF"),
        (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>',
            "unsupported format SVG",
        ),
    ],
)
def test_common_unsupported_formats_are_named(data, expected):
    assert rejection(data).startswith(expected)


def test_avif_is_refused_even_though_pil_could_decode_it():
    if "AVIF" not in Image.registered_extensions().values():
        pytest.skip("this Pillow has no AVIF plugin")
    data = encoded(Image.new("RGB", (8, 8), RED), "AVIF")
    assert rejection(data).startswith("unsupported format AVIF")


def test_missing_file_and_folder_are_rejected(tmp_path):
    assert rejection(tmp_path / "gone.jpg") == "file not found"
    assert rejection(tmp_path) == "is a folder, not an image file"


def test_other_source_types_are_a_programming_error():
    with pytest.raises(TypeError):
        load_image(io.BytesIO(b"abc"))


# ----------------------------------------------------------------------------- helpers


def test_image_suffixes_are_lowercase_with_dot_and_cover_the_accepted_formats():
    assert all(suffix.startswith(".") and suffix == suffix.lower() for suffix in IMAGE_SUFFIXES)
    assert {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"} <= IMAGE_SUFFIXES
    assert ".eps" not in IMAGE_SUFFIXES and ".pdf" not in IMAGE_SUFFIXES


def test_sha256_of_file_and_bytes_agree(tmp_path):
    data = bytes(range(256)) * 5000  # more than one read block
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_of(path) == expected
    assert sha256_of(str(path)) == expected
    assert sha256_of(data) == expected


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_the_quick_check_of_a_folder_scan_rejects_what_a_full_decode_rejects(tmp_path, cut):
    """A folder scan checks JPEGs at an eighth of their size: a cut file must still fail, with
    the reason load_image gives, and a whole one pass."""
    from dapt_core.data.images import check_image

    noise = np.random.default_rng(2).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(noise), "JPEG")
    whole, broken = tmp_path / "whole.jpg", tmp_path / "cut.jpg"
    whole.write_bytes(data)
    broken.write_bytes(data[: int(len(data) * cut)])
    assert check_image(whole) is None
    with pytest.raises(ImageRejected) as quick:
        check_image(broken)
    assert str(quick.value) == rejection(broken)
    assert str(quick.value).startswith("truncated or corrupt JPEG: ")


def test_the_size_read_from_the_header_is_the_upright_photo_load_image_gives(tmp_path):
    from dapt_core.data.images import image_size, largest_size

    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: shown rotated by 90 degrees
    turned = tmp_path / "turned.jpg"
    Image.new("RGB", (300, 200), (90, 90, 90)).save(turned, exif=exif)
    assert image_size(turned) == load_image(turned).size == (200, 300)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    assert image_size(broken) is None
    assert largest_size([broken, turned]) == (200, 300)
