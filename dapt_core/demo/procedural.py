"""Procedural rendering of visual-inspection images with numpy and PIL.

Everything here is a pure function of a ``numpy.random.Generator``: the same generator state gives
the same pixels, on any machine and with any number of processes. Images are float32 arrays of shape
(size, size, 3) with values in [0, 1] until ``to_uint8``.

Three kinds of picture are rendered:

- surfaces of a material (metal, wood, fabric, plastic, concrete, glass, paper, leather, rubber,
  ceramic, carbon fibre) in a named colour, with texture and lighting;
- defects drawn onto such a surface (scratch, crack, dent, stain, hole, rust, burn, missing piece) at
  random positions and sizes, with a ``severity`` (contrast) and ``scale`` (size) knob so that a task
  can ask for subtle defects;
- generic shapes and simple machine parts on a plain background, for breadth.

``render_group`` renders one surface several times with different defects (pictures that differ
only in the defect); the pretraining corpus instead renders each picture of a group with
``render_inspection`` (same material and colour, own texture and lighting). ``apply_style``
changes how the camera sees the scene (the default colour photograph, or a monochrome industrial
camera with raking light, vignetting and sensor noise), which lets a demo task use a rendering the
corpus never shows.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

# --------------------------------------------------------------------------------------------------
# Vocabulary of the renderer
# --------------------------------------------------------------------------------------------------

MATERIALS: tuple[str, ...] = (
    "metal",
    "wood",
    "fabric",
    "plastic",
    "concrete",
    "glass",
    "paper",
    "leather",
    "rubber",
    "ceramic",
    "carbon fibre",
)

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.75, 0.12, 0.10),
    "blue": (0.12, 0.28, 0.72),
    "green": (0.15, 0.55, 0.20),
    "yellow": (0.88, 0.78, 0.15),
    "orange": (0.90, 0.45, 0.08),
    "white": (0.90, 0.90, 0.88),
    "black": (0.10, 0.10, 0.11),
    "grey": (0.50, 0.50, 0.52),
    "brown": (0.45, 0.28, 0.14),
    "purple": (0.45, 0.18, 0.60),
}

DEFECTS: tuple[str, ...] = (
    "none",
    "scratch",
    "crack",
    "dent",
    "stain",
    "hole",
    "rust",
    "burn",
    "missing piece",
)

SHAPES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "hexagon",
    "ring",
    "cross",
    "diamond",
    "gear",
    "nut",
    "bolt",
    "bottle",
)

STYLES: tuple[str, ...] = ("photo", "mono")

# Surfaces that are not a material a user would name: only the pretraining corpus draws them (kept out
# of MATERIALS so that every material list derived from it, and every corpus made before, is unchanged).
EXTRA_SURFACES: tuple[str, ...] = ("patterned",)


# --------------------------------------------------------------------------------------------------
# Small numpy helpers
# --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1), as (y, x) arrays of shape (size, size)."""
    centres = (np.arange(size, dtype=np.float32) + 0.5) / size
    y, x = np.meshgrid(centres, centres, indexing="ij")
    y.flags.writeable = False
    x.flags.writeable = False
    return y, x


def _value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise with about ``cells`` features across the image, zero mean, unit-ish amplitude."""
    cells = max(1, int(cells))
    lattice = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    return np.asarray(Image.fromarray(lattice, mode="F").resize((size, size), Image.BICUBIC), dtype=np.float32)


def _fractal_noise(rng: np.random.Generator, size: int, cells: int, octaves: int, gain: float = 0.5) -> np.ndarray:
    out = np.zeros((size, size), np.float32)
    amp, total = 1.0, 0.0
    for octave in range(octaves):
        octave_cells = cells * (2**octave)
        if octave_cells >= size:
            layer = rng.standard_normal((size, size)).astype(np.float32)
        else:
            layer = _value_noise(rng, size, octave_cells)
        out += amp * layer
        total += amp * amp
        amp *= gain
    return out / np.sqrt(total)


def _noise_1d(rng: np.random.Generator, coord: np.ndarray, freq: float) -> np.ndarray:
    """Noise along one coordinate (for streaks and grain): ``coord`` in about [-0.5, 1.5]."""
    knots = int(freq * 2) + 4
    table = rng.standard_normal(knots).astype(np.float32)
    pos = (coord + 0.5) * freq
    return np.interp(pos.ravel(), np.arange(knots, dtype=np.float32), table).reshape(coord.shape).astype(np.float32)


def _blur(values: np.ndarray, radius: int) -> np.ndarray:
    """Separable box blur (applied twice: close to a Gaussian) of a 2-D float array."""
    if radius <= 0:
        return values
    width = 2 * radius + 1
    for _ in range(2):
        for axis in (0, 1):
            padded = np.pad(values, [(radius, radius) if ax == axis else (0, 0) for ax in range(2)], mode="edge")
            cumulative = np.cumsum(padded, axis=axis, dtype=np.float32)
            cumulative = np.concatenate([np.zeros_like(np.take(cumulative, [0], axis=axis)), cumulative], axis=axis)
            values = (np.take(cumulative, np.arange(width, cumulative.shape[axis]), axis=axis) - np.take(cumulative, np.arange(0, cumulative.shape[axis] - width), axis=axis)) / width
    return values.astype(np.float32)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    ramp = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return ramp * ramp * (3 - 2 * ramp)


def _polyline_mask(size: int, lines: list[tuple[list[tuple[float, float]], float]], ss: int = 2) -> np.ndarray:
    """Anti-aliased mask of polylines. Points in [0, 1] coordinates (x, y); width in output pixels."""
    big = size * ss
    im = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(im)
    for pts, width in lines:
        pixel_width = max(1, int(round(width * ss)))
        xy = [(px * big, py * big) for px, py in pts]
        draw.line(xy, fill=255, width=pixel_width, joint="curve")
    return np.asarray(im.reduce(ss), dtype=np.float32) / 255.0


def _polygon_mask(size: int, pts: list[tuple[float, float]], ss: int = 2) -> np.ndarray:
    big = size * ss
    im = Image.new("L", (big, big), 0)
    ImageDraw.Draw(im).polygon([(px * big, py * big) for px, py in pts], fill=255)
    return np.asarray(im.reduce(ss), dtype=np.float32) / 255.0


def _rot(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    cosine, sine = np.cos(angle), np.sin(angle)
    return x * cosine + y * sine, -x * sine + y * cosine


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] to uint8 (rounded, clipped)."""
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# Surfaces
# --------------------------------------------------------------------------------------------------


def _colour(name_or_rgb) -> np.ndarray:
    if isinstance(name_or_rgb, str):
        return np.asarray(COLOURS[name_or_rgb], np.float32)
    return np.asarray(name_or_rgb, np.float32)


def _jitter_colour(rng: np.random.Generator, rgb: np.ndarray, amount: float = 0.06) -> np.ndarray:
    return np.clip(rgb * (1 + rng.uniform(-amount, amount)) + rng.uniform(-amount, amount, 3) * 0.5, 0.02, 0.98)


# Each material's texture and colouring, applied to the jittered colour ``rgb`` on a ``size``-px
# picture. ``x, y`` are pixel centres in [0, 1); ``along, across`` the same coordinates turned by a
# random angle about the centre: along and across the direction of brushing, grain or fibres.


def _brushed_metal(rng, rgb, size, x, y, along, across):
    streak = _noise_1d(rng, across, size * rng.uniform(1.5, 3.0)) * 0.6 + _noise_1d(rng, across, size * 0.4) * 0.4
    streak = streak * (1 + 0.3 * _noise_1d(rng, along, 6))
    low = _value_noise(rng, size, 3)
    tex = 1 + 0.07 * streak + 0.05 * low
    img = rgb[None, None] * tex[..., None]
    # broad specular band across the brushing direction
    v0 = rng.uniform(-0.4, 0.4)
    band = np.exp(-(((across - v0) / rng.uniform(0.12, 0.35)) ** 2)) * rng.uniform(0.12, 0.35)
    return img + (_WHITE - img) * band[..., None]


def _wood_grain(rng, rgb, size, x, y, along, across):
    warp = _value_noise(rng, size, 2) * rng.uniform(0.05, 0.15)
    rings = np.sin(2 * np.pi * (across * rng.uniform(5, 11) + warp * 6 + 0.4 * _value_noise(rng, size, 3)))
    rings = (0.5 + 0.5 * rings) ** rng.uniform(1.5, 3.0)
    fine = _noise_1d(rng, across + 0.02 * _value_noise(rng, size, 4), size * 1.5)
    tex = 1 - 0.28 * rings - 0.05 * fine + 0.04 * _value_noise(rng, size, 3)
    return rgb[None, None] * tex[..., None]


def _woven_fabric(rng, rgb, size, x, y, along, across):
    period = rng.uniform(3.0, 5.0) * size / 64.0
    fx, fy = _rot(x * size, y * size, rng.uniform(-0.2, 0.2))
    ix = np.floor(fx / period)
    iy = np.floor(fy / period)
    sx = np.abs(np.sin(np.pi * fx / period))
    sy = np.abs(np.sin(np.pi * fy / period))
    over = ((ix + iy) % 2) * 2 - 1
    weave = np.where(over > 0, sx, sy)
    fuzz = rng.standard_normal((size, size)).astype(np.float32)
    tex = 0.82 + 0.22 * weave + 0.05 * fuzz + 0.05 * _value_noise(rng, size, 4)
    return rgb[None, None] * tex[..., None]


def _moulded_plastic(rng, rgb, size, x, y, along, across):
    tex = 1 + 0.02 * rng.standard_normal((size, size)).astype(np.float32) + 0.03 * _value_noise(rng, size, 2)
    img = rgb[None, None] * tex[..., None]
    cx, cy = rng.uniform(0.15, 0.85, 2)
    spot = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * rng.uniform(0.08, 0.25) ** 2)) * rng.uniform(0.15, 0.4)
    return img + (_WHITE - img) * spot[..., None]


def _concrete(rng, rgb, size, x, y, along, across):
    grey = np.full(3, rgb.mean(), np.float32)
    base = 0.5 * rgb + 0.5 * grey
    tex = 1 + 0.13 * _fractal_noise(rng, size, 4, 4, 0.6)
    speckle = rng.random((size, size))
    tex = tex - 0.18 * (speckle < 0.04) + 0.12 * (speckle > 0.97)
    pores = _value_noise(rng, size, size // 6)
    tex = tex - 0.15 * (pores > 1.9)
    return base[None, None] * tex[..., None]


def _glass_pane(rng, rgb, size, x, y, along, across):
    base = 0.35 * rgb + 0.45 * np.full(3, 0.75, np.float32)
    grad = 0.85 + 0.3 * (along + 0.5) * rng.uniform(0.2, 1.0)
    img = base[None, None] * grad[..., None] + 0.01 * rng.standard_normal((size, size, 1)).astype(np.float32)
    for _ in range(rng.integers(1, 4)):
        off = rng.uniform(-0.5, 0.5)
        reflection_width = rng.uniform(0.02, 0.09)
        refl = _smoothstep(reflection_width, 0.0, np.abs(along * 0.7 + across * 0.7 - off)) * rng.uniform(0.15, 0.45)
        img = img + (_WHITE - img) * refl[..., None]
    return img


def _paper(rng, rgb, size, x, y, along, across):
    base = 0.55 * rgb + 0.45 * _WHITE * 0.95
    fib_u, _ = _rot(x, y, rng.uniform(0, np.pi))
    tex = 1 + 0.035 * rng.standard_normal((size, size)).astype(np.float32) + 0.03 * _noise_1d(rng, fib_u, size * 2) + 0.03 * _value_noise(rng, size, 5)
    return base[None, None] * tex[..., None]


def _pebbled_leather(rng, rgb, size, x, y, along, across):
    cells = _fractal_noise(rng, size, max(4, size // 6), 2, 0.5)
    pebble = 1 - np.abs(cells)
    tex = 0.85 + 0.2 * pebble ** 2 + 0.05 * _value_noise(rng, size, 3)
    speckle = rng.random((size, size))
    tex = tex - 0.15 * (speckle < 0.015)
    return (rgb * 0.85)[None, None] * tex[..., None]


def _rubber(rng, rgb, size, x, y, along, across):
    tex = 1 + 0.05 * rng.standard_normal((size, size)).astype(np.float32) + 0.05 * _value_noise(rng, size, 6)
    return (rgb * 0.45 + 0.03)[None, None] * tex[..., None]


def _glazed_tiles(rng, rgb, size, x, y, along, across):
    tex = 1 + 0.015 * _value_noise(rng, size, 3)
    speckle = rng.random((size, size))
    tex = tex - 0.1 * (speckle < 0.01)
    img = (0.8 * rgb + 0.15)[None, None] * tex[..., None]
    # grout lines of a tiled surface
    pitch = rng.uniform(0.45, 0.9)
    gx = np.abs(((x - rng.uniform(0, 1)) / pitch + 0.5) % 1.0 - 0.5) * pitch * size
    gy = np.abs(((y - rng.uniform(0, 1)) / pitch + 0.5) % 1.0 - 0.5) * pitch * size
    grout = _smoothstep(1.6 * size / 64, 0.4 * size / 64, np.minimum(gx, gy))
    img = img * (1 - grout[..., None]) + np.float32(rng.uniform(0.35, 0.7)) * grout[..., None]
    cx, cy = rng.uniform(0.1, 0.9, 2)
    spot = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * rng.uniform(0.05, 0.15) ** 2)) * rng.uniform(0.25, 0.55)
    return img + (_WHITE - img) * spot[..., None]


def _carbon_twill(rng, rgb, size, x, y, along, across, texture_size=None):
    """2x2 twill of tows, each tow with a sheen along its fibres. The tows are sized for a picture of
    ``texture_size`` pixels (default ``size``): 5-8 px wide at 128 px."""
    tow = rng.uniform(5.0, 8.0) * (size if texture_size is None else texture_size) / 128.0
    fx, fy = _rot(x * size, y * size, rng.choice([0.0, np.pi / 4]) + rng.uniform(-0.08, 0.08))
    ix = np.floor(fx / tow)
    iy = np.floor(fy / tow)
    horiz = ((ix + iy) % 4) < 2
    # position across the tow (bulge) and fine fibre streaks along it
    across = np.where(horiz, (fy / tow) % 1.0, (fx / tow) % 1.0)
    bulge = np.sin(np.pi * across)
    fib = np.where(horiz, _noise_1d(rng, fy / size, size * 1.2), _noise_1d(rng, fx / size, size * 1.2))
    bh, bv = (1.0, 0.55) if rng.random() < 0.5 else (0.55, 1.0)
    sheen = np.where(horiz, bh, bv)
    tex = 0.55 + 0.35 * sheen * (0.6 + 0.4 * bulge) + 0.06 * fib
    return (0.4 * rgb + 0.12)[None, None] * tex[..., None]


def _random_pattern(rng, rgb, size, x, y, along, across):
    """A man-made surface with a random regular pattern: gratings, lattices, dot grids or grain.

    Not any material of the demo tasks: a domain-randomisation family for the pretraining, so that
    the model meets many strong textures marked "no defect" and learns that a pattern is not damage.
    """
    period = rng.uniform(3.0, 16.0) * size / 128.0
    a1, a2 = _rot(x * size, y * size, rng.uniform(0, np.pi))
    kind = int(rng.integers(5))
    if kind == 0:  # one grating, sharp or soft
        pat = (np.sin(np.pi * a1 / period) ** 2) ** rng.uniform(0.5, 2.0)
    elif kind == 1:  # two crossed gratings (plaid)
        b1, _ = _rot(x * size, y * size, rng.uniform(0, np.pi))
        pat = 0.5 * np.abs(np.sin(np.pi * a1 / period)) + 0.5 * np.abs(np.sin(np.pi * b1 / (period * rng.uniform(0.6, 1.6))))
    elif kind == 2:  # bricks / lattice cells with thin joints
        row = np.floor(a2 / period)
        shift = (row % 2) * rng.uniform(0.0, 0.5) * period * 2
        cu = np.abs(((a1 + shift) / (2 * period)) % 1.0 - 0.5) * 2 * period
        cv = np.abs((a2 / period) % 1.0 - 0.5) * period
        pat = _smoothstep(0.4, 1.2, np.minimum(cu, cv)) * (1 + 0.1 * ((row % 3) - 1))
    elif kind == 3:  # grid of dots or pores
        du = np.abs((a1 / period) % 1.0 - 0.5)
        dv = np.abs((a2 / period) % 1.0 - 0.5)
        pat = 1 - _smoothstep(0.18, 0.3, np.sqrt(du * du + dv * dv) * rng.uniform(0.8, 1.5))
    else:  # directional grain of random length
        pat = 0.5 + 0.5 * _noise_1d(rng, a2 / size, size * rng.uniform(0.3, 2.0)) * (1 + 0.3 * _noise_1d(rng, a1 / size, 4))
    contrast = rng.uniform(0.1, 0.45)
    tex = 1 - contrast + contrast * 2 * pat + 0.04 * _value_noise(rng, size, 4) + 0.02 * rng.standard_normal((size, size)).astype(np.float32)
    return rgb[None, None] * tex[..., None].astype(np.float32)


_WHITE = np.ones(3, np.float32)
_SURFACE_FN = {
    "metal": _brushed_metal,
    "wood": _wood_grain,
    "fabric": _woven_fabric,
    "plastic": _moulded_plastic,
    "concrete": _concrete,
    "glass": _glass_pane,
    "paper": _paper,
    "leather": _pebbled_leather,
    "rubber": _rubber,
    "ceramic": _glazed_tiles,
    "carbon fibre": _carbon_twill,
    "patterned": _random_pattern,
}


# Surfaces whose texture can be drawn at the pixel scale of a smaller picture (render_surface's
# ``texture_size``).
_SCALABLE_SURFACES: tuple[str, ...] = ("carbon fibre",)


def render_surface(rng: np.random.Generator, material: str, colour, size: int = 64,
                   texture_size: int | None = None) -> np.ndarray:
    """A defect-free, unlit surface of ``material`` in ``colour`` (a COLOURS name or an RGB triple).

    ``texture_size``: draw the texture at the pixel scale of a ``texture_size``-px picture instead of
    stretching it over ``size`` pixels (a 1024-px photo whose weave looks, pixel for pixel, like that of
    a 256-px one). Only the surfaces in _SCALABLE_SURFACES take it; None (the default) is ``size``.
    """
    if material not in MATERIALS and material not in EXTRA_SURFACES:
        raise ValueError(f"unknown material {material!r}; choose from {MATERIALS + EXTRA_SURFACES}")
    if texture_size is not None and material not in _SCALABLE_SURFACES:
        raise ValueError(f"texture_size is only implemented for {list(_SCALABLE_SURFACES)}, not {material!r}")
    y, x = _grid(size)
    jittered = _jitter_colour(rng, _colour(colour))
    along, across = _rot(x - 0.5, y - 0.5, rng.uniform(0, np.pi))
    if texture_size is None:
        img = _SURFACE_FN[material](rng, jittered, size, x, y, along, across)
    else:
        img = _SURFACE_FN[material](rng, jittered, size, x, y, along, across, texture_size=texture_size)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def lighting(rng: np.random.Generator, size: int, strength: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A multiplicative light field (gradient plus vignette) and the unit light direction (x, y)."""
    y, x = _grid(size)
    angle = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)], np.float32)
    gradient = rng.uniform(0.0, 0.45) * strength
    field = 1 + gradient * ((x - 0.5) * direction[0] + (y - 0.5) * direction[1]) * 2
    vig = rng.uniform(0.0, 0.25) * strength
    field = field * (1 - vig * ((x - 0.5) ** 2 + (y - 0.5) ** 2) * 2)
    field = field * rng.uniform(0.8, 1.15)
    return field.astype(np.float32), direction


# --------------------------------------------------------------------------------------------------
# Defects
# --------------------------------------------------------------------------------------------------


def _place(rng: np.random.Generator, margin: float = 0.15) -> tuple[float, float]:
    return float(rng.uniform(margin, 1 - margin)), float(rng.uniform(margin, 1 - margin))


def _scratch(img, rng, size, light, sev, scale, line_width=1.0):
    lines = []
    count = int(rng.choice([1, 1, 1, 2, 3]))
    ang = rng.uniform(0, np.pi)
    cx, cy = _place(rng, 0.25)
    length = rng.uniform(0.35, 0.85) * scale
    width = rng.choice([0.5, 0.75, 1.0, 1.25]) * max(1.0, size / 64) * line_width
    for i in range(count):
        angle = ang + rng.normal(0, 0.04)
        off = (i - (count - 1) / 2) * rng.uniform(0.03, 0.08)
        ox, oy = cx - np.sin(angle) * off, cy + np.cos(angle) * off
        line_length = length * rng.uniform(0.7, 1.0)
        bend = rng.normal(0, 0.05) * line_length
        along = np.linspace(-0.5, 0.5, 10)
        px = ox + np.cos(angle) * along * line_length - np.sin(angle) * bend * (1 - 4 * along * along)
        py = oy + np.sin(angle) * along * line_length + np.cos(angle) * bend * (1 - 4 * along * along)
        lines.append((list(zip(px.tolist(), py.tolist())), width))
    mask = _polyline_mask(size, lines)
    amt = rng.uniform(0.45, 0.8) * sev
    if rng.random() < 0.7:  # bright scratch: exposed material catches the light
        return img + (1 - img) * (mask * amt)[..., None]
    return img * (1 - 0.8 * amt * mask)[..., None]


def _crack(img, rng, size, light, sev, scale, line_width=1.0):
    x0, y0 = _place(rng, 0.2)
    th = rng.uniform(0, 2 * np.pi)
    steps = int(rng.integers(10, 20))
    step = rng.uniform(0.03, 0.05) * scale
    pts = [(x0, y0)]
    for _ in range(steps):
        th += rng.normal(0, 0.5)
        x0 += np.cos(th) * step
        y0 += np.sin(th) * step
        pts.append((x0, y0))
    width = rng.choice([0.75, 1.0, 1.5]) * max(1.0, size / 64) * line_width
    lines = [(pts, width)]
    for _ in range(int(rng.integers(0, 3))):
        bx, by = pts[int(rng.integers(2, len(pts) - 1))]
        bt = th + rng.choice([-1, 1]) * rng.uniform(0.5, 1.2)
        br = [(bx, by)]
        for _ in range(int(rng.integers(3, 8))):
            bt += rng.normal(0, 0.5)
            bx += np.cos(bt) * step * 0.8
            by += np.sin(bt) * step * 0.8
            br.append((bx, by))
        lines.append((br, width * 0.7))
    mask = _polyline_mask(size, lines)
    amt = rng.uniform(0.55, 0.9) * sev
    out = img * (1 - amt * mask)[..., None]
    # a faint lit edge on one side gives the crack some depth
    sh = np.roll(mask, shift=(int(round(-light[1])), int(round(-light[0]))), axis=(0, 1))
    return out + (1 - out) * (0.15 * sev * np.clip(sh - mask, 0, 1))[..., None]


def _dent(img, rng, size, light, sev, scale):
    y, x = _grid(size)
    cx, cy = _place(rng, 0.2)
    radius = rng.uniform(0.07, 0.18) * scale
    ratio = rng.uniform(0.55, 1.0)
    major, minor = _rot(x - cx, y - cy, rng.uniform(0, np.pi))
    d2 = (major / radius) ** 2 + (minor / (radius * ratio)) ** 2
    height = -np.exp(-d2 / 2)
    gy, gx = np.gradient(height * (size * radius / 1.65 / max(ratio, 0.3) ** 0.5))
    shade = -(gx * light[0] + gy * light[1])
    amp = rng.uniform(0.35, 0.6) * sev
    shade = np.clip(shade, -1.5, 1.5) * amp - 0.08 * sev * np.exp(-d2 / 2)
    out = np.where(shade[..., None] > 0, img + (1 - img) * shade[..., None] * 0.8, img * (1 + shade[..., None]))
    return out


def _blob(rng, size, cx, cy, radius, lumps: int, edge_noise: float) -> np.ndarray:
    y, x = _grid(size)
    density = np.zeros((size, size), np.float32)
    for _ in range(lumps):
        ox, oy = rng.normal(0, radius * 0.45, 2)
        rr = radius * rng.uniform(0.45, 0.85)
        density += np.exp(-((x - cx - ox) ** 2 + (y - cy - oy) ** 2) / (2 * rr * rr))
    density = density + edge_noise * _value_noise(rng, size, max(3, int(size * radius / 2)))
    return density


def _stain(img, rng, size, light, sev, scale):
    cx, cy = _place(rng, 0.2)
    radius = rng.uniform(0.07, 0.18) * scale
    density = _blob(rng, size, cx, cy, radius, int(rng.integers(3, 7)), 0.25)
    mask = _smoothstep(0.35, 0.75, density)
    kind = rng.integers(0, 4)
    if kind == 0:
        col = np.array([0.32, 0.22, 0.10], np.float32)  # coffee / dirt
    elif kind == 1:
        col = np.array([0.12, 0.11, 0.10], np.float32)  # oil
    elif kind == 2:
        col = np.array([0.72, 0.62, 0.25], np.float32)  # yellowed
    else:
        col = None  # darkened material
    amt = rng.uniform(0.35, 0.7) * sev
    if rng.random() < 0.3:  # dried ring at the edge
        mask = mask + 0.6 * np.clip(mask * (1 - mask) * 4, 0, 1)
        mask = np.clip(mask, 0, 1.2)
    alpha = (mask * amt)[..., None]
    target = img * 0.45 if col is None else col[None, None]
    return img * (1 - alpha) + target * alpha


def _hole(img, rng, size, light, sev, scale):
    y, x = _grid(size)
    cx, cy = _place(rng, 0.2)
    radius = rng.uniform(0.035, 0.09) * scale
    distance = np.sqrt((x - cx) ** 2 + (y - cy) ** 2) * size
    rp = radius * size
    inside = np.clip(rp - distance + 0.5, 0, 1)
    rim = np.clip(1 - np.abs(distance - rp - 0.8) / 1.2, 0, 1)
    lit = ((x - cx) * light[0] + (y - cy) * light[1]) / (radius + 1e-6)
    depth = rng.uniform(0.03, 0.15)
    inner = depth * (1 + 0.6 * np.clip(-lit, -1, 1))
    amt = min(1.0, 0.6 + 0.4 * sev)
    out = img * (1 - amt * inside[..., None]) + inner[..., None] * amt * inside[..., None]
    rim_shade = (0.35 * sev * np.clip(lit, -1, 1) * rim)[..., None]
    return np.where(rim_shade > 0, out + (1 - out) * rim_shade, out * (1 + rim_shade))


def _rust(img, rng, size, light, sev, scale):
    cx, cy = _place(rng, 0.2)
    radius = rng.uniform(0.1, 0.25) * scale
    density = _blob(rng, size, cx, cy, radius, int(rng.integers(3, 6)), 0.5)
    mask = _smoothstep(0.3, 0.8, density)
    speck = (rng.random((size, size)) < 0.05) * _smoothstep(0.1, 0.3, density)
    mask = np.clip(mask + 0.6 * speck, 0, 1)
    tone = np.clip(0.5 + 0.5 * _value_noise(rng, size, max(4, size // 6)), 0, 1)[..., None]
    col = (1 - tone) * np.array([0.62, 0.30, 0.09], np.float32) + tone * np.array([0.33, 0.14, 0.05], np.float32)
    grain = 1 + 0.15 * rng.standard_normal((size, size, 1)).astype(np.float32)
    alpha = (mask * rng.uniform(0.6, 0.95) * sev)[..., None]
    return img * (1 - alpha) + col * grain * alpha


def _burn(img, rng, size, light, sev, scale):
    y, x = _grid(size)
    cx, cy = _place(rng, 0.2)
    radius = rng.uniform(0.1, 0.24) * scale
    distance = np.sqrt((x - cx) ** 2 + (y - cy) ** 2) / radius
    mask = np.clip(1 - distance + 0.35 * _value_noise(rng, size, max(3, int(size * radius / 2))), 0, 1)
    core = _smoothstep(0.35, 0.8, mask)[..., None]
    col = (1 - core) * np.array([0.38, 0.22, 0.09], np.float32) + core * np.array([0.05, 0.04, 0.035], np.float32)
    alpha = (np.sqrt(mask) * rng.uniform(0.7, 0.95) * sev)[..., None]
    return img * (1 - alpha) + col * alpha


def _missing(img, rng, size, light, sev, scale):
    depth = rng.uniform(0.15, 0.35) * scale
    corner = rng.random() < 0.5
    count = int(rng.integers(5, 9))
    if corner:
        # a bite out of a corner: jagged path from one edge to the other
        cx, cy = rng.choice([0.0, 1.0]), rng.choice([0.0, 1.0])
        sx, sy = (1 if cx == 0 else -1), (1 if cy == 0 else -1)
        reach_x = depth * rng.uniform(0.8, 1.6)
        reach_y = depth * rng.uniform(0.8, 1.6)
        pts = [(cx, cy), (cx + sx * reach_x, cy)]
        for i in range(1, count):
            fraction = i / count
            rad = 1 + rng.normal(0, 0.12)
            pts.append((cx + sx * reach_x * np.cos(fraction * np.pi / 2) * rad, cy + sy * reach_y * np.sin(fraction * np.pi / 2) * rad))
        pts.append((cx, cy + sy * reach_y))
    else:
        # a chip out of one edge
        edge = int(rng.integers(0, 4))
        c0 = rng.uniform(0.2, 0.8)
        chip_width = depth * rng.uniform(1.0, 2.0)
        pts = []
        for i in range(count + 1):
            fraction = i / count
            along = c0 - chip_width / 2 + chip_width * fraction
            into = depth * np.sin(np.pi * fraction) * (1 + rng.normal(0, 0.15))
            pts.append((along, into))
        pts = [(point[0], point[1] - 0.02) for point in pts]
        if edge == 0:
            pts = [(along_edge, into_edge) for along_edge, into_edge in pts]
        elif edge == 1:
            pts = [(along_edge, 1 - into_edge) for along_edge, into_edge in pts]
        elif edge == 2:
            pts = [(into_edge, along_edge) for along_edge, into_edge in pts]
        else:
            pts = [(1 - into_edge, along_edge) for along_edge, into_edge in pts]
    mask = _polygon_mask(size, [(float(px), float(py)) for px, py in pts])
    bg_kind = rng.integers(0, 3)
    if bg_kind == 0:
        bg = np.full(3, rng.uniform(0.03, 0.15), np.float32)
    elif bg_kind == 1:
        bg = np.full(3, rng.uniform(0.75, 0.92), np.float32)
    else:
        bg = np.clip(rng.uniform(0.1, 0.9, 3), 0, 1).astype(np.float32)
    edge_line = np.clip(_blur(mask, 1) * 2.2 - mask * 2.2, 0, 1) * rng.uniform(0.3, 0.6)
    out = img * (1 - edge_line[..., None] * sev)
    alpha = (mask * min(1.0, 0.7 + 0.3 * sev))[..., None]
    return out * (1 - alpha) + bg * alpha


_DEFECT_FN = {
    "scratch": _scratch,
    "crack": _crack,
    "dent": _dent,
    "stain": _stain,
    "hole": _hole,
    "rust": _rust,
    "burn": _burn,
    "missing piece": _missing,
}
_LINE_DEFECTS = ("scratch", "crack")  # the defects drawn as lines, which take add_defect's line_width


def add_defect(
    img: np.ndarray,
    rng: np.random.Generator,
    defect: str,
    light_dir=(0.7, 0.7),
    severity: float = 1.0,
    scale: float = 1.0,
    line_width: float = 1.0,
) -> np.ndarray:
    """Return ``img`` with ``defect`` drawn at a random place.

    ``severity`` scales the defect's contrast (1 = clearly visible, 0.3 = subtle); ``scale`` scales its
    size. ``light_dir`` is the unit (x, y) direction the light comes from, for shaded defects.
    ``line_width`` is a factor on the width of scratches and cracks (other defects ignore it), for a
    defect drawn on a small patch of a large photo, where the widths sized for the patch would be thin.
    """
    if defect == "none":
        return img
    if defect not in _DEFECT_FN:
        raise ValueError(f"unknown defect {defect!r}; choose from {DEFECTS}")
    size = img.shape[0]
    extra = {"line_width": float(line_width)} if defect in _LINE_DEFECTS else {}
    out = _DEFECT_FN[defect](img, rng, size, np.asarray(light_dir, np.float32), float(severity), float(scale), **extra)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Camera styles
# --------------------------------------------------------------------------------------------------


def apply_style(img: np.ndarray, rng: np.random.Generator, style: str = "photo") -> np.ndarray:
    """How the camera sees the scene.

    ``photo``: a colour photograph with a little sensor noise (the pretraining corpus).
    ``mono``: a monochrome industrial camera: grey levels, raking light from one side, strong
    vignetting, compressed contrast and visible sensor noise (the corpus never shows this).
    """
    size = img.shape[0]
    if style == "photo":
        return np.clip(img + rng.normal(0, 0.012, img.shape).astype(np.float32), 0, 1)
    if style != "mono":
        raise ValueError(f"unknown style {style!r}; choose from {STYLES}")
    y, x = _grid(size)
    grey = img @ np.array([0.299, 0.587, 0.114], np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    rake = 1 + rng.uniform(0.3, 0.6) * ((x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle)) * 2
    vig = 1 - rng.uniform(0.3, 0.55) * ((x - 0.5) ** 2 + (y - 0.5) ** 2) * 2
    grey = grey * rake * vig
    mean = float(grey.mean())
    grey = mean + (grey - mean) * rng.uniform(0.6, 0.85)
    grey = grey * rng.uniform(0.9, 1.3) + rng.uniform(-0.03, 0.08)
    grey = grey + rng.normal(0, rng.uniform(0.015, 0.035), grey.shape).astype(np.float32)
    return np.clip(np.repeat(grey[..., None], 3, axis=2), 0, 1).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Whole pictures
# --------------------------------------------------------------------------------------------------


def render_group(
    rng: np.random.Generator,
    material: str,
    colour,
    defects,
    size: int = 64,
    severity=(0.6, 1.0),
    scale=(0.7, 1.3),
    style: str = "photo",
    light_strength: float = 1.0,
) -> list[np.ndarray]:
    """One surface rendered once per entry of ``defects`` (float images, same order).

    All pictures share the surface texture, colour and lighting, so they differ only in the defect;
    ``severity`` and ``scale`` are (low, high) ranges drawn per picture.
    """
    base = render_surface(rng, material, colour, size)
    field, light = lighting(rng, size, light_strength)
    out = []
    for defect in defects:
        img = add_defect(base.copy(), rng, defect, light, rng.uniform(*severity), rng.uniform(*scale))
        img = np.clip(img * field[..., None], 0, 1)
        out.append(apply_style(img, rng, style))
    return out


def render_inspection(
    rng: np.random.Generator,
    material: str,
    colour,
    defect: str = "none",
    size: int = 64,
    severity=(0.6, 1.0),
    scale=(0.7, 1.3),
    style: str = "photo",
    light_strength: float = 1.0,
) -> np.ndarray:
    """A single inspection picture (float image)."""
    return render_group(rng, material, colour, [defect], size, severity, scale, style, light_strength)[0]


def _shape_polygon(kind: str, cx: float, cy: float, radius: float, rot: float) -> list[tuple[float, float]]:
    def ngon(sides, rr, phase=0.0):
        return [(cx + rr * np.cos(rot + phase + 2 * np.pi * i / sides), cy + rr * np.sin(rot + phase + 2 * np.pi * i / sides)) for i in range(sides)]

    if kind == "square":
        return ngon(4, radius * 1.2, np.pi / 4)
    if kind == "triangle":
        return ngon(3, radius * 1.25, -np.pi / 2)
    if kind in ("hexagon", "nut"):
        return ngon(6, radius * 1.1)
    if kind == "diamond":
        pts = ngon(4, radius * 1.2)
        return [(cx + (px - cx) * 0.7, py) if i % 2 == 0 else (px, py) for i, (px, py) in enumerate(pts)]
    if kind == "star":
        pts = []
        for i in range(10):
            rr = radius * 1.25 if i % 2 == 0 else radius * 0.5
            angle = rot - np.pi / 2 + np.pi * i / 5
            pts.append((cx + rr * np.cos(angle), cy + rr * np.sin(angle)))
        return pts
    if kind == "cross":
        arm, reach = radius * 0.38, radius * 1.2  # half the width of an arm; how far an arm reaches
        base = [(-arm, -reach), (arm, -reach), (arm, -arm), (reach, -arm), (reach, arm), (arm, arm),
                (arm, reach), (-arm, reach), (-arm, arm), (-reach, arm), (-reach, -arm), (-arm, -arm)]
    elif kind == "gear":
        pts = []
        for i in range(40):
            angle = rot + 2 * np.pi * i / 40
            rr = radius * (1.2 if (i // 2) % 2 == 0 else 0.95)
            pts.append((cx + rr * np.cos(angle), cy + rr * np.sin(angle)))
        return pts
    elif kind == "bolt":
        base = [(-0.5, -1.2), (0.5, -1.2), (0.5, -0.7), (0.22, -0.7), (0.22, 1.2), (-0.22, 1.2), (-0.22, -0.7), (-0.5, -0.7)]
        base = [(px * radius, py * radius) for px, py in base]
    elif kind == "bottle":
        base = [(-0.15, -1.25), (0.15, -1.25), (0.15, -0.8), (0.5, -0.45), (0.5, 1.2), (-0.5, 1.2), (-0.5, -0.45), (-0.15, -0.8)]
        base = [(px * radius, py * radius) for px, py in base]
    else:
        raise ValueError(kind)
    cosine, sine = np.cos(rot), np.sin(rot)
    return [(cx + px * cosine - py * sine, cy + px * sine + py * cosine) for px, py in base]


def render_shape(
    rng: np.random.Generator,
    kind: str,
    colour,
    background,
    size: int = 64,
    style: str = "photo",
) -> np.ndarray:
    """A generic shape or simple machine part of ``colour`` on a plain ``background``."""
    ss = 2
    big = size * ss
    bg = _jitter_colour(rng, _colour(background), 0.04)
    fg = _jitter_colour(rng, _colour(colour), 0.05)
    im = Image.new("RGB", (big, big), tuple(int(channel * 255) for channel in bg))
    draw = ImageDraw.Draw(im)
    cx, cy = rng.uniform(0.35, 0.65, 2)
    radius = rng.uniform(0.2, 0.3)
    rot = rng.uniform(0, 2 * np.pi)
    fill = tuple(int(channel * 255) for channel in fg)
    hole = tuple(int(channel * 255) for channel in bg)
    if kind in ("circle", "ring"):
        draw.ellipse([(cx - radius) * big, (cy - radius) * big, (cx + radius) * big, (cy + radius) * big], fill=fill)
        if kind == "ring":
            ri = radius * 0.5
            draw.ellipse([(cx - ri) * big, (cy - ri) * big, (cx + ri) * big, (cy + ri) * big], fill=hole)
    else:
        outline = _shape_polygon(kind, cx, cy, radius, rot)
        draw.polygon([(px * big, py * big) for px, py in outline], fill=fill)
        if kind in ("nut", "gear"):
            ri = radius * 0.4
            draw.ellipse([(cx - ri) * big, (cy - ri) * big, (cx + ri) * big, (cy + ri) * big], fill=hole)
    img = np.asarray(im.reduce(ss), dtype=np.float32) / 255.0
    field, _ = lighting(rng, size, 0.6)
    img = np.clip(img * field[..., None], 0, 1)
    return apply_style(img, rng, style)


# --------------------------------------------------------------------------------------------------
# Faint textile flaws (the hard demo tasks): neither is in DEFECTS, so the pretraining corpus,
# which draws its defects from that tuple, never shows them.
# --------------------------------------------------------------------------------------------------

TEXTILE_FLAWS: tuple[str, ...] = ("none", "local", "global")


def _slub(img, rng, size, sev):
    """A short thickened or missing thread: a thin streak a few weave periods long, slightly
    brighter or darker than the cloth around it."""
    y, x = _grid(size)
    cx, cy = _place(rng, 0.15)
    angle = rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.05)  # along the warp or the weft
    along, across = _rot(x - cx, y - cy, angle)
    length = rng.uniform(0.05, 0.12)
    width = rng.uniform(0.6, 1.2) / 128
    mask = np.exp(-((across / width) ** 2)) * _smoothstep(length, length * 0.6, np.abs(along))
    sign = 1.0 if rng.random() < 0.5 else -1.0
    amt = rng.uniform(0.25, 0.45) * sev
    return img * (1 + sign * amt * mask)[..., None]


def _spot(img, rng, size, sev):
    """A small soft spot (oil, a pulled loop seen from above): a few pixels across, low contrast."""
    y, x = _grid(size)
    cx, cy = _place(rng, 0.15)
    radius = rng.uniform(0.012, 0.03)
    mask = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius * radius))
    amt = rng.uniform(0.15, 0.3) * sev
    return img * (1 - amt * mask)[..., None]


def _barre(img, rng, size, sev):
    """Barre: the whole piece shows faint bands of tone across the weft (yarn of uneven dye uptake)."""
    y, x = _grid(size)
    _, across = _rot(x - 0.5, y - 0.5, rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.03))
    bands = np.sin(2 * np.pi * (across * rng.uniform(3, 7) + rng.uniform(0, 1)))
    amt = rng.uniform(0.04, 0.08) * sev
    return img * (1 + amt * bands)[..., None]


def _cloudy(img, rng, size, sev):
    """Cloudiness: an uneven, mottled density over the whole piece, plus a slight overall tone cast."""
    mottle = _fractal_noise(rng, size, 6, 3)
    cast = 1 + rng.uniform(-1, 1, 3).astype(np.float32) * 0.03 * sev
    amt = rng.uniform(0.05, 0.09) * sev
    return img * (1 + amt * mottle)[..., None] * cast[None, None]


def textile_flaw(img: np.ndarray, rng: np.random.Generator, kind: str, severity: float = 1.0) -> np.ndarray:
    """Return ``img`` (a fabric surface) with a faint flaw of ``kind`` (one of TEXTILE_FLAWS).

    ``local``: one small flaw (a slub or a soft spot) somewhere on the piece; ``global``: a subtle
    change of the whole piece (barre bands or cloudiness). ``severity`` scales the contrast; at 1
    both are at the edge of what the eye sees at the demo model's 128 pixels.
    """
    if kind not in TEXTILE_FLAWS:
        raise ValueError(f"unknown textile flaw {kind!r}; choose from {TEXTILE_FLAWS}")
    if kind == "none":
        return img
    size = img.shape[0]
    if kind == "local":
        out = (_slub if rng.random() < 0.6 else _spot)(img, rng, size, float(severity))
    else:
        out = (_barre if rng.random() < 0.5 else _cloudy)(img, rng, size, float(severity))
    return np.clip(out, 0.0, 1.0).astype(np.float32)
