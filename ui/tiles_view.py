"""The Tune page's tile setting: the choices and a preview of the grid on one of the project's photos."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from PIL import ImageDraw

from dapt_core.data.images import load_image
from dapt_core.engine.tiling import Tiling
from dapt_core.errors import DaptError
from ui.i18n import error_text, t

TILE_CHOICES = ("off", "auto", "2x2", "3x3", "4x4", "256", "512")
PREVIEW_WIDTH = 360


def tile_preview(split, tiles: str, input_size: int) -> None:
    """The largest training photo with its tiles drawn on it, and what they mean in words."""
    photos = [item.path for item in split.train]
    if not photos:
        return
    try:
        path = max(photos, key=lambda p: _area(p))
        image = load_image(path)
        boxes = Tiling.parse(tiles).boxes(image.width, image.height, input_size)
    except (DaptError, OSError) as error:
        st.error(error_text(error) if isinstance(error, DaptError) else str(error), icon=":material/error:")
        return
    name = Path(path).name
    if not boxes:
        st.caption(t("tune.tiles_none", name=name, width=image.width, height=image.height))
        return
    shown = image.convert("RGB").copy()
    draw = ImageDraw.Draw(shown)
    width = max(2, round(max(image.size) / 300))
    for index, box in enumerate(boxes):
        colour = (255, 200, 0) if index % 2 == 0 else (0, 200, 255)
        draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), outline=colour, width=width)
    st.image(shown, width=PREVIEW_WIDTH)
    st.caption(t("tune.tiles_preview", tiles=len(boxes), side=boxes[0][2] - boxes[0][0], name=name,
                 width=image.width, height=image.height, size=input_size))


def _area(path) -> int:
    from PIL import Image

    try:
        with Image.open(path) as image:  # reads the header only
            return image.width * image.height
    except OSError:
        return 0
