"""Where an image file's picture ends, so that bytes glued after it are not stored.

Decoders stop at the end of the picture and ignore what follows, so "a PNG followed by 500 MB of zeros"
decodes like the PNG alone, yet storing the upload as it came grew a project by a gigabyte from a 1 MB
ZIP. The end is found by walking the format's own structure (PNG chunks up to IEND, JPEG segments and
entropy-coded data up to EOI, GIF blocks up to the trailer, the RIFF size of WebP, the file size a BMP
header states). TIFF, whose parts may lie anywhere in the file, is kept as it is: the per-file size
limit bounds it.
"""

from __future__ import annotations

import struct


def picture_end(data: bytes) -> int | None:
    """The offset just past the picture, or None where the format is not walked or the walk fails."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return _png_end(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg_end(data)
        if data.startswith((b"GIF87a", b"GIF89a")):
            return _gif_end(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            size = struct.unpack("<I", data[4:8])[0]
            return 8 + size + (size & 1)
        if data.startswith(b"BM"):
            size = struct.unpack("<I", data[2:6])[0]
            return size if size >= 26 else None
    except (struct.error, IndexError):
        return None
    return None


def without_trailing_data(data: bytes) -> bytes:
    """`data` cut where its picture ends (unchanged where nothing follows it or the end is not known)."""
    end = picture_end(data)
    return data[:end] if end is not None and 0 < end < len(data) else data


def _png_end(data: bytes) -> int | None:
    position = 8
    while position + 12 <= len(data):
        length = struct.unpack(">I", data[position:position + 4])[0]
        kind = data[position + 4:position + 8]
        position += 12 + length
        if kind == b"IEND":
            return position if position <= len(data) else None
    return None


def _jpeg_end(data: bytes) -> int | None:
    position, size = 2, len(data)
    while position + 1 < size:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == 0xD9:  # EOI
            return position + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            position += 2
            continue
        length = struct.unpack(">H", data[position + 2:position + 4])[0]
        position += 2 + length
        if marker == 0xDA:  # SOS: entropy-coded data runs to the next marker that is not stuffed or RSTn
            while True:
                position = data.find(b"\xff", position)
                if position < 0 or position + 1 >= size:
                    return None
                following = data[position + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                    position += 1
                    continue
                break
    return None


def _gif_end(data: bytes) -> int | None:
    flags = data[10]
    position = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)

    def skip_sub_blocks(at: int) -> int:
        while True:
            block = data[at]
            at += 1 + block
            if block == 0:
                return at

    while position < len(data):
        introducer = data[position]
        if introducer == 0x3B:  # trailer
            return position + 1
        if introducer == 0x21:  # extension: label, then sub-blocks
            position = skip_sub_blocks(position + 2)
        elif introducer == 0x2C:  # image descriptor, local colour table, LZW code size, sub-blocks
            local = data[position + 9]
            position += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0)
            position = skip_sub_blocks(position + 1)
        else:
            return None
    return None
