"""Where an image file's picture ends, so that bytes glued after it are not stored.

Decoders stop at the end of the picture and ignore what follows, so "a PNG followed by 500 MB of zeros"
decodes like the PNG alone, yet storing the upload as it came grew a project by a gigabyte from a 1 MB
ZIP. The end is found by walking the format's own structure (PNG chunks up to IEND, JPEG segments and
entropy-coded data up to EOI, GIF blocks up to the trailer, the RIFF size of WebP, the file size a BMP
header states). A TIFF's parts may lie anywhere in the file, so its end is the furthest byte any of them
reaches: every IFD of the page chain and of the SubIFD, Exif, GPS and Interoperability pointers, every value
stored outside its entry, and the strips, tiles and JPEG thumbnail they point to (classic TIFF and BigTIFF).
Bytes a maker note points to beyond its own value could be cut; the pixels never are, and the intake keeps the
upload as it came unless the cut file decodes.
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
        if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return _tiff_end(data)
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


# TIFF field types and their sizes in bytes (TIFF 6.0, and BigTIFF's 8-byte ones)
_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4,
                    16: 8, 17: 8, 18: 8}
_TIFF_SUB_IFDS = {330, 34665, 34853, 40965}  # SubIFDs, Exif IFD, GPS IFD, Interoperability IFD
_TIFF_DATA = ((273, 279), (324, 325), (513, 514))  # strips, tiles, JPEG thumbnail: (offsets, byte counts)
_TIFF_POINTERS = _TIFF_SUB_IFDS | {tag for pair in _TIFF_DATA for tag in pair}  # the fields whose values are read
_TIFF_SLACK = 16  # bytes after the furthest part that are left alone
_TIFF_MAX_IFDS = 10_000  # a file that claims more is not walked (loops are caught anyway)


def _tiff_end(data: bytes) -> int | None:
    order = "<" if data[:2] == b"II" else ">"
    big = struct.unpack(order + "H", data[2:4])[0] == 43
    offset_format, count_format, entry_size, inline = ("Q", "Q", 20, 8) if big else ("I", "H", 12, 4)
    offset_size, count_size = struct.calcsize(offset_format), struct.calcsize(count_format)
    first = struct.unpack(order + offset_format, data[8:16] if big else data[4:8])[0]
    end = 16 if big else 8
    pending, seen = [first], set()
    while pending:
        ifd = pending.pop()
        if ifd == 0 or ifd in seen:
            continue
        if len(seen) >= _TIFF_MAX_IFDS or ifd + count_size > len(data):
            return None
        seen.add(ifd)
        entries = struct.unpack(order + count_format, data[ifd:ifd + count_size])[0]
        table_end = ifd + count_size + entries * entry_size
        end = max(end, table_end + offset_size)
        values = {}
        for k in range(entries):
            at = ifd + count_size + k * entry_size
            tag, kind = struct.unpack(order + "HH", data[at:at + 4])
            count = struct.unpack(order + offset_format, data[at + 4:at + 4 + offset_size])[0]
            size = _TIFF_TYPE_SIZES.get(kind, 1) * count
            field = at + 4 + offset_size
            if size > inline:
                where = struct.unpack(order + offset_format, data[field:field + offset_size])[0]
                end = max(end, where + size)
                raw = data[where:where + size]
            else:
                raw = data[field:field + size]
            if tag in _TIFF_POINTERS and kind in (3, 4, 13, 16, 18) and len(raw) == size:
                code = {2: "H", 4: "I", 8: "Q"}[_TIFF_TYPE_SIZES[kind]]
                values[tag] = [value for (value,) in struct.iter_unpack(order + code, raw)]
        for tag in _TIFF_SUB_IFDS & values.keys():
            pending.extend(values[tag])
        for offsets, counts in _TIFF_DATA:
            starts, lengths = values.get(offsets, ()), values.get(counts, ())
            end = max([end] + [start + length for start, length in zip(starts, lengths)])
        pending.append(struct.unpack(order + offset_format, data[table_end:table_end + offset_size])[0])
    if end > len(data):
        return None
    # Writers pad a few bytes after the last part (word alignment; Pillow's multi-page files end in an empty
    # next-page pointer): not worth storing a file that differs from the one uploaded.
    return len(data) if len(data) - end <= _TIFF_SLACK else end
