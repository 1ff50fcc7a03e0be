"""Raster drawing for the QC and evidence PNGs with PIL (one image per picture, no plotting figure).

Coordinates are in output pixels; images are uint8 RGB arrays. ``jet`` reproduces matplotlib's "jet"
colour map from its published segment data, so the evidence maps keep their colours without
importing matplotlib.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# matplotlib's jet segment data: (position, value) per channel
_JET = {"r": ((0, 0), (0.35, 0), (0.66, 1), (0.89, 1), (1, 0.5)),
        "g": ((0, 0), (0.125, 0), (0.375, 1), (0.64, 1), (0.91, 0), (1, 0)),
        "b": ((0, 0.5), (0.11, 1), (0.34, 1), (0.65, 0), (1, 0))}


def jet(values: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] (shape ``values.shape + (3,)``) of values in [0, 1] on the jet colour map."""
    v = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)
    return np.stack([np.interp(v, *zip(*_JET[c])) for c in "rgb"], axis=-1).astype(np.float32)


def gray_rgb(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """A grey uint8 RGB image of ``image`` windowed to [lo, hi]."""
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    g = np.clip((np.asarray(image, dtype=np.float32) - lo) * scale, 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=-1)


def blend(rgb: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``rgb`` (uint8) with ``colour`` (floats in [0, 1], same shape) laid over it at per-pixel ``alpha``."""
    a = np.clip(alpha, 0, 1)[..., None]
    return (rgb.astype(np.float32) * (1 - a) + colour * 255.0 * a + 0.5).astype(np.uint8)


@lru_cache(maxsize=8)
def font(size_px: int) -> ImageFont.ImageFont:
    """PIL's bundled font at ``size_px`` pixels (its bitmap font where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size_px)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def canvas(rgb: np.ndarray) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """An RGB image of ``rgb`` and a drawer that blends translucent fills."""
    img = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    return img, ImageDraw.Draw(img, "RGBA")


def line(draw: ImageDraw.ImageDraw, p0, p1, colour: str, width: int = 2, dash: float | None = None) -> None:
    """A straight line from ``p0`` to ``p1`` (x, y); dashed with ``dash``-pixel dashes and gaps when given."""
    if not dash:
        draw.line([tuple(p0), tuple(p1)], fill=colour, width=width)
        return
    p0, p1 = np.asarray(p0, dtype=float), np.asarray(p1, dtype=float)
    length = float(np.hypot(*(p1 - p0)))
    for start in np.arange(0.0, length, 2 * dash):
        a = p0 + (p1 - p0) * (start / length)
        b = p0 + (p1 - p0) * (min(start + dash, length) / length)
        draw.line([tuple(a), tuple(b)], fill=colour, width=width)


def text_box(draw: ImageDraw.ImageDraw, xy, text: str, colour: str, size_px: int, anchor: str = "lm") -> None:
    """``text`` at ``xy`` (PIL ``anchor``, e.g. "lm" left-middle, "rm") on a half-transparent black box."""
    f = font(size_px)
    x0, y0, x1, y1 = draw.textbbox(xy, text, font=f, anchor=anchor)
    draw.rectangle((x0 - 2, y0 - 2, x1 + 2, y1 + 2), fill=(0, 0, 0, 128))
    draw.text(xy, text, fill=colour, font=f, anchor=anchor)


def save_png(img: Image.Image, path) -> None:
    """Write ``img`` as PNG (fast zlib level: these are QC pictures, not archives)."""
    img.save(path, format="PNG", compress_level=1)
