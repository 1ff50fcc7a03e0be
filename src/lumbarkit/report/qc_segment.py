"""QC images of the segmentation: mid-slice overlay with level names, and montages."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from lumbarkit.levels import CANAL_ID

# one colour per kind of label; discs warm, bodies cool, canal green
_BODY_COLOURS = [(0.25, 0.55, 1.0), (0.1, 0.8, 0.9), (0.55, 0.4, 1.0)]
_DISC_COLOURS = [(1.0, 0.75, 0.1), (1.0, 0.4, 0.2)]


def label_colour(label: int) -> tuple[float, float, float]:
    if label == CANAL_ID:
        return (0.2, 0.85, 0.3)
    if label > CANAL_ID:
        return _DISC_COLOURS[label % len(_DISC_COLOURS)]
    return _BODY_COLOURS[label % len(_BODY_COLOURS)]


def draw_levels(ax, image: np.ndarray, labels: np.ndarray, instances: Sequence, slice_index: int,
                spacing_rc: tuple[float, float], title: str = "", alpha: float = 0.4) -> None:
    """Draw one sagittal slice with label outlines/fill and the level names at their centroids."""
    from skimage.segmentation import find_boundaries

    h, w = image.shape
    extent = (0, w * spacing_rc[1], h * spacing_rc[0], 0)  # mm, so anatomy keeps its aspect
    lo, hi = np.percentile(image, (0.5, 99.5))
    ax.imshow(image, cmap="gray", vmin=lo, vmax=max(hi, lo + 1e-6), extent=extent, interpolation="bilinear")
    rgba = np.zeros((h, w, 4), dtype=float)
    for lid in np.unique(labels):
        if lid == 0:
            continue
        m = labels == lid
        rgba[m, :3] = label_colour(int(lid))
        rgba[m, 3] = alpha
        rgba[find_boundaries(m, mode="inner"), 3] = 0.9
    ax.imshow(rgba, extent=extent, interpolation="nearest")
    for inst in instances:
        m = labels == inst.label
        if not m.any():
            continue
        rr, cc = np.nonzero(m)
        y, x = rr.mean() * spacing_rc[0], cc.mean() * spacing_rc[1]
        ax.text(x - 25 if inst.kind == "vertebra" else x + 22, y, inst.name, color="white", fontsize=7,
                ha="center", va="center", bbox=dict(boxstyle="round,pad=0.15", fc="black", alpha=0.6, lw=0))
    ax.set_title(title, fontsize=7)
    ax.axis("off")


def save_montage(panels: list[dict], path: Path, columns: int = 8, panel_inches: float = 2.2) -> Path:
    """Save a grid of panels; each panel is ``dict(image, labels, instances, spacing_rc, title)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = int(np.ceil(len(panels) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * panel_inches, rows * panel_inches * 1.25), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, p in zip(axes.ravel(), panels):
        draw_levels(ax, p["image"], p["labels"], p["instances"], 0, p["spacing_rc"], p.get("title", ""))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": "lumbarkit"})
    plt.close(fig)
    return path
