"""The Tune page's tile setting: the choices and a preview of the grid on one of the project's photos."""

from __future__ import annotations

import streamlit as st
from PIL import Image, ImageDraw

from dapt_core.data.images import image_size, load_image
from dapt_core.engine.tiling import Tiling
from dapt_core.errors import DaptError
from ui.i18n import error_text, t
from ui.plain_text import as_text

TILE_CHOICES = ("off", "auto", "2x2", "3x3", "4x4", "256", "512")
PREVIEW_WIDTH = 360


def tile_preview(split, tiles: str, input_size: int) -> None:
    """The largest training photo with its tiles drawn on it (the first one filled), and what they mean."""
    sizes = {item.path: image_size(item.path) for item in split.train}
    readable = [path for path, size in sizes.items() if size is not None]
    if not readable:
        return
    try:
        image = load_image(max(readable, key=lambda path: sizes[path][0] * sizes[path][1]))
        boxes = Tiling.parse(tiles).boxes(image.width, image.height, input_size)
    except (DaptError, OSError) as error:
        st.error(error_text(error, markdown=True) if isinstance(error, DaptError) else as_text(error),
                 icon=":material/error:")
        return
    if not boxes:
        st.caption(t("tune.tiles_none", width=image.width, height=image.height))
        return
    # Every tile's outline, and the first tile filled, so that one tile's size and the overlap show.
    shown = image.convert("RGBA")
    layer = Image.new("RGBA", shown.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    first = boxes[0]
    draw.rectangle((first[0], first[1], first[2] - 1, first[3] - 1), fill=(255, 200, 0, 90))
    width = max(2, round(max(image.size) / 300))
    for box in boxes:
        draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), outline=(255, 200, 0, 255), width=width)
    st.image(Image.alpha_composite(shown, layer).convert("RGB"), width=PREVIEW_WIDTH)
    st.caption(t("tune.tiles_preview", tiles=len(boxes), side=first[2] - first[0], width=image.width,
                 height=image.height, size=input_size))
