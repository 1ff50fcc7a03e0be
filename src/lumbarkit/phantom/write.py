"""``write_phantom``: save a phantom as DICOM, NIfTI, MHA or NRRD with its label map and truth JSON."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import numpy as np

log = logging.getLogger(__name__)
from lumbarkit.phantom.truth import Phantom


def _storage(array: np.ndarray, affine: np.ndarray, axcodes: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Re-store a canonical array in other axis codes (e.g. ``"RAS"``), adjusting the affine."""
    if not axcodes:
        return array, affine
    import nibabel.orientations as nio

    transform = nio.ornt_transform(nio.io_orientation(affine), nio.axcodes2ornt(tuple(axcodes)))
    return nio.apply_orientation(array, transform), affine @ nio.inv_ornt_aff(transform, array.shape)


def write_phantom(
    phantom: Phantom,
    folder: str | Path,
    fmt: str = "dicom",
    patient: Mapping[str, str] | None = None,
    *,
    name: str = "phantom",
    axcodes: str | None = None,
) -> dict[str, Path]:
    """Write a phantom's image and its label map into ``folder``.

    Parameters
    ----------
    fmt : ``"dicom"`` (series in ``<name>_dicom/`` via :func:`lumbarkit.report.dicom.write_dicom_series`),
        ``"nifti"`` (``<name>_image.nii.gz``), ``"mha"`` or ``"nrrd"``.
    patient : passed to the DICOM writer (ignored for volume formats, which hold no patient fields).
    axcodes : volume formats only: store the arrays in these axis codes (e.g. ``"RAS"``) instead of
        the canonical ``"LIP"``, to exercise readers; the geometry is unchanged.

    Returns ``{"image": path, "label": path}``; the label map is always ``<name>_label.nii.gz``.
    """
    from lumbarkit.io.volume import write_itk, write_nifti

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    scan = phantom.scan
    if fmt == "dicom":
        try:
            from lumbarkit.report.dicom import write_dicom_series
        except ImportError as exc:
            raise RuntimeError("DICOM writing needs lumbarkit.report.dicom.write_dicom_series, not available in this build") from exc
        image = out / f"{name}_dicom"
        write_dicom_series(scan, image, series_description=scan.metadata.series_description, patient=patient)
    elif fmt in ("nifti", "mha", "nrrd"):
        if patient:
            log.debug("patient fields are ignored for %s output", fmt)
        array, affine = _storage(scan.array, scan.affine, axcodes)
        if fmt == "nifti":
            image = write_nifti(array, affine, out / f"{name}_image.nii.gz")
        else:
            image = write_itk(array, affine, out / f"{name}_image.{fmt}")
    else:
        raise ValueError(f"fmt must be 'dicom', 'nifti', 'mha' or 'nrrd', got {fmt!r}")
    lab_array, lab_affine = _storage(phantom.labels.astype(np.int16), scan.affine, axcodes if fmt != "dicom" else None)
    label = write_nifti(lab_array, lab_affine, out / f"{name}_label.nii.gz")
    log.info("wrote phantom %s and %s", image, label)
    return {"image": image, "label": label}
