"""Read a user's label map (VerSe ids) onto a scan's grid: a NIfTI/MHA/NRRD volume, or a PNG for a 2D image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lumbarkit.errors import InputError
from lumbarkit.results.labelmap import LabelMap
from lumbarkit.scan import Scan


def read_label_map(path: Path, scan: Scan, spacing_mm=None) -> LabelMap:
    """Read a VerSe label map on ``scan``'s grid: a NIfTI/MHA/NRRD volume, or a PNG for a 2D image.

    Raises
    ------
    InputError : unreadable, not integer, or on another grid than the scan (voxel centres more than a tenth of a
        voxel apart).
    """
    from lumbarkit.io.readers import IMAGE_SUFFIXES, VOLUME_SUFFIXES, load_scan

    if not path.exists():
        raise InputError(f"label map not found: {path}")
    name = path.name.lower()
    if name.endswith(IMAGE_SUFFIXES):
        import imageio.v3 as iio

        try:
            pixels = np.asarray(iio.imread(path))
        except Exception as exc:
            raise InputError(f"cannot read label image {path.name}: {type(exc).__name__}") from None
        if pixels.ndim == 3 and pixels.shape[-1] in (2, 3, 4) and np.all(pixels[..., :3] == pixels[..., :1]):
            pixels = pixels[..., 0]
        if pixels.ndim != 2:
            raise InputError(f"label image {path.name} has shape {pixels.shape}; expected one gray image of label ids")
        if (1,) + pixels.shape != scan.shape:
            raise InputError(f"label image {path.name} is {pixels.shape[0]}x{pixels.shape[1]}; the input is {scan.shape[1]}x{scan.shape[2]}")
        return LabelMap.on_grid_of(scan, pixels[None].astype(np.int32))
    if not name.endswith(VOLUME_SUFFIXES):
        raise InputError(f"unsupported label map {path.name}: expected .nii/.nii.gz, .mha/.mhd, .nrrd or (for 2D input) .png")
    label_scan = load_scan(path, spacing_mm=spacing_mm)
    if label_scan.shape != scan.shape:
        raise InputError(f"label map {path.name} has shape {label_scan.shape} on the canonical grid; the input has {scan.shape}")
    corners = np.array([[k, i, j] for k in (0, scan.shape[0] - 1) for i in (0, scan.shape[1] - 1) for j in (0, scan.shape[2] - 1)])
    drift = float(np.abs(scan.voxel_to_mm(corners) - label_scan.voxel_to_mm(corners)).max())
    if drift > 0.1 * min(scan.spacing_mm):
        raise InputError(f"label map {path.name} is not on the input's grid (its voxels are up to {drift:.2g} mm away)")
    values = label_scan.array
    if np.any(values != np.round(values)):
        raise InputError(f"label map {path.name} holds non-integer values: expected VerSe label ids")
    return LabelMap.on_grid_of(scan, np.round(values).astype(np.int32))
