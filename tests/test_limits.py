"""Limits on what one photo, one upload, one project and one ZIP may cost, each refused with its message
(dapt_core/studio/limits.py), the memory budget of decoding (dapt_core/data/decode_budget.py), and only the
picture of an upload stored (dapt_core/data/trailing_data.py). Small synthetic files only: a header that
claims a huge picture, a ZIP of many entries, a ZIP of zeros."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from conftest import zip_of
from PIL import Image

from dapt_core.data.images import load_image, sha256_of
from dapt_core.data.trailing_data import picture_end, without_trailing_data
from dapt_core.errors import ImageRejected
from dapt_core.studio import limits
from dapt_core.studio.storage import WorkspaceError
from dapt_core.studio.workspace import Workspace


def noise(size=(64, 48), mode="RGB", seed=0, fmt="PNG", **save) -> bytes:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format=fmt, **save)
    return buffer.getvalue()


def png_claiming(width: int, height: int, colour_type: int, bit_depth: int = 8) -> bytes:
    """A PNG of a few hundred bytes whose header states `width` x `height` pixels (its data is cut short)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
            + chunk(b"IEND", b""))


@pytest.fixture
def project(tmp_path):
    return Workspace(tmp_path / "ws").create_project("Limits", ["good", "scratch"])


# ------------------------------------------------------------------ decoding within a memory budget


@pytest.mark.parametrize("colour_type,bit_depth,what", [(6, 8, "RGBA"), (0, 16, "16-bit grey")])
def test_a_small_png_claiming_120_megapixels_that_would_not_fit_the_budget_is_refused_before_decoding(
        colour_type, bit_depth, what):
    # 10950 x 10950 = 119.9 MP, under the pixel limit: as RGBA or 16-bit grey it needs > 1.5 GB to decode.
    data = png_claiming(10950, 10950, colour_type, bit_depth)
    assert len(data) < 1000
    with pytest.raises(ImageRejected) as refused:
        load_image(data)
    assert str(refused.value).startswith("too large to decode: 10950x10950 pixels need about "), what
    assert "MB of memory, more than the 1,024 MB allowed; downscale it or save it as JPEG" in str(refused.value)


def test_an_rgb_png_of_the_same_size_fits_the_budget_and_is_judged_on_its_pixels():
    with pytest.raises(ImageRejected) as refused:
        load_image(png_claiming(10950, 10950, 2))  # RGB: about 480 MB, within the budget
    assert "too large to decode" not in str(refused.value)  # it fails for its cut-short data instead


def test_the_budget_is_configurable_and_a_jpeg_over_it_is_decoded_reduced(monkeypatch):
    monkeypatch.setenv("DAPT_DECODE_BUDGET_MB", "1")
    jpeg = noise((1000, 800), fmt="JPEG", quality=90)  # 3.2 MB decoded at full size
    image = load_image(jpeg)
    assert image.size == (500, 400)  # libjpeg's own 1/2 scale: 0.8 MB
    assert load_image(noise((1600, 1200), fmt="JPEG")).size == (400, 300)  # 1/2 would not fit: 1/4
    with pytest.raises(ImageRejected, match="too large to decode: 1000x800 pixels need about"):
        load_image(noise((1000, 800)))  # a PNG cannot be decoded reduced
    monkeypatch.setenv("DAPT_DECODE_BUDGET_MB", "64")
    assert load_image(jpeg).size == (1000, 800)


# ------------------------------------------------------------------ per file, per upload, per project


def test_a_file_past_the_per_file_limit_is_skipped_with_its_size(project, monkeypatch):
    monkeypatch.setenv("DAPT_MAX_FILE_MB", "1")
    big = noise((700, 700))  # about 1.5 MB of noise
    report = project.add_images("good", [("big.png", big), ("small.png", noise())])
    assert [r.name for r in report.added] == ["small.png"]
    assert report.skipped[0].code == "file_too_big"
    assert report.skipped[0].reason == ("it holds 2 MB; at most 1 MB are taken per file. Downscale it or save it "
                                        "as JPEG")


def test_an_upload_past_the_per_upload_limit_is_refused_whole(monkeypatch):
    monkeypatch.setenv("DAPT_MAX_UPLOAD_MB", "10")
    limits.refuse_large_upload(10_000_000)
    with pytest.raises(WorkspaceError) as refused:
        limits.refuse_large_upload(10_000_001)
    assert refused.value.code == "upload_too_big"
    assert str(refused.value) == ("This upload holds 11 MB; at most 10 MB are taken at once. Upload fewer files "
                                  "at a time.")


def test_a_full_project_keeps_what_fits_then_refuses_the_next_upload(project, monkeypatch):
    monkeypatch.setenv("DAPT_MAX_PROJECT_MB", "1")
    files = [(f"{i}.png", noise((300, 300), seed=i)) for i in range(6)]  # about 270 kB each
    report = project.add_images("good", files)
    assert len(report.added) == 3
    assert {s.code for s in report.skipped} == {"project_full"}
    assert report.skipped[0].reason == ("the project already holds its 1 MB of photos; remove photos, or start "
                                        "another project")
    assert sum(p.stat().st_size for p in project.images_dir.iterdir()) <= 1_000_000
    monkeypatch.setenv("DAPT_MAX_PROJECT_MB", "2")
    project.add_images("good", [(f"{i}.png", noise((300, 300), seed=i)) for i in range(9, 13)])
    monkeypatch.setenv("DAPT_MAX_PROJECT_MB", "1")  # lowered below what the project holds
    with pytest.raises(WorkspaceError) as full:
        project.add_images("good", [("last.png", noise(seed=20))])
    assert full.value.code == "project_full"
    assert "a project holds at most 1 MB" in str(full.value)


# ------------------------------------------------------------------ ZIP archives


def test_a_zip_with_too_many_entries_is_refused_before_anything_is_written(project, monkeypatch):
    monkeypatch.setenv("DAPT_ZIP_MAX_ENTRIES", "50")
    archive = zip_of({f"good/{i}.png": b"" for i in range(60)})
    with pytest.raises(WorkspaceError) as refused:
        project.import_zip(archive, "many.zip")
    assert refused.value.code == "zip_too_many"
    assert str(refused.value) == ("The archive holds 60 entries; at most 50 are read. Split it into smaller "
                                  "archives.")
    assert project.images() == [] and not list((project.workspace.root / "tmp").iterdir())


def test_a_zip_bomb_of_zeros_is_refused_from_its_ratio(project):
    zeros = b"\x00" * (30 * 1000 * 1000)
    archive = zip_of({"good/a.png": noise(), **{f"good/pad{i}.bin": zeros for i in range(3)}})
    assert len(archive) < 1_000_000
    with pytest.raises(WorkspaceError) as refused:
        project.import_zip(archive, "bomb.zip")
    assert refused.value.code == "zip_expands_too_much"
    assert "bomb.zip expands to more than 64 MB, 50 times its own size" in str(refused.value)
    assert project.images() == []


def test_a_zip_entry_past_the_per_file_limit_is_skipped_and_the_rest_kept(project, monkeypatch):
    monkeypatch.setenv("DAPT_MAX_FILE_MB", "5")
    archive = zip_of({"good/a.png": noise(), "good/b.png": noise(seed=1) + b"\x00" * (6 * 1000 * 1000),
                      "scratch/c.png": noise(seed=2)})
    report = project.import_zip(archive, "mixed.zip")
    assert sorted(r.name for r in report.added) == ["a.png", "c.png"]
    assert [(s.name, s.code) for s in report.skipped] == [("good/b.png", "zip_too_big")]


# ------------------------------------------------------------------ only the picture is stored


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"])
def test_bytes_after_the_picture_are_not_stored_and_the_copy_counts_as_a_duplicate(project, fmt):
    clean = noise(fmt=fmt)
    padded = clean + b"\x00" * 200_000 + b"trailing"
    assert picture_end(clean) == len(clean)
    report = project.add_images("good", [("padded", padded), ("clean", clean)])
    [record] = report.added
    stored = project.image_path(record.sha256).read_bytes()
    assert stored == clean and record.sha256 == sha256_of(clean)
    assert [s.code for s in report.skipped] == ["duplicate"]


def _multi_page_tiff() -> bytes:
    pages = [Image.fromarray(np.full((32, 40, 3), shade, np.uint8)) for shade in (30, 120, 210)]
    buffer = io.BytesIO()
    pages[0].save(buffer, format="TIFF", save_all=True, append_images=pages[1:])
    return buffer.getvalue()


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "ACME line camera", "Line 3, station 2"
    return exif


@pytest.mark.parametrize("tiff", [
    lambda: noise(fmt="TIFF", compression="tiff_lzw"),
    lambda: noise(fmt="TIFF", compression="jpeg"),
    lambda: noise(fmt="TIFF", compression="tiff_adobe_deflate", exif=_exif()),
    lambda: noise(size=(300, 200), fmt="TIFF", big_tiff=True),  # BigTIFF: 8-byte offsets
    _multi_page_tiff,
], ids=["lzw", "jpeg", "deflate+exif", "bigtiff", "three pages"])
def test_a_tiff_keeps_every_part_wherever_it_lies_and_loses_what_follows(tiff):
    clean = tiff()
    assert without_trailing_data(clean) == clean  # nothing follows: nothing cut
    padded = clean + b"\x00" * 50_000 + b"appended"
    trimmed = without_trailing_data(padded)
    assert len(trimmed) <= len(clean)
    with Image.open(io.BytesIO(clean)) as before, Image.open(io.BytesIO(trimmed)) as after:
        assert getattr(after, "n_frames", 1) == getattr(before, "n_frames", 1)
        for page in range(getattr(before, "n_frames", 1)):
            before.seek(page)
            after.seek(page)
            assert np.array_equal(np.asarray(after.convert("RGB")), np.asarray(before.convert("RGB")))
        assert after.getexif().get(0x0110) == before.getexif().get(0x0110)


def test_a_tiff_whose_parts_point_past_its_end_is_kept_as_it_came():
    clean = noise(fmt="TIFF")
    strip_offsets = clean.find(struct.pack("<HH", 273, 4))  # the StripOffsets entry (LONG)
    assert strip_offsets > 0
    broken = bytearray(clean)
    broken[strip_offsets + 8:strip_offsets + 12] = struct.pack("<I", len(clean) + 10_000)
    broken = bytes(broken) + b"junk"
    assert picture_end(broken) is None and without_trailing_data(broken) == broken


def test_a_jpeg_end_marker_inside_its_metadata_does_not_cut_the_picture():
    exif = b"Exif\x00\x00" + b"\xff\xd9" * 50  # end-of-image bytes inside an APP1 segment
    jpeg = noise(fmt="JPEG", exif=exif)
    assert without_trailing_data(jpeg + b"junk") == jpeg
    assert load_image(without_trailing_data(jpeg)).size == (64, 48)
