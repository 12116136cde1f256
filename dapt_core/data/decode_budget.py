"""How much memory decoding photos may take at once, in this process, and what one photo will take.

A PNG of a few hundred kilobytes can state 119.9 megapixels in its header: decoded as RGBA and flattened
onto white it took a server from 0.9 to 3.7 GB, and six of them in one ZIP (decoded by the folder scan's
threads at once) to 5.45 GB. The pixel limit alone (images.MAX_PIXELS) does not bound that, since memory
depends on the colour mode as much as on the pixel count. So the cost of decoding a photo is estimated
from its header before any pixel is decoded, and every decode reserves that much of one process-wide
budget, waiting while others hold it:

- a photo that fits is decoded as it is;
- a JPEG that does not is decoded reduced (libjpeg decodes at 1/2, 1/4 or 1/8 of the size directly,
  `Image.draft`), at the largest size that fits; CLIP looks at 224 pixels;
- anything else that does not fit is refused, saying how much it would need (other formats cannot be
  decoded reduced: the whole picture is decoded before it can be shrunk).

The budget is DAPT_DECODE_BUDGET_MB (default 1024): one 120-megapixel RGB photo (about 480 MB decoded)
fits, so do several ordinary camera photos decoded side by side; an RGBA or 16-bit one of that size
does not.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

BUDGET_ENV = "DAPT_DECODE_BUDGET_MB"
DEFAULT_BUDGET_MB = 1024
MB = 1024 * 1024

# Bytes per pixel PIL keeps for a decoded image of each mode (RGB is stored as 4 bytes, RGBX).
_DECODED_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 4, "PA": 4, "La": 4, "RGB": 4, "RGBA": 4, "RGBa": 4, "RGBX": 4,
                  "CMYK": 4, "YCbCr": 4, "LAB": 4, "HSV": 4, "I": 4, "F": 4,
                  "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# Bytes per pixel the conversion to RGB adds on top (images._to_rgb): the RGB result; with transparency the
# alpha mask and, for a palette, an RGBA copy; for 16-bit and float images the float32 working copy,
# its masks and the 8-bit result.
_RGB_OUT = 4
_TRANSPARENT_EXTRA = 4 + 1 + 4
_WIDE_EXTRA = 4 + 1 + 1 + 1 + 1 + 4
_WIDE = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})


def budget_bytes() -> int:
    try:
        value = int(os.environ.get(BUDGET_ENV, "") or DEFAULT_BUDGET_MB)
    except ValueError:
        value = DEFAULT_BUDGET_MB
    return max(1, value) * MB


def decode_cost(mode: str, width: int, height: int, transparent: bool = False) -> int:
    """Bytes a photo of this mode and size takes at its peak while it is decoded and turned into RGB."""
    pixels = int(width) * int(height)
    decoded = _DECODED_BYTES.get(mode, 4)
    if mode in _WIDE:
        extra = _WIDE_EXTRA
    elif transparent or mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        extra = _TRANSPARENT_EXTRA
    elif mode == "RGB":
        extra = 0  # returned as it is
    else:
        extra = _RGB_OUT
    return pixels * (decoded + extra)


class DecodeBudget:
    """A pool of bytes that decodes reserve while they run; a reservation waits until it fits."""

    def __init__(self):
        self._in_use = 0
        self._changed = threading.Condition()

    @contextmanager
    def reserve(self, cost: int, total: int):
        cost = min(int(cost), total)  # the caller has refused anything larger than the whole budget
        with self._changed:
            self._changed.wait_for(lambda: self._in_use == 0 or self._in_use + cost <= total)
            self._in_use += cost
        try:
            yield
        finally:
            with self._changed:
                self._in_use -= cost
                self._changed.notify_all()


BUDGET = DecodeBudget()
