"""Stage 4 output: one aligned crop per disc, how it was cut (:class:`CropSpec`) and where it came from."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

DEFAULT_SIZE_MM = (36.0, 72.0)  # rows (along the disc normal) x cols (along the disc), mm


DEFAULT_SHAPE_PX = (64, 128)


@dataclass(frozen=True)
class CropSpec:
    """How crops are cut; stored in a grader's model.json so inference cuts the same crops."""

    n_slices: int = 1
    size_mm: tuple[float, float] = DEFAULT_SIZE_MM
    shape_px: tuple[int, int] = DEFAULT_SHAPE_PX
    body_median: float = 0.5
    clip: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self):
        if int(self.n_slices) < 1 or int(self.n_slices) % 2 == 0:
            raise ValueError(f"n_slices must be a positive odd number, got {self.n_slices}")
        if len(self.size_mm) != 2 or min(self.size_mm) <= 0:
            raise ValueError(f"size_mm must be two positive numbers (rows, cols), got {self.size_mm}")
        if len(self.shape_px) != 2 or min(self.shape_px) < 4:
            raise ValueError(f"shape_px must be two integers >= 4 (rows, cols), got {self.shape_px}")
        if not self.body_median > 0 or not self.clip[1] > self.clip[0]:
            raise ValueError("body_median must be > 0 and clip must be (low, high) with high > low")

    @property
    def pixel_mm(self) -> tuple[float, float]:
        return (self.size_mm[0] / self.shape_px[0], self.size_mm[1] / self.shape_px[1])

    def to_dict(self) -> dict:
        return {"n_slices": int(self.n_slices), "size_mm": [float(v) for v in self.size_mm],
                "shape_px": [int(v) for v in self.shape_px], "body_median": float(self.body_median),
                "clip": [float(v) for v in self.clip]}

    @classmethod
    def from_dict(cls, d: dict) -> "CropSpec":
        return cls(n_slices=int(d.get("n_slices", 1)), size_mm=tuple(d.get("size_mm", DEFAULT_SIZE_MM)),
                   shape_px=tuple(int(v) for v in d.get("shape_px", DEFAULT_SHAPE_PX)),
                   body_median=float(d.get("body_median", 0.5)), clip=tuple(d.get("clip", (0.0, 1.0))))


@dataclass(frozen=True)
class CropGeometry:
    """Where a crop came from: enough to map a crop-pixel map (e.g. a hotspot) back onto the scan.

    ``centre_voxel`` is ``(k, i, j)`` (k = the disc's slice); ``angle_deg`` is the disc long
    axis against the image column axis, positive when its posterior end is superior;
    ``pixel_mm`` is the crop pixel (rows, cols); ``scan_pixel_mm`` the scan's (row, col) spacing.
    """

    slice_indices: tuple[int, ...]  # scan slice of each crop channel (edges repeated)
    centre_voxel: tuple[float, float, float]
    centre_mm: tuple[float, float, float]  # RAS
    angle_deg: float
    pixel_mm: tuple[float, float]
    shape_px: tuple[int, int]
    scan_pixel_mm: tuple[float, float]
    orientation_source: str  # "disc" (mask principal axis) or "bodies" (adjacent body centroids)

    def _axes(self) -> tuple[np.ndarray, np.ndarray]:
        a = math.radians(self.angle_deg)
        return np.array([math.cos(a), math.sin(a)]), np.array([-math.sin(a), math.cos(a)])  # n, e in (r, c) mm

    def pixel_to_voxel(self, rows, cols) -> tuple[np.ndarray, np.ndarray]:
        """Scan in-plane voxel coordinates ``(i, j)`` of crop pixel coordinates ``(rows, cols)``."""
        n, e = self._axes()
        h, w = self.shape_px
        du = (np.asarray(rows, dtype=float) - (h - 1) / 2) * self.pixel_mm[0]
        dv = (np.asarray(cols, dtype=float) - (w - 1) / 2) * self.pixel_mm[1]
        r = self.centre_voxel[1] * self.scan_pixel_mm[0] + du * n[0] + dv * e[0]
        c = self.centre_voxel[2] * self.scan_pixel_mm[1] + du * n[1] + dv * e[1]
        return r / self.scan_pixel_mm[0], c / self.scan_pixel_mm[1]

    def voxel_to_pixel(self, i, j) -> tuple[np.ndarray, np.ndarray]:
        """Crop pixel coordinates ``(rows, cols)`` of scan in-plane voxel coordinates ``(i, j)``."""
        n, e = self._axes()
        h, w = self.shape_px
        dr = np.asarray(i, dtype=float) * self.scan_pixel_mm[0] - self.centre_voxel[1] * self.scan_pixel_mm[0]
        dc = np.asarray(j, dtype=float) * self.scan_pixel_mm[1] - self.centre_voxel[2] * self.scan_pixel_mm[1]
        u = (dr * n[0] + dc * n[1]) / self.pixel_mm[0] + (h - 1) / 2
        v = (dr * e[0] + dc * e[1]) / self.pixel_mm[1] + (w - 1) / 2
        return u, v

    def to_scan_plane(self, values: np.ndarray, shape_rc: tuple[int, int]) -> np.ndarray:
        """Resample a crop-grid map ``(H, W)`` onto the scan slice grid ``shape_rc``; NaN outside the crop."""
        from scipy.ndimage import map_coordinates

        ii, jj = np.meshgrid(np.arange(shape_rc[0]), np.arange(shape_rc[1]), indexing="ij")
        u, v = self.voxel_to_pixel(ii, jj)
        out = map_coordinates(np.asarray(values, dtype=np.float64), [u, v], order=1, mode="constant", cval=np.nan)
        h, w = self.shape_px
        out[(u < -0.5) | (u > h - 0.5) | (v < -0.5) | (v > w - 0.5)] = np.nan
        return out.astype(np.float32)

    def to_dict(self) -> dict:
        return {"slice_indices": list(self.slice_indices), "centre_voxel": [round(v, 3) for v in self.centre_voxel],
                "centre_mm": [round(v, 3) for v in self.centre_mm], "angle_deg": round(self.angle_deg, 3),
                "pixel_mm": list(self.pixel_mm), "shape_px": list(self.shape_px),
                "scan_pixel_mm": list(self.scan_pixel_mm), "orientation_source": self.orientation_source}


@dataclass(frozen=True, eq=False)
class DiscCrop:
    """One disc's crop stack ``image`` (n_slices, H, W) float32 in [clip], and its label crop."""

    name: str  # "L4/L5"
    label: int  # VerSe disc id
    image: np.ndarray
    labels: np.ndarray  # (n_slices, H, W) int16, the label map sampled on the same grid (nearest)
    geometry: CropGeometry
    intensity_scale: float  # normalised = raw * intensity_scale (before clipping)
    normalisation: str  # "bodies" or "bands" (see module doc)
    outside_fraction: float = 0.0  # share of crop pixels sampled outside the image (zero-filled)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class DiscCrops:
    """Crops of every croppable disc (top to bottom), the discs skipped with reasons, and the spec."""

    crops: tuple[DiscCrop, ...]
    skipped: tuple[tuple[str, str], ...]  # (disc name, reason)
    spec: CropSpec = field(default_factory=CropSpec)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.crops]

    def __getitem__(self, name: str) -> DiscCrop:
        for c in self.crops:
            if c.name == name:
                return c
        raise KeyError(name)

    def __len__(self) -> int:
        return len(self.crops)

    def stack(self) -> np.ndarray:
        """All crop images as one float32 batch ``(n_discs, n_slices, H, W)`` in ``names`` order."""
        if not self.crops:
            h, w = self.spec.shape_px
            return np.zeros((0, self.spec.n_slices, h, w), dtype=np.float32)
        return np.stack([c.image for c in self.crops]).astype(np.float32)
