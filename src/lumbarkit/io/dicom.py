"""DICOM reading (pydicom) into canonical scans, and a classic MR DICOM series writer.

Reading
-------
``read_dicom`` takes a folder (searched recursively) or one file. Headers are read first
(pixel values deferred) to group images by SeriesInstanceUID and choose one series; only that
series' pixels are decoded. Slices are sorted by ImagePositionPatient projected on the slice
normal (never by file name or InstanceNumber), the LPS affine is built from
ImageOrientationPatient / PixelSpacing / ImagePositionPatient and converted to RAS, and
``Scan.from_array`` reorients the stack to the canonical (Left, Inferior, Posterior) axes.
Classic single-frame images and enhanced multi-frame images (per-frame functional groups)
are supported.

Damaged files are never skipped silently: a file that claims to be DICOM (``DICM`` preamble
or a .dcm/.dicom/.ima name) but cannot be parsed, or an image whose header is cut short (no
pixel data), stops reading even when it is not in the chosen series, because its series
cannot be trusted. A file whose pixel data are truncated is found when its series' pixels are
decoded; an error names it rather than dropping a slice. Non-image DICOM objects (DICOMDIR,
structured reports, presentation states) are ignored.

No identifying attribute (names, ids, dates, institutions) is copied into the Scan.
"""

from __future__ import annotations

import contextlib
import logging
import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from lumbarkit.errors import InputError, SeriesSelectionError
from lumbarkit.scan import Scan, ScanMetadata

__all__ = ["is_dicom_file", "read_dicom", "write_dicom_series", "guess_sequence"]

log = logging.getLogger(__name__)

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
COSINE_TOLERANCE = 1e-3  # direction cosines: unit length, orthogonality, equality within a series
POSITION_TOLERANCE_MM = 0.02  # slice positions: absolute part of the tolerance (mm)
POSITION_TOLERANCE_REL = 0.02  # slice positions: fraction of the slice step
MAX_LISTED = 8  # series listed in one error message


# ----------------------------------------------------------------------------- pydicom helpers


class _ToDebug(logging.Filter):
    """Demote pydicom's warnings (it logs and warns on every odd value) to lumbarkit debug logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        log.debug("pydicom: %s", record.getMessage())
        return False


@contextlib.contextmanager
def _quiet_pydicom() -> Iterator[None]:
    pydicom_log = logging.getLogger("pydicom")
    flt = _ToDebug()
    pydicom_log.addFilter(flt)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        pydicom_log.removeFilter(flt)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _has_preamble(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _read_header(path: Path) -> Any:
    """Parse a DICOM file without loading large values (pixel data stays on disk)."""
    import pydicom

    with _quiet_pydicom():
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
        ds = _read_header(p)
    except Exception:
        return False
    return "SOPClassUID" in ds or ("Rows" in ds and "Columns" in ds)


def _floats(value: Any, n: int) -> np.ndarray | None:
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


def _float(value: Any) -> float | None:
    vals = _floats(value, 1)
    return None if vals is None else float(vals[0])


def _text(ds: Any, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if not isinstance(value, (str, bytes)) and hasattr(value, "__iter__"):
        return "\\".join(str(v) for v in value).strip()
    return str(value).strip()


def _sop_class(ds: Any) -> str:
    uid = ds.get("SOPClassUID")
    if not uid:
        meta = getattr(ds, "file_meta", None)
        uid = meta.get("MediaStorageSOPClassUID") if meta is not None else None
    return str(uid or "").strip()


def _sop_class_name(uid: str) -> str:
    from pydicom.uid import UID

    return UID(uid).name if uid else ""


def _classify(ds: Any) -> str:
    """"image", "non-image" (DICOMDIR, SR, SEG, presentation state, ...), "no-pixels" or "corrupt"."""
    from pydicom.uid import UID

    uid = _sop_class(ds)
    name = _sop_class_name(uid)
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
class _Frame:
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


def _group_value(groups: list[Any], sequence: str, keyword: str) -> Any:
    """Value of ``keyword`` inside functional group ``sequence``: per-frame item first, then shared."""
    for group in groups:
        if group is None or sequence not in group:
            continue
        seq = group.get(sequence)
        if seq and keyword in seq[0]:
            return seq[0].get(keyword)
    return None


def _frames_from_header(path: Path, ds: Any) -> list[_Frame]:
    series_uid = _text(ds, "SeriesInstanceUID")
    sop_uid = _text(ds, "SOPInstanceUID")
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    n_frames = int(_float(ds.get("NumberOfFrames")) or 1)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is None and n_frames == 1:
        slope = _float(ds.get("RescaleSlope"))
        intercept = _float(ds.get("RescaleIntercept"))
        thickness = _float(ds.get("SpacingBetweenSlices")) or _float(ds.get("SliceThickness"))
        given = {k: str(ds.get(k) if ds.get(k) is not None else "").strip() != "" for k in ("RescaleSlope", "RescaleIntercept")}
        bad_rescale = (given["RescaleSlope"] and not slope) or (given["RescaleIntercept"] and intercept is None)
        return [
            _Frame(
                path, None, ds, series_uid, sop_uid, rows, cols,
                _floats(ds.get("ImageOrientationPatient"), 6), _floats(ds.get("ImagePositionPatient"), 3),
                _floats(ds.get("PixelSpacing"), 2), thickness,
                1.0 if slope is None else slope, 0.0 if intercept is None else intercept,
                f"{path.name} has an invalid RescaleSlope/RescaleIntercept" if bad_rescale else None,
            )
        ]
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    if per_frame is None or len(per_frame) != n_frames:
        problem = f"{path.name} is a multi-frame DICOM without per-frame geometry (functional groups); convert it to a classic series or NIfTI (e.g. dcm2niix)"
        return [_Frame(path, 0, ds, series_uid, sop_uid, rows, cols, None, None, None, None, 1.0, 0.0, problem)]
    frames = []
    for index in range(n_frames):
        groups = [per_frame[index], shared]
        slope = _float(_group_value(groups, "PixelValueTransformationSequence", "RescaleSlope"))
        intercept = _float(_group_value(groups, "PixelValueTransformationSequence", "RescaleIntercept"))
        thickness = _float(_group_value(groups, "PixelMeasuresSequence", "SpacingBetweenSlices")) or _float(
            _group_value(groups, "PixelMeasuresSequence", "SliceThickness")
        )
        frames.append(
            _Frame(
                path, index, ds, series_uid, f"{sop_uid}#{index}", rows, cols,
                _floats(_group_value(groups, "PlaneOrientationSequence", "ImageOrientationPatient"), 6),
                _floats(_group_value(groups, "PlanePositionSequence", "ImagePositionPatient"), 3),
                _floats(_group_value(groups, "PixelMeasuresSequence", "PixelSpacing"), 2), thickness,
                1.0 if slope is None else slope, 0.0 if intercept is None else intercept,
            )
        )
    return frames


def _normal(iop: np.ndarray) -> np.ndarray:
    normal = np.cross(iop[:3], iop[3:])
    return normal / np.linalg.norm(normal)


def _iop_problem(iop: np.ndarray) -> str | None:
    row, col = iop[:3], iop[3:]
    if abs(np.linalg.norm(row) - 1) > 1e-2 or abs(np.linalg.norm(col) - 1) > 1e-2 or abs(row @ col) > 1e-2:
        return "its ImageOrientationPatient is not two orthogonal unit vectors"
    return None


# ----------------------------------------------------------------------------- series


SEQUENCE_3D_WORDS = ("SPACE", "CUBE", "VISTA", "3D", "ISO")


def guess_sequence(
    description: str,
    echo_time_ms: float | None = None,
    repetition_time_ms: float | None = None,
    inversion_time_ms: float | None = None,
    acquisition_3d: bool = False,
) -> str:
    """Sequence family from the series description, else from echo/repetition/inversion times (ms).

    Returns one of "T1", "T2", "T2_SPACE", "T2STAR", "STIR", "PD" or "unknown".
    """
    d = description.upper()
    is_3d = acquisition_3d or any(word in d for word in SEQUENCE_3D_WORDS)
    if re.search(r"STIR|TIRM", d):
        return "STIR"
    if re.search(r"(?<![0-9])T2\s*(\*|STAR)", d):
        return "T2STAR"
    if re.search(r"(?<![0-9])T2(?![0-9])", d):
        return "T2_SPACE" if is_3d else "T2"
    if re.search(r"(?<![0-9])T1(?![0-9])", d):
        return "T1"
    if re.search(r"(?<![A-Z])PD(?![A-Z])", d):
        return "PD"
    if inversion_time_ms is not None and 50 <= inversion_time_ms <= 250:
        return "STIR"
    if echo_time_ms is not None:
        if echo_time_ms >= 60:
            return "T2_SPACE" if is_3d else "T2"
        if echo_time_ms <= 30 and repetition_time_ms is not None:
            if repetition_time_ms <= 1000:
                return "T1"
            if repetition_time_ms >= 2000:
                return "PD"
    return "unknown"


def _echo_time_ms(ds: Any) -> float | None:
    te = _float(ds.get("EchoTime"))
    if te is None:
        shared = ds.get("SharedFunctionalGroupsSequence")
        te = _float(_group_value([shared[0]] if shared else [], "MREchoSequence", "EffectiveEchoTime"))
    return te


def _repetition_time_ms(ds: Any) -> float | None:
    tr = _float(ds.get("RepetitionTime"))
    if tr is None:
        shared = ds.get("SharedFunctionalGroupsSequence")
        tr = _float(_group_value([shared[0]] if shared else [], "MRTimingAndRelatedParametersSequence", "RepetitionTime"))
    return tr


@dataclass
class _Series:
    uid: str
    frames: list[_Frame]

    @property
    def header(self) -> Any:
        return self.frames[0].header

    @property
    def description(self) -> str:
        return _text(self.header, "SeriesDescription")

    @property
    def plane(self) -> str:
        """"sagittal", "coronal", "axial", "mixed" (several orientations) or "no geometry"."""
        iops = [f.iop for f in self.frames]
        if any(iop is None for iop in iops) or _iop_problem(iops[0]) is not None:
            return "no geometry"
        if any(not np.allclose(iop, iops[0], atol=COSINE_TOLERANCE) for iop in iops[1:]):
            return "mixed"
        return ("sagittal", "coronal", "axial")[int(np.argmax(np.abs(_normal(iops[0]))))]

    @property
    def sequence(self) -> str:
        ds = self.header
        return guess_sequence(
            self.description,
            _echo_time_ms(ds),
            _repetition_time_ms(ds),
            _float(ds.get("InversionTime")),
            _text(ds, "MRAcquisitionType").upper() == "3D",
        )

    @property
    def is_localizer(self) -> bool:
        words = (self.description + " " + _text(self.header, "ImageType")).upper()
        return any(w in words for w in ("LOCALIZER", "LOCALISER", "SCOUT", "SURVEY", "LOCATOR"))

    def label(self) -> str:
        return f"{self.uid or '(no SeriesInstanceUID)'} ('{self.description or 'no description'}', {self.plane}, {len(self.frames)} images)"


def _listing(series: list[_Series]) -> str:
    text = "; ".join(s.label() for s in series[:MAX_LISTED])
    return text + (f"; and {len(series) - MAX_LISTED} more" if len(series) > MAX_LISTED else "")


def _collect(path: Path) -> tuple[list[_Frame], str]:
    """Header frames of all DICOM images under ``path`` (a folder or a file) and a display name."""
    if path.is_file():
        if not is_dicom_file(path):
            raise InputError(f"{path.name} is not a DICOM file")
        files = [path]
    else:
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not files:
            raise InputError(f"folder {path} is empty")
    frames: list[_Frame] = []
    broken: list[tuple[Path, str]] = []
    non_image: list[Path] = []
    ignored: list[Path] = []
    for file in files:
        if not is_dicom_file(file):
            if file.suffix.lower() in DICOM_SUFFIXES:
                broken.append((file, "not a valid DICOM file"))
            else:
                ignored.append(file)
            continue
        try:
            ds = _read_header(file)
        except Exception as exc:
            broken.append((file, _reason(exc)))
            continue
        kind = _classify(ds)
        if kind == "image":
            frames.extend(_frames_from_header(file, ds))
        elif kind == "non-image":
            non_image.append(file)
            log.debug("ignoring non-image DICOM object %s (%s)", file, _sop_class_name(_sop_class(ds)))
        elif kind == "no-pixels":
            broken.append((file, "an image without pixel data (truncated or incomplete file?)"))
        else:
            broken.append((file, "truncated or corrupt DICOM header"))
    if broken:
        file, why = broken[0]
        more = f" (and {len(broken) - 1} more damaged files)" if len(broken) > 1 else ""
        raise InputError(f"cannot read DICOM file {file.name}{more}: {why}; remove or replace damaged files")
    if not frames:
        if non_image:
            names = ", ".join(p.name for p in non_image[:3])
            if path.is_file():
                raise InputError(f"{path.name} is a DICOM {_sop_class_name(_sop_class(_read_header(path))) or 'object'} without pixel data, not an image")
            raise InputError(f"no DICOM images in {path}: only {len(non_image)} non-image DICOM object(s) ({names})")
        names = ", ".join(p.name for p in ignored[:3])
        raise InputError(f"no DICOM files in {path} ({len(ignored)} non-DICOM file(s), e.g. {names}); pass a volume or image file itself")
    if ignored:
        log.info("ignored %d non-DICOM files in %s", len(ignored), path)
    return frames, (path.name if path.is_file() else str(path))


def _group(frames: list[_Frame]) -> list[_Series]:
    by_uid: dict[str, dict[str, _Frame]] = {}
    for frame in frames:
        instances = by_uid.setdefault(frame.series_uid, {})
        key = frame.instance_uid or f"{frame.path}#{frame.frame}"
        if key in instances:
            log.debug("skipping duplicate instance %s (%s)", key, frame.path)
            continue
        instances[key] = frame
    series = [_Series(uid, list(instances.values())) for uid, instances in by_uid.items()]
    series.sort(key=lambda s: (int(_float(s.header.get("SeriesNumber")) or 0), s.description, s.uid))
    return series


def _check_plane(chosen: _Series, require_sagittal: bool, where: str) -> None:
    plane = chosen.plane
    if require_sagittal and plane not in ("sagittal", "no geometry"):
        what = "mixes image orientations" if plane == "mixed" else f"is {plane}, not sagittal"
        raise InputError(f"no sagittal series in {where}: {chosen.label()} {what}; lumbarkit needs sagittal images")


def _choose_named(series: list[_Series], choice: str, require_sagittal: bool, where: str) -> _Series:
    exact = [s for s in series if s.uid == choice.strip()]
    if exact:
        return exact[0]
    wanted = choice.strip().lower()
    matches = [s for s in series if s.description.lower() == wanted] or [
        s for s in series if wanted and wanted in s.description.lower()
    ]
    if len(matches) > 1 and require_sagittal:
        sagittal = [s for s in matches if s.plane == "sagittal"]
        matches = sagittal if len(sagittal) == 1 else matches
    if not matches:
        available = ", ".join(repr(s.description or "no description") for s in series)
        raise SeriesSelectionError(f"no series of {where} matches --series {choice!r}; available series descriptions: {available}")
    if len(matches) > 1:
        raise SeriesSelectionError(
            f"--series {choice!r} matches {len(matches)} series of {where}; pass a SeriesInstanceUID: {_listing(matches)}"
        )
    return matches[0]


def _choose(series: list[_Series], choice: str | None, require_sagittal: bool, where: str) -> _Series:
    if choice:
        chosen = _choose_named(series, choice, require_sagittal, where)
        _check_plane(chosen, require_sagittal, where)
        return chosen
    if len(series) == 1:
        _check_plane(series[0], require_sagittal, where)
        return series[0]
    candidates = [s for s in series if s.plane == "sagittal"]
    if not candidates:
        if require_sagittal:
            raise InputError(f"no sagittal series in {where}: found {_listing(series)}")
        candidates = [s for s in series if s.plane != "no geometry"] or series
    candidates = [s for s in candidates if not s.is_localizer] or candidates
    kind = "sagittal " if all(s.plane == "sagittal" for s in candidates) else ""
    for family, names in (("T2", ("T2", "T2_SPACE")), ("T1", ("T1",))):
        group = [s for s in candidates if s.sequence in names]
        if len(group) == 1:
            return group[0]
        if len(group) > 1:
            raise SeriesSelectionError(
                f"{where} holds {len(group)} {kind}{family} series; choose one with --series UID or --series DESCRIPTION: {_listing(group)}"
            )
    if len(candidates) == 1:
        return candidates[0]
    raise SeriesSelectionError(
        f"{where} holds {len(candidates)} {kind}series and none is T2 or T1; choose one with --series UID or --series DESCRIPTION: {_listing(candidates)}"
    )


# ----------------------------------------------------------------------------- geometry and pixels


def _series_geometry(series: _Series) -> tuple[list[_Frame], np.ndarray]:
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
        problem = _iop_problem(frame.iop)
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
    normal = _normal(first.iop)
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


def _set_transfer_syntax(ds: Any) -> None:
    """Give a raw dataset (no file meta, e.g. ACR-NEMA style) the transfer syntax it was read with."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = ds.original_encoding
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def _decode(path: Path) -> tuple[np.ndarray, str]:
    import pydicom

    with _quiet_pydicom():
        try:
            ds = pydicom.dcmread(path, force=True)
            _set_transfer_syntax(ds)
            pixels = ds.pixel_array
        except Exception as exc:
            reason = _reason(exc).split(" - ")[0]
            raise InputError(f"cannot decode the pixels of DICOM file {path.name} (truncated, corrupt or unsupported compression): {reason}") from None
    if int(ds.get("SamplesPerPixel") or 1) != 1:
        raise InputError(f"{path.name} is a colour image; lumbarkit needs grayscale MR images")
    return np.asarray(pixels), _text(ds, "PhotometricInterpretation").upper()


def _load_pixels(frames: list[_Frame]) -> np.ndarray:
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


def _metadata(series: _Series) -> ScanMetadata:
    ds = series.header
    field = _float(ds.get("MagneticFieldStrength"))
    if field is not None and field > 20:  # some old files store gauss
        field = field / 10000.0
    return ScanMetadata(
        modality=_text(ds, "Modality") or "MR",
        sequence=series.sequence,
        series_description=series.description,
        manufacturer=_text(ds, "Manufacturer"),
        field_strength_t=field,
        source_format="dicom",
        series_uid=series.uid,
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
    frames, where = _collect(p)
    all_series = _group(frames)
    chosen = _choose(all_series, series, require_sagittal, where)
    log.info("using DICOM series %s", chosen.label())
    ordered, lps = _series_geometry(chosen)
    data = _load_pixels(ordered)
    if not np.all(np.isfinite(data)):
        raise InputError(f"series '{chosen.description or chosen.uid}' holds non-finite voxel values (NaN or infinity)")
    return Scan.from_array(data, LPS_TO_RAS @ lps, _metadata(chosen))


# ----------------------------------------------------------------------------- writer

IDENTITY_KEYWORDS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "PatientWeight", "PatientSize",
    "AccessionNumber", "InstitutionName", "ReferringPhysicianName", "StudyDate", "StudyTime", "StudyID",
)
ANONYMOUS_PATIENT = {"PatientName": "ANON", "PatientID": "ANON", "PatientBirthDate": "", "PatientSex": "O"}
DEFAULT_TIMES_MS = {"T2": (100.0, 3500.0), "T2_SPACE": (120.0, 1500.0), "T1": (12.0, 550.0), "STIR": (60.0, 4000.0), "PD": (25.0, 2500.0)}


def _ds(value: float) -> str:
    """A float as a valid DICOM decimal string (at most 16 characters)."""
    from pydicom.valuerep import format_number_as_ds

    value = float(value)
    return format_number_as_ds(0.0 if abs(value) < 1e-12 else value)


def _to_uint16(array: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Stored 16-bit values and (slope, intercept) such that value ~= stored * slope + intercept."""
    values = np.asarray(array, dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    if lo >= 0 and hi <= 65535 and np.array_equal(values, np.round(values)):
        return values.astype(np.uint16), 1.0, 0.0
    intercept = float(_ds(lo))
    slope = float(_ds((hi - intercept) / 65000.0)) if hi > intercept else 1.0
    stored = np.clip(np.round((values - intercept) / slope), 0, 65535)
    return stored.astype(np.uint16), slope, intercept


def _instance_order(n: int) -> np.ndarray:
    """Instance numbers (0-based) whose order differs from the spatial order when n >= 2."""
    if n == 2:
        return np.array([1, 0])
    rng = np.random.default_rng(n)
    perm = rng.permutation(n)
    while n >= 3 and (np.all(np.diff(perm) > 0) or np.all(np.diff(perm) < 0)):
        perm = rng.permutation(n)
    return perm


def write_dicom_series(
    scan: Scan,
    folder: str | Path,
    *,
    series_description: str = "T2 SAG",
    sequence_te_ms: float | None = None,
    repetition_time_ms: float | None = None,
    field_strength_t: float = 1.5,
    patient: dict[str, str] | None = None,
    series_uid: str | None = None,
    study_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    series_number: int = 1,
) -> list[Path]:
    """Write ``scan`` as a classic single-frame MR DICOM series, one file per slice of axis 0.

    Each image's rows follow scan axis 1 and its columns axis 2 (a canonical scan gives head-up,
    anterior-left sagittal images); geometry comes exactly from ``scan.affine`` (oblique or
    flipped affines included). Values are stored as uint16, with RescaleSlope/Intercept when
    they are not integers in [0, 65535]. Files are named ``S<series>_I<instance>.dcm`` with
    instance numbers shuffled relative to slice position, so readers must sort by position.

    Parameters
    ----------
    scan : the volume; any orthogonal in-plane geometry.
    folder : output folder, created if needed; existing files are not overwritten.
    series_description, sequence_te_ms, repetition_time_ms, field_strength_t : acquisition tags
        (echo and repetition times in ms default from the description's sequence family; tesla).
    patient : identity attributes by DICOM keyword (PatientName, PatientID, PatientBirthDate, ...);
        anonymous values by default.
    series_uid, study_uid, frame_of_reference_uid : UIDs to reuse (e.g. several series of one study).
    series_number : SeriesNumber, also used in file names.

    Returns
    -------
    The written paths in scan axis-0 order.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    identity = dict(ANONYMOUS_PATIENT)
    for key, value in (patient or {}).items():
        if key not in IDENTITY_KEYWORDS:
            raise ValueError(f"unsupported patient/identity attribute {key!r}; use one of {IDENTITY_KEYWORDS}")
        identity[key] = value
    lps = LPS_TO_RAS @ np.asarray(scan.affine, dtype=float)
    step, col_vec, row_vec = lps[:3, 0], lps[:3, 1], lps[:3, 2]
    row_mm, col_mm = float(np.linalg.norm(col_vec)), float(np.linalg.norm(row_vec))
    col_cos, row_cos = col_vec / row_mm, row_vec / col_mm
    if abs(row_cos @ col_cos) > 1e-6:
        raise InputError("cannot write DICOM: the scan's in-plane axes (1 and 2) are not orthogonal")
    normal = np.cross(row_cos, col_cos)
    slice_gap = abs(float(step @ normal))
    family = guess_sequence(series_description)
    te_default, tr_default = DEFAULT_TIMES_MS.get(family, (30.0, 2000.0))
    stored, slope, intercept = _to_uint16(scan.array)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    n = scan.shape[0]
    instances = _instance_order(n) + 1
    paths = [out / f"S{series_number:03d}_I{int(i):04d}.dcm" for i in instances]
    clash = [p for p in paths if p.exists()]
    if clash:
        raise InputError(f"{clash[0]} already exists; write each series to its own folder or use another series_number")
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_uid = frame_of_reference_uid or generate_uid()
    values = np.asarray(scan.array, dtype=np.float64)
    center, width = float((values.max() + values.min()) / 2), float(max(values.max() - values.min(), 1.0))
    for k in range(n):
        sop_uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyDate = ds.StudyTime = ds.AccessionNumber = ds.ReferringPhysicianName = ""
        ds.StudyID = "1"
        ds.Modality = "MR"
        ds.Manufacturer = "lumbarkit-phantom"
        ds.ManufacturerModelName = "lumbarkit synthetic"
        ds.StudyDescription = "LUMBAR SPINE"
        ds.SeriesDescription = series_description
        for key, value in identity.items():
            setattr(ds, key, value)
        ds.BodyPartExamined = "LSPINE"
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "SK"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "3D" if family == "T2_SPACE" else "2D"
        ds.SliceThickness = _ds(slice_gap)
        ds.SpacingBetweenSlices = _ds(slice_gap)
        ds.RepetitionTime = _ds(repetition_time_ms if repetition_time_ms is not None else tr_default)
        ds.EchoTime = _ds(sequence_te_ms if sequence_te_ms is not None else te_default)
        if family == "STIR":
            ds.InversionTime = "150"
        ds.MagneticFieldStrength = _ds(field_strength_t)
        ds.PatientPosition = "HFS"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = int(series_number)
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = int(instances[k])
        position = lps[:3, 3] + k * step
        ds.ImagePositionPatient = [_ds(v) for v in position]
        ds.ImageOrientationPatient = [_ds(v) for v in np.concatenate([row_cos, col_cos])]
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = _ds(float(position @ normal))
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = int(scan.shape[1]), int(scan.shape[2])
        ds.PixelSpacing = [_ds(row_mm), _ds(col_mm)]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.WindowCenter, ds.WindowWidth = _ds(center), _ds(width)
        if (slope, intercept) != (1.0, 0.0):
            ds.RescaleIntercept = _ds(intercept)
            ds.RescaleSlope = _ds(slope)
            ds.RescaleType = "US"
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        ds.save_as(paths[k], enforce_file_format=True)
    log.info("wrote %d DICOM files of series %s to %s", n, series_description, out)
    return paths
