"""DICOM headers: pydicom helpers, file sniffing and per-image header records (no pixel values).

Part of :mod:`lumbarkit.io.dicom`. A :class:`Frame` is one 2D image (a single-frame file or one
frame of an enhanced multi-frame file) with the geometry read from its header: direction cosines,
position and pixel spacing in LPS millimetres, and the rescale slope/intercept.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

# One logger for the whole DICOM reader/writer, named after the public module (log output unchanged).
log = logging.getLogger("lumbarkit.io.dicom")

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
COSINE_TOLERANCE = 1e-3  # direction cosines: unit length, orthogonality, equality within a series


# ----------------------------------------------------------------------------- pydicom helpers


class _ToDebug(logging.Filter):
    """Demote pydicom's warnings (it logs and warns on every odd value) to lumbarkit debug logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        log.debug("pydicom: %s", record.getMessage())
        return False


@contextlib.contextmanager
def quiet_pydicom() -> Iterator[None]:
    pydicom_log = logging.getLogger("pydicom")
    flt = _ToDebug()
    pydicom_log.addFilter(flt)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        pydicom_log.removeFilter(flt)


def error_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _has_preamble(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def read_header(path: Path) -> Any:
    """Parse a DICOM file without loading large values (pixel data stays on disk)."""
    import pydicom

    with quiet_pydicom():
        return pydicom.dcmread(path, defer_size="64 KB", force=True)


def is_dicom_file(path: str | Path) -> bool:
    """True if ``path`` has the DICOM ``DICM`` preamble, or parses as a raw (preamble-less) DICOM dataset."""
    p = Path(path)
    if not p.is_file():
        return False
    if _has_preamble(p):
        return True
    try:
        with p.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    if len(head) < 8:
        return False
    # A raw dataset starts with a group 0x0002 or 0x0008 tag (little or big endian).
    if struct.unpack("<H", head[:2])[0] not in (0x0002, 0x0008) and struct.unpack(">H", head[:2])[0] not in (0x0002, 0x0008):
        return False
    try:
        ds = read_header(p)
    except Exception:
        return False
    return "SOPClassUID" in ds or ("Rows" in ds and "Columns" in ds)


def header_floats(value: Any, n: int) -> np.ndarray | None:
    """``n`` finite floats from a DICOM multi-value, or None if missing or malformed."""
    if value is None:
        return None
    try:
        items = value if hasattr(value, "__iter__") and not isinstance(value, (str, bytes)) else [value]
        values = np.array([float(v) for v in items], dtype=float)
    except (TypeError, ValueError):
        return None
    if values.shape != (n,) or not np.all(np.isfinite(values)):
        return None
    return values


def header_float(value: Any) -> float | None:
    vals = header_floats(value, 1)
    return None if vals is None else float(vals[0])


def header_text(ds: Any, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if not isinstance(value, (str, bytes)) and hasattr(value, "__iter__"):
        return "\\".join(str(v) for v in value).strip()
    return str(value).strip()


def sop_class(ds: Any) -> str:
    uid = ds.get("SOPClassUID")
    if not uid:
        meta = getattr(ds, "file_meta", None)
        uid = meta.get("MediaStorageSOPClassUID") if meta is not None else None
    return str(uid or "").strip()


def sop_class_name(uid: str) -> str:
    from pydicom.uid import UID

    return UID(uid).name if uid else ""


def classify(ds: Any) -> str:
    """"image", "non-image" (DICOMDIR, SR, SEG, presentation state, ...), "no-pixels" or "corrupt"."""
    from pydicom.uid import UID

    uid = sop_class(ds)
    name = sop_class_name(uid)
    image_class = "Image Storage" in name
    known_non_image = bool(uid) and name != uid and not image_class
    if any(k in ds for k in PIXEL_KEYWORDS):
        return "non-image" if known_non_image else "image"
    if len(ds) == 0 or not uid or not UID(uid).is_valid:
        return "corrupt"
    if "Rows" in ds or image_class:
        return "no-pixels"
    return "non-image"


# ----------------------------------------------------------------------------- header records


@dataclass
class Frame:
    """One 2D image of a series: a single-frame file or one frame of a multi-frame file."""

    path: Path
    frame: int | None  # index in a multi-frame file; None for a single-frame file
    header: Any  # pydicom Dataset without pixel values
    series_uid: str
    instance_uid: str
    rows: int
    cols: int
    iop: np.ndarray | None  # (6,) row then column direction cosines, LPS
    ipp: np.ndarray | None  # (3,) position of the first transmitted pixel, LPS mm
    spacing: np.ndarray | None  # (2,) mm between rows, between columns
    thickness: float | None  # nominal slice spacing/thickness in mm (single-slice series)
    slope: float
    intercept: float
    problem: str | None = None  # why the frame cannot be used, raised if its series is chosen


def group_value(groups: list[Any], sequence: str, keyword: str) -> Any:
    """Value of ``keyword`` inside functional group ``sequence``: per-frame item first, then shared."""
    for group in groups:
        if group is None or sequence not in group:
            continue
        seq = group.get(sequence)
        if seq and keyword in seq[0]:
            return seq[0].get(keyword)
    return None


def frames_from_header(path: Path, ds: Any) -> list[Frame]:
    series_uid = header_text(ds, "SeriesInstanceUID")
    sop_uid = header_text(ds, "SOPInstanceUID")
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    n_frames = int(header_float(ds.get("NumberOfFrames")) or 1)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is None and n_frames == 1:
        slope = header_float(ds.get("RescaleSlope"))
        intercept = header_float(ds.get("RescaleIntercept"))
        thickness = header_float(ds.get("SpacingBetweenSlices")) or header_float(ds.get("SliceThickness"))
        given = {k: str(ds.get(k) if ds.get(k) is not None else "").strip() != "" for k in ("RescaleSlope", "RescaleIntercept")}
        bad_rescale = (given["RescaleSlope"] and not slope) or (given["RescaleIntercept"] and intercept is None)
        return [
            Frame(
                path, None, ds, series_uid, sop_uid, rows, cols,
                header_floats(ds.get("ImageOrientationPatient"), 6), header_floats(ds.get("ImagePositionPatient"), 3),
                header_floats(ds.get("PixelSpacing"), 2), thickness,
                1.0 if slope is None else slope, 0.0 if intercept is None else intercept,
                f"{path.name} has an invalid RescaleSlope/RescaleIntercept" if bad_rescale else None,
            )
        ]
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    if per_frame is None or len(per_frame) != n_frames:
        problem = f"{path.name} is a multi-frame DICOM without per-frame geometry (functional groups); convert it to a classic series or NIfTI (e.g. dcm2niix)"
        return [Frame(path, 0, ds, series_uid, sop_uid, rows, cols, None, None, None, None, 1.0, 0.0, problem)]
    frames = []
    for index in range(n_frames):
        groups = [per_frame[index], shared]
        slope = header_float(group_value(groups, "PixelValueTransformationSequence", "RescaleSlope"))
        intercept = header_float(group_value(groups, "PixelValueTransformationSequence", "RescaleIntercept"))
        thickness = header_float(group_value(groups, "PixelMeasuresSequence", "SpacingBetweenSlices")) or header_float(
            group_value(groups, "PixelMeasuresSequence", "SliceThickness")
        )
        frames.append(
            Frame(
                path, index, ds, series_uid, f"{sop_uid}#{index}", rows, cols,
                header_floats(group_value(groups, "PlaneOrientationSequence", "ImageOrientationPatient"), 6),
                header_floats(group_value(groups, "PlanePositionSequence", "ImagePositionPatient"), 3),
                header_floats(group_value(groups, "PixelMeasuresSequence", "PixelSpacing"), 2), thickness,
                1.0 if slope is None else slope, 0.0 if intercept is None else intercept,
            )
        )
    return frames


def slice_normal(iop: np.ndarray) -> np.ndarray:
    normal = np.cross(iop[:3], iop[3:])
    return normal / np.linalg.norm(normal)


PLANES = ("sagittal", "coronal", "axial")  # the LPS axis a slice normal runs along: x, y, z


def acquisition_plane(iop: np.ndarray) -> str:
    """"sagittal", "coronal" or "axial": the patient axis closest to the slice normal of an ImageOrientationPatient."""
    return PLANES[int(np.argmax(np.abs(slice_normal(np.asarray(iop, dtype=float)))))]


def iop_problem(iop: np.ndarray) -> str | None:
    row, col = iop[:3], iop[3:]
    if abs(np.linalg.norm(row) - 1) > 1e-2 or abs(np.linalg.norm(col) - 1) > 1e-2 or abs(row @ col) > 1e-2:
        return "its ImageOrientationPatient is not two orthogonal unit vectors"
    return None
