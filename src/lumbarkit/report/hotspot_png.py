"""Draw a hotspot (evidence) map over its disc crop as a PNG (report side: the stages never draw)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SCALE = 2  # output pixels per crop pixel
TITLE_PX = 24  # height of the title band


def overlay_png(crop: np.ndarray, heat: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Write the crop (middle channel, grey, [0, 1]) with the hotspot map over it (jet, opacity 0.6 x strength),
    enlarged ``SCALE`` times, with ``title`` in a white band above it."""
    from PIL import Image

    from lumbarkit.report.draw import blend, canvas, gray_rgb, jet, save_png

    img = np.asarray(crop)
    img = img[img.shape[0] // 2] if img.ndim == 3 else img
    h, w = img.shape
    size = (w * SCALE, h * SCALE)
    gray = np.asarray(Image.fromarray(np.asarray(img, dtype=np.float32)).resize(size, Image.BILINEAR))
    hot = np.asarray(Image.fromarray(np.asarray(heat, dtype=np.float32)).resize(size, Image.BILINEAR))
    rgb = blend(gray_rgb(gray, 0.0, 1.0), jet(hot), 0.6 * np.clip(hot, 0, 1))
    band = TITLE_PX if title else 0
    full = np.full((h * SCALE + band, w * SCALE, 3), 255, dtype=np.uint8)
    full[band:] = rgb
    out, draw = canvas(full)
    if title:
        from lumbarkit.report.draw import font

        draw.text((w * SCALE / 2, band / 2), title, fill="black", font=font(13), anchor="mm")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(out, path)
    return path
