"""2D structures on the mid-sagittal slab (discs, bone intervals) and their geometry, in mm (row, col)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Blob:
    """A 2D structure on the mid-sagittal slab (coordinates in mm: row, col)."""

    mask: np.ndarray
    centroid: np.ndarray
    area_mm2: float
    score: float
    normal: np.ndarray | None = None


def components(mask: np.ndarray, min_pixels: float) -> list[np.ndarray]:
    """Connected components of ``mask`` with at least ``min_pixels`` pixels, largest first."""
    from scipy import ndimage

    lab, n = ndimage.label(mask)
    if n == 0:
        return []
    sizes = ndimage.sum_labels(np.ones_like(lab), lab, index=np.arange(1, n + 1))
    return [lab == (i + 1) for i in np.argsort(-sizes) if sizes[i] >= min_pixels]


def points(mask: np.ndarray, pix: np.ndarray) -> np.ndarray:
    return np.argwhere(mask) * pix


def blob(mask: np.ndarray, score_map: np.ndarray, pix: np.ndarray) -> Blob:
    pts = points(mask, pix)
    return Blob(mask, pts.mean(axis=0), float(mask.sum() * pix.prod()), float(score_map[mask].mean()))


def thin_direction(mask: np.ndarray, pix: np.ndarray) -> np.ndarray:
    """Unit direction of least extent of a blob (a disc's normal), pointing inferior."""
    pts = points(mask, pix)
    if len(pts) < 3:
        return np.array([1.0, 0.0])
    _, vecs = np.linalg.eigh(np.cov((pts - pts.mean(axis=0)).T))
    n = vecs[:, 0]
    return n if n[0] >= 0 else -n


def spine_axis(points: np.ndarray) -> np.ndarray:
    """Unit direction along the spine (pointing inferior) through ``points``."""
    if len(points) < 2:
        return np.array([1.0, 0.0])
    _, _, vt = np.linalg.svd(points - points.mean(axis=0))
    return vt[0] if vt[0][0] >= 0 else -vt[0]


def interval_index(points_mm: np.ndarray, discs: list[Blob]) -> np.ndarray:
    """For points (N, 2) in mm: how many disc planes lie above each point."""
    out = np.zeros(len(points_mm), dtype=int)
    for d in discs:
        out += ((points_mm - d.centroid) @ d.normal > 0).astype(int)
    return out


def median_gap(discs: list[Blob]) -> float:
    """Median distance (mm) between consecutive discs along the spine (35 mm, a lumbar segment, if < 2 discs)."""
    if len(discs) < 2:
        return 35.0
    axis = spine_axis(np.array([d.centroid for d in discs]))
    return float(np.median(np.diff([float(d.centroid @ axis) for d in discs])))
