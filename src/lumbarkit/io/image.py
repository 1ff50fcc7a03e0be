"""2D sagittal images (PNG/JPEG/TIFF, 8/16-bit, gray or RGB) read as one-slice scans."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from lumbarkit.errors import InputError
from lumbarkit.scan import Scan, ScanMetadata

NOMINAL_SLICE_THICKNESS_MM = 1.0  # a 2D image has no through-plane size; only used for the affine


def single_slice_affine(row_mm: float, col_mm: float, slice_mm: float = NOMINAL_SLICE_THICKNESS_MM) -> np.ndarray:
    """RAS affine of a canonical one-slice scan: rows run inferior, columns posterior."""
    affine = np.zeros((4, 4))
    affine[0, 0] = -slice_mm  # slices towards patient left (-x in RAS)
    affine[2, 1] = -row_mm  # rows towards inferior (-z)
    affine[1, 2] = -col_mm  # cols towards posterior (-y)
    affine[3, 3] = 1.0
    return affine


def _check_spacing(spacing_mm: Sequence[float] | None, name: str) -> tuple[float, float]:
    if spacing_mm is None:
        raise InputError(f"{name} is a 2D image without pixel spacing: give it with --spacing ROW_MM COL_MM")
    values = tuple(float(v) for v in spacing_mm)
    if len(values) != 2 or not all(np.isfinite(values)) or min(values) <= 0 or max(values) > 10:
        raise InputError(f"pixel spacing must be two positive numbers in mm (ROW_MM COL_MM), got {spacing_mm}")
    return values  # type: ignore[return-value]


def read_image(path: Path, spacing_mm: Sequence[float] | None) -> Scan:
    """Read a 2D image as a one-slice sagittal scan (head up, anterior left, as displayed).

    Parameters
    ----------
    path : PNG, JPEG or TIFF file, 8- or 16-bit, gray or RGB(A).
    spacing_mm : (row_mm, col_mm) pixel spacing in millimetres.
    """
    row_mm, col_mm = _check_spacing(spacing_mm, path.name)
    import imageio.v3 as iio

    try:
        pixels = np.asarray(iio.imread(path))
    except Exception as exc:
        raise InputError(f"cannot read image {path.name}: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else 'corrupt file'}") from None
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4):
        from skimage.color import rgb2gray

        pixels = rgb2gray(pixels[..., :3]) * (np.iinfo(pixels.dtype).max if pixels.dtype.kind in "ui" else 1.0)
    elif pixels.ndim == 3 and pixels.shape[-1] == 2:  # gray + alpha
        pixels = pixels[..., 0]
    if pixels.ndim != 2:
        raise InputError(f"{path.name} has shape {pixels.shape}; expected one gray or RGB 2D image")
    if min(pixels.shape) < 16:
        raise InputError(f"{path.name} is too small ({pixels.shape[0]}x{pixels.shape[1]} pixels) to be a sagittal MRI")
    data = pixels.astype(np.float32)[None]
    if not np.all(np.isfinite(data)):
        raise InputError(f"{path.name} holds non-finite pixel values")
    meta = ScanMetadata(source_format="image")
    return Scan(np.ascontiguousarray(data), single_slice_affine(row_mm, col_mm), meta)
