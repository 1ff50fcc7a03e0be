"""``load_scan``: one entry point for DICOM folders/files, NIfTI, MHA/MHD, NRRD and 2D images."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from lumbarkit.errors import InputError
from lumbarkit.scan import Scan

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in VOLUME_SUFFIXES + IMAGE_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def load_scan(
    path: str | Path,
    *,
    spacing_mm: Sequence[float] | None = None,
    series: str | None = None,
    require_sagittal: bool = True,
) -> Scan:
    """Read a scan into lumbarkit's canonical sagittal orientation.

    Parameters
    ----------
    path : a DICOM series/study folder or DICOM file, a NIfTI/MHA/MHD/NRRD volume, or a 2D
        PNG/JPEG/TIFF image.
    spacing_mm : (row_mm, col_mm) pixel spacing; required for 2D images, an InputError for any other input.
    series : SeriesInstanceUID or (part of a) SeriesDescription choosing one series of a DICOM study (an
        InputError for a single-scan file).
    require_sagittal : refuse a DICOM study that has no sagittal series.

    Raises
    ------
    InputError, SeriesSelectionError : with a one-line message, for any unusable input.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"input not found: {p}")
    suffix = _suffix(p)
    if spacing_mm is not None and (p.is_dir() or suffix not in IMAGE_SUFFIXES):
        raise InputError("--spacing is for a 2D image (PNG/JPEG/TIFF); a DICOM or NIfTI/MHA/NRRD scan carries its own spacing")
    if series is not None and not p.is_dir() and suffix in VOLUME_SUFFIXES + IMAGE_SUFFIXES:
        raise InputError("--series chooses a series of a DICOM study; this input holds one scan")
    if p.is_dir():
        from lumbarkit.io.dicom import read_dicom

        return read_dicom(p, series=series, require_sagittal=require_sagittal)
    if p.stat().st_size == 0:
        raise InputError(f"input file is empty: {p}")
    if suffix in VOLUME_SUFFIXES:
        from lumbarkit.io.volume import read_volume

        return read_volume(p)
    if suffix in IMAGE_SUFFIXES:
        from lumbarkit.io.image import read_image

        return read_image(p, spacing_mm=spacing_mm)
    from lumbarkit.io.dicom import read_dicom

    if is_dicom_path(p):
        return read_dicom(p, series=series, require_sagittal=require_sagittal)
    raise InputError(
        f"unsupported input {p.name}: expected a DICOM folder or file, .nii/.nii.gz, .mha/.mhd, .nrrd or a PNG/JPEG/TIFF image"
    )


def is_dicom_path(path: str | Path) -> bool:
    """A DICOM folder, or a file with a DICOM suffix or DICOM content."""
    from lumbarkit.io.dicom import is_dicom_file
    from lumbarkit.io.dicom.series import DICOM_SUFFIXES

    p = Path(path)
    return p.is_dir() or p.suffix.lower() in DICOM_SUFFIXES or (p.is_file() and is_dicom_file(p))
