"""Patient-space geometry of RSNA series: label points in mm, and axial slices assigned to disc levels.

DICOM positions are LPS; lumbarkit's scans and levels are RAS (x and y negated).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

LPS_RAS = np.array([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class ImagePlane:
    """One DICOM image's plane: top-left pixel centre (RAS mm), row and column directions (RAS), spacing (mm)."""

    path: Path
    instance: int
    origin: np.ndarray  # RAS mm of pixel (x=0, y=0)
    along_x: np.ndarray  # RAS unit vector of increasing column index x
    along_y: np.ndarray  # RAS unit vector of increasing row index y
    spacing_xy: tuple[float, float]  # mm between columns, between rows
    frame_of_reference: str

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.along_x, self.along_y)

    def to_ras(self, x: float, y: float) -> np.ndarray:
        """RAS mm of the image point (x, y) in pixels (column, row)."""
        return self.origin + x * self.spacing_xy[0] * self.along_x + y * self.spacing_xy[1] * self.along_y

    def to_pixel(self, ras: np.ndarray) -> tuple[float, float, float]:
        """(x, y) pixel coordinates of a RAS point projected on the plane, and its signed distance (mm) from it."""
        d = np.asarray(ras, dtype=float) - self.origin
        return float(d @ self.along_x / self.spacing_xy[0]), float(d @ self.along_y / self.spacing_xy[1]), float(d @ self.normal)


def read_plane(path: str | Path) -> ImagePlane | None:
    """The plane of one single-frame DICOM image (header only, read by lumbarkit's DICOM header reader), or None
    when the file is damaged, not an image or lacks geometry (the caller reports it; a series goes on without it)."""
    from lumbarkit.io.dicom.headers import classify, frames_from_header, header_float, header_text, read_header

    try:
        ds = read_header(Path(path))
        frames = frames_from_header(Path(path), ds) if classify(ds) == "image" else []
    except Exception:  # noqa: BLE001 - a damaged file only loses its plane
        return None
    f = frames[0] if len(frames) == 1 else None
    instance = header_float(ds.get("InstanceNumber"))
    if f is None or f.ipp is None or f.iop is None or f.spacing is None or instance is None:
        return None
    return ImagePlane(Path(path), int(instance), np.asarray(f.ipp, float) * LPS_RAS, np.asarray(f.iop[:3], float) * LPS_RAS,
                      np.asarray(f.iop[3:], float) * LPS_RAS, (float(f.spacing[1]), float(f.spacing[0])),
                      header_text(ds, "FrameOfReferenceUID"))


def series_planes(source) -> list[ImagePlane]:
    """The readable planes of a series (its folder of ``*.dcm`` files, or a list of its files), in instance order."""
    files = sorted(Path(source).glob("*.dcm")) if isinstance(source, (str, Path)) else list(source)
    planes = [p for p in (read_plane(f) for f in files) if p is not None]
    return sorted(planes, key=lambda p: p.instance)


def assign_axial(planes: list[ImagePlane], discs: dict[str, np.ndarray], frame_of_reference: str = "") -> tuple[dict[str, ImagePlane], str | None]:
    """For each level with a disc centre (RAS mm): the axial image whose plane passes nearest to it.

    Same frame of reference: the signed distance of each disc centre from each plane, in patient mm; a level is
    assigned when its nearest plane is within half the median gap between discs (the axial stacks may not cover every
    level). Different frames (or none stated): the planes' positions along their normal are matched to the discs'
    superior-inferior positions by rank and extent instead, and a note says so."""
    if not planes or not discs:
        return {}, None
    names = sorted(discs, key=lambda n: -discs[n][2])  # superior first
    gap = float(np.median(np.abs(np.diff([discs[n][2] for n in names])))) if len(names) > 1 else 40.0
    same = bool(frame_of_reference) and all(p.frame_of_reference == frame_of_reference for p in planes)
    out: dict[str, ImagePlane] = {}
    if same:
        for n in names:
            dist = [abs(p.to_pixel(discs[n])[2]) for p in planes]
            best = int(np.argmin(dist))
            if dist[best] <= gap / 2:
                out[n] = planes[best]
        return out, None
    # fallback: superior-inferior order and extent of the axial positions against the disc positions
    height = np.array([p.origin[2] for p in planes])
    s = np.array([discs[n][2] for n in names])
    if len(names) > 1 and np.ptp(height) > 0:
        target = height.min() + (s - s.min()) / max(np.ptp(s), 1e-6) * np.ptp(height)
    else:
        target = np.full(len(names), np.median(height))
    for n, t in zip(names, target):
        out[n] = planes[int(np.argmin(np.abs(height - t)))]
    return out, "axial series in another frame of reference: slices matched to levels by order and extent, not in mm"
