"""The source series of a scan, found again by SeriesInstanceUID, and its images matched to the scan's slices."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lumbarkit.errors import InputError
from lumbarkit.scan import Scan

GRID_TOLERANCE_VOXELS = 0.1  # a source image must sit this close (in voxels) to a slice of the scan grid

# Type 2 attributes of the Patient and General Study modules that derived objects (SEG, SR) copy from
# their source. De-identification (PS3.15 Basic Application Level Confidentiality Profile) may empty
# or remove them; a derived object then carries them present and empty, as the standard allows.
TYPE2_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                "ReferringPhysicianName", "StudyID", "AccessionNumber")
# Identifiers of the site and staff that highdicom would copy into a derived object's Contributing Equipment
# Sequence; they are not part of the patient/study modules a derived object must copy, so they are dropped.
SITE_IDENTIFIERS = ("InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName",
                    "OperatorsName", "PerformingPhysicianName")

if TYPE_CHECKING:  # pragma: no cover
    import pydicom


def source_datasets(source: Path, series_uid: str, headers_only: bool = False) -> list["pydicom.Dataset"]:
    """The DICOM instances (with pixel data unless ``headers_only``) of series ``series_uid`` under ``source``.

    ``source`` is a DICOM file or a folder searched recursively (as :func:`lumbarkit.io.dicom.read_dicom`
    does; non-image objects such as earlier SEG/SR files are ignored). Datasets come in file-path order.

    Raises
    ------
    InputError : ``source`` is missing or holds no such series (one-line message).
    """
    import pydicom

    from lumbarkit.io.dicom.headers import error_reason, quiet_pydicom
    from lumbarkit.io.dicom.read import set_transfer_syntax
    from lumbarkit.io.dicom.series import collect_frames, group_series, listing

    path = Path(source)
    uid = str(series_uid or "").strip()
    if not uid:
        raise InputError("the scan has no DICOM SeriesInstanceUID (was it read from DICOM?); cannot reference its source series")
    if not path.exists():
        raise InputError(f"DICOM source not found: {path}")
    frames, where = collect_frames(path)
    matching = [s for s in group_series(frames) if s.uid == uid]
    if not matching:
        found = group_series(frames)
        raise InputError(f"DICOM series {uid} not found in {where}; it holds {len(found)} other series: {listing(found)}")
    files: list[Path] = []
    for frame in matching[0].frames:
        if frame.path not in files:
            files.append(frame.path)
    out = []
    for file in sorted(files):
        with quiet_pydicom():
            try:
                ds = pydicom.dcmread(file, force=True, stop_before_pixels=headers_only)
            except Exception as exc:
                raise InputError(f"cannot read DICOM file {file.name}: {error_reason(exc)}") from None
        if not headers_only:
            set_transfer_syntax(ds)
        out.append(ds)
    return out


def export_copy(ds: "pydicom.Dataset") -> "pydicom.Dataset":
    """Prepare ``ds`` (an in-memory copy read for export, never written back) as the source of a SEG/SR.

    Every missing :data:`TYPE2_COPIED` attribute is added empty, so a de-identified source still gives a
    valid object, and the :data:`SITE_IDENTIFIERS` are removed. Returns ``ds``.
    """
    for keyword in TYPE2_COPIED:
        if keyword not in ds:
            setattr(ds, keyword, None)
    for keyword in SITE_IDENTIFIERS:
        if keyword in ds:
            delattr(ds, keyword)
    return ds


def match_frames(scan: Scan, datasets: list[Any], shape: tuple[int, int, int], source_affine: np.ndarray) -> list[list[int | None]]:
    """For each dataset, the slice index (on the source grid) of each of its frames; None = off the scan's slices.

    Raises InputError when an image's orientation, spacing, size or in-plane position differs from the grid.
    """
    from lumbarkit.io.dicom.headers import (
        COSINE_TOLERANCE,
        LPS_TO_RAS,
        frames_from_header,
    )

    lps = LPS_TO_RAS @ np.asarray(source_affine, dtype=float)
    row_step, col_step = lps[:3, 1], lps[:3, 2]  # grid axis 1 = image rows (column cosine), axis 2 = image columns
    row_mm, col_mm = float(np.linalg.norm(row_step)), float(np.linalg.norm(col_step))
    inverse = np.linalg.inv(lps)
    n, rows, cols = shape
    what = f"series {scan.metadata.series_uid}"
    result: list[list[int | None]] = []
    for ds in datasets:
        name = Path(str(getattr(ds, "filename", "") or "image")).name
        slots: list[int | None] = []
        for frame in frames_from_header(Path(name), ds):
            if frame.problem:
                raise InputError(frame.problem)
            if frame.iop is None or frame.ipp is None or frame.spacing is None:
                raise InputError(f"{name} of {what} has no patient geometry; cannot match it to the scan grid")
            if (frame.rows, frame.cols) != (rows, cols):
                raise InputError(f"{name} of {what} is {frame.rows} x {frame.cols} pixels but the scan grid is {rows} x {cols}: not the scan's source series")
            if not (
                np.allclose(frame.iop[:3], col_step / col_mm, atol=COSINE_TOLERANCE)
                and np.allclose(frame.iop[3:], row_step / row_mm, atol=COSINE_TOLERANCE)
            ):
                raise InputError(f"{name} of {what} has another image orientation than the scan grid: not the scan's source series")
            if not np.allclose(frame.spacing, (row_mm, col_mm), rtol=1e-3):
                raise InputError(f"{name} of {what} has pixel spacing {list(frame.spacing)} but the scan grid {[row_mm, col_mm]}")
            k, i, j = (inverse @ np.append(frame.ipp, 1.0))[:3]
            if max(abs(i), abs(j), abs(k - round(k))) > GRID_TOLERANCE_VOXELS:
                raise InputError(f"{name} of {what} lies off the scan grid (voxel position {k:.2f}, {i:.2f}, {j:.2f}); the scan does not match its source series")
            slots.append(int(round(k)) if 0 <= round(k) < n else None)
        result.append(slots)
    return result
