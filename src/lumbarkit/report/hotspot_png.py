"""Draw a hotspot (evidence) map over its disc crop as a PNG (report side: the stages never draw)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def overlay_png(crop: np.ndarray, heat: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Write the crop (middle channel, gray) with the hotspot map over it (jet, alpha by strength)."""
    from matplotlib.figure import Figure

    img = np.asarray(crop)
    img = img[img.shape[0] // 2] if img.ndim == 3 else img
    h, w = img.shape
    fig = Figure(figsize=(w / 40, h / 40 + (0.35 if title else 0)), dpi=80)
    ax = fig.add_axes((0, 0, 1, h / (h + (14 if title else 0))))
    ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="bilinear")
    rgba = np.zeros((h, w, 4), dtype=np.float32)
    import matplotlib

    rgba[..., :3] = matplotlib.colormaps["jet"](heat)[..., :3]
    rgba[..., 3] = 0.6 * np.clip(heat, 0, 1)
    ax.imshow(rgba, interpolation="bilinear")
    ax.set_axis_off()
    if title:
        fig.text(0.5, 1.0, title, ha="center", va="top", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    return path
