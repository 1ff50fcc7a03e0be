"""DICOM reading: one chosen series into a canonical :class:`~lumbarkit.scan.Scan`.

Part of :mod:`lumbarkit.io.dicom` (see its docstring for the method). Slices are sorted by
ImagePositionPatient projected on the slice normal, the LPS affine is built from the header
geometry and converted to RAS, and only the chosen series' pixels are decoded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from lumbarkit.errors import InputError
from lumbarkit.io.dicom.headers import (
    COSINE_TOLERANCE,
    LPS_TO_RAS,
    Frame,
    error_reason,
    header_float,
    header_text,
    iop_problem,
    quiet_pydicom,
    slice_normal,
)
from lumbarkit.io.dicom.series import (
    Series,
    choose_series,
    collect_frames,
    group_series,
)
from lumbarkit.io.limits import check_voxels
from lumbarkit.scan import Scan, ScanMetadata

# One logger for the whole DICOM reader/writer, named after the public module (log output unchanged).
log = logging.getLogger("lumbarkit.io.dicom")

POSITION_TOLERANCE_MM = 0.02  # slice positions: absolute part of the tolerance (mm)
POSITION_TOLERANCE_REL = 0.02  # slice positions: fraction of the slice step


def _series_geometry(series: Series) -> tuple[list[Frame], np.ndarray]:
    """Frames sorted along the slice normal and the LPS affine of stack index (slice, row, col)."""
    frames = series.frames
    name = f"series '{series.description or series.uid}'"
    for frame in frames:
        if frame.problem:
            raise InputError(frame.problem)
        missing = [k for k, v in (("ImageOrientationPatient", frame.iop), ("ImagePositionPatient", frame.ipp), ("PixelSpacing", frame.spacing)) if v is None]
        if missing:
            raise InputError(
                f"{frame.path.name} has no usable {', '.join(missing)}: lumbarkit needs DICOM patient geometry to measure in mm "
                "(for a screenshot, export a PNG and pass --spacing)"
            )
        problem = iop_problem(frame.iop)
        if problem:
            raise InputError(f"{frame.path.name}: {problem}")
        if np.any(frame.spacing <= 0):
            raise InputError(f"{frame.path.name} has a non-positive PixelSpacing {list(frame.spacing)}")
        if frame.rows <= 0 or frame.cols <= 0:
            raise InputError(f"{frame.path.name} has no Rows/Columns")
    first = frames[0]
    if len({(f.rows, f.cols) for f in frames}) > 1:
        raise InputError(f"{name} mixes image sizes {sorted({(f.rows, f.cols) for f in frames})}; choose another series")
    if any(not np.allclose(f.iop, first.iop, atol=COSINE_TOLERANCE) for f in frames):
        raise InputError(f"{name} mixes image orientations (a localizer?); choose another series with --series")
    if any(not np.allclose(f.spacing, first.spacing, rtol=1e-4) for f in frames):
        raise InputError(f"{name} mixes pixel spacings; choose another series")
    row_cos = first.iop[:3] / np.linalg.norm(first.iop[:3])
    col_cos = first.iop[3:] / np.linalg.norm(first.iop[3:])
    normal = slice_normal(first.iop)
    positions = np.array([f.ipp for f in frames])
    proj = positions @ normal
    order = np.argsort(proj, kind="stable")
    frames = [frames[i] for i in order]
    positions, proj = positions[order], proj[order]
    n = len(frames)
    if n == 1:
        step = normal * (first.thickness if first.thickness and first.thickness > 0 else 1.0)
    else:
        gaps = np.diff(proj)
        median = float(np.median(gaps))
        tol = max(POSITION_TOLERANCE_MM, POSITION_TOLERANCE_REL * median)
        if np.any(gaps < tol):
            n_pos = len(np.unique(np.round(proj / tol)))
            raise InputError(
                f"{name} has several images at the same slice position ({n} images, about {n_pos} positions): "
                "several echoes, phases or acquisitions in one series are not supported"
            )
        if np.any(np.abs(gaps - median) > tol):
            raise InputError(
                f"{name} has non-uniform slice spacing ({gaps.min():.3g} to {gaps.max():.3g} mm): a missing slice or mixed stacks"
            )
        step = (positions[-1] - positions[0]) / (n - 1)
        expected = positions[0] + np.arange(n)[:, None] * step
        if np.max(np.linalg.norm(positions - expected, axis=1)) > tol:
            raise InputError(f"{name} has slice positions that do not lie on a line; cannot build a regular volume")
    lps = np.eye(4)
    lps[:3, 0] = step
    lps[:3, 1] = col_cos * first.spacing[0]  # stack axis 1 = image rows, along the column cosine
    lps[:3, 2] = row_cos * first.spacing[1]  # stack axis 2 = image columns, along the row cosine
    lps[:3, 3] = positions[0]
    return frames, lps


def set_transfer_syntax(ds: Any) -> None:
    """Give a raw dataset (no file meta, e.g. ACR-NEMA style) the transfer syntax it was read with."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import (
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
    )

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = ds.original_encoding
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def _decode(path: Path) -> tuple[np.ndarray, str]:
    import pydicom

    with quiet_pydicom():
        try:
            ds = pydicom.dcmread(path, force=True)
            set_transfer_syntax(ds)
            pixels = ds.pixel_array
        except Exception as exc:
            reason = error_reason(exc).split(" - ")[0]
            raise InputError(f"cannot decode the pixels of DICOM file {path.name} (truncated, corrupt or unsupported compression): {reason}") from None
    if int(ds.get("SamplesPerPixel") or 1) != 1:
        raise InputError(f"{path.name} is a colour image; lumbarkit needs grayscale MR images")
    return np.asarray(pixels), header_text(ds, "PhotometricInterpretation").upper()


def _load_pixels(frames: list[Frame]) -> np.ndarray:
    """Rescaled pixel values (RescaleSlope/Intercept applied) stacked as (slices, rows, cols) float32."""
    out = np.empty((len(frames), frames[0].rows, frames[0].cols), dtype=np.float32)
    slots: dict[Path, list[int]] = {}
    for index, frame in enumerate(frames):
        slots.setdefault(frame.path, []).append(index)
    monochrome1 = False
    for path, indices in slots.items():
        pixels, photometric = _decode(path)
        monochrome1 |= photometric == "MONOCHROME1"
        for index in indices:
            frame = frames[index]
            image = pixels if frame.frame is None else (pixels[frame.frame] if pixels.ndim == 3 else pixels)
            if image.shape != (frame.rows, frame.cols):
                raise InputError(f"{path.name}: pixel array shape {image.shape} does not match Rows x Columns {frame.rows} x {frame.cols}")
            out[index] = image.astype(np.float64) * frame.slope + frame.intercept
    if monochrome1:  # displayed inverted: store as MONOCHROME2 (bright = high signal)
        out = out.max() + out.min() - out
    return out


def _metadata(series: Series) -> ScanMetadata:
    ds = series.header
    field = header_float(ds.get("MagneticFieldStrength"))
    if field is not None and field > 20:  # some old files store gauss
        field = field / 10000.0
    return ScanMetadata(
        modality=header_text(ds, "Modality") or "MR",
        sequence=series.sequence,
        series_description=series.description,
        manufacturer=header_text(ds, "Manufacturer"),
        field_strength_t=field,
        source_format="dicom",
        series_uid=series.uid,
        frame_of_reference_uid=header_text(ds, "FrameOfReferenceUID"),
    )


def read_dicom(path: str | Path, series: str | None = None, require_sagittal: bool = True) -> Scan:
    """Read one DICOM series into a canonical :class:`Scan` (RAS mm affine, rescaled values).

    Parameters
    ----------
    path : a folder (searched recursively) or a single DICOM file.
    series : SeriesInstanceUID, or SeriesDescription (case-insensitive, exact or substring).
        Without it a lone series is used; in a study a sagittal T2 is preferred, then T1.
    require_sagittal : refuse series that are not sagittal (slice normal mostly along patient x).

    Raises
    ------
    InputError : unreadable, damaged or unusable input (one-line message).
    SeriesSelectionError : several series fit and none was chosen, or ``series`` matches none/several.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"input not found: {p}")
    frames, where = collect_frames(p)
    all_series = group_series(frames)
    chosen = choose_series(all_series, series, require_sagittal, where)
    log.info("using DICOM series %s", chosen.label())
    ordered, lps = _series_geometry(chosen)
    check_voxels((len(ordered), ordered[0].rows, ordered[0].cols), f"series '{chosen.description or chosen.uid}'")  # one frame a slice
    data = _load_pixels(ordered)
    if not np.all(np.isfinite(data)):
        raise InputError(f"series '{chosen.description or chosen.uid}' holds non-finite voxel values (NaN or infinity)")
    return Scan.from_array(data, LPS_TO_RAS @ lps, _metadata(chosen))
