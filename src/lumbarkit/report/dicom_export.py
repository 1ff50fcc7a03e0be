"""DICOM export of results: a segmentation (DICOM SEG) and a measurement report (TID 1500 SR).

Both objects are derived from the source series the scan was read from (found again by its
SeriesInstanceUID under the source path), so they open in a PACS or viewer next to it:

* :func:`write_dicom_seg` writes a ``highdicom.seg.Segmentation`` (BINARY) with one segment per
  VerSe label present. The label map, on the scan's canonical grid, is mapped back to the grid
  of the file as read (:meth:`~lumbarkit.scan.Scan.to_source_grid`) and every SEG frame is
  matched to its source image by position (ImagePositionPatient on the grid's slice axis), never
  by file or instance order. Orientation, pixel spacing and image size must agree.
* :func:`write_dicom_sr` writes a ``highdicom.sr.Comprehensive3DSR`` holding a TID 1500
  Measurement Report: one measurement group per site (tracking identifier = site), numbers as
  TID 300 measurements with UCUM units, text as coded qualitative evaluations. Concepts without a
  standard code use the local coding scheme ``99LUMBARKIT`` (declared in the Coding Scheme
  Identification Sequence). Sites that are segments of the given SEG reference that segment.

Both carry ``ContentQualification = RESEARCH`` and a "research use" series description:
lumbarkit output is not a diagnosis. The patient and study modules are copied from the source
images (a derived object must belong to the same patient and study). Needs ``highdicom``
(``pip install lumbarkit[dicom]``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lumbarkit.errors import InputError
from lumbarkit.scan import Scan

if TYPE_CHECKING:  # pragma: no cover
    import pydicom

log = logging.getLogger(__name__)

MANUFACTURER = "lumbarkit"
RESEARCH_NOTE = "research use, not a diagnosis"
SEG_SERIES_DESCRIPTION = "lumbarkit SEG (research use)"
SR_SERIES_SUFFIX = " - lumbarkit (research use)"
SEG_SERIES_NUMBER = 9001
SR_SERIES_NUMBER = 9002
LOCAL_SCHEME = "99LUMBARKIT"
GRID_TOLERANCE_VOXELS = 0.1  # a source image must sit this close (in voxels) to a slice of the scan grid
SEGMENTATION_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation Storage",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation Storage",
}
UCUM_MEANINGS = {
    "mm": "millimeter", "cm": "centimeter", "mm2": "square millimeter", "mm3": "cubic millimeter",
    "ml": "milliliter", "mL": "milliliter", "deg": "degree", "%": "percent", "1": "no units", "s": "second", "ms": "millisecond",
}


@dataclass(frozen=True)
class SRItem:
    """One reported value: a measurement (number + UCUM unit) or a qualitative evaluation (text)."""

    site: str  # e.g. "L4" or "L4/L5" (becomes the tracking identifier / finding site text)
    name: str  # e.g. "anterior height", "Pfirrmann grade"
    value: float | str  # number (measurement) or text (qualitative evaluation, e.g. "3" or "moderate")
    unit: str | None = None  # UCUM: "mm", "deg", "%", "1" ; None for qualitative text


# ----------------------------------------------------------------------------- helpers


def _highdicom() -> Any:
    try:
        import highdicom
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("DICOM SEG/SR export needs highdicom: pip install 'lumbarkit[dicom]'") from exc
    return highdicom


@contextlib.contextmanager
def _quiet_names():
    """Silence highdicom's warning about one-component person names copied from the source (e.g. "ANON")."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name.*", category=UserWarning)
        yield


def _version() -> str:
    from lumbarkit.version import __version__

    return __version__


def _lo(text: str) -> str:
    """A value that fits a DICOM LO (64 characters, no backslash)."""
    return " ".join(str(text).replace("\\", "/").split())[:64]


def _code_value(text: str) -> str:
    """A stable local code value for free text: upper-case words joined by '_' (long ones become LongCodeValue)."""
    slug = re.sub(r"[^A-Z0-9]+", "_", str(text).upper()).strip("_")
    if slug:
        return slug
    import hashlib

    return "LK" + hashlib.sha1(str(text).encode("utf-8")).hexdigest()[:10].upper()


def _local_code(text: str) -> Any:
    from highdicom.sr import CodedConcept

    return CodedConcept(value=_code_value(text), scheme_designator=LOCAL_SCHEME, meaning=_lo(text) or "unnamed")


def _local_scheme() -> Any:
    from highdicom.coding_schemes import CodingSchemeIdentificationItem

    return CodingSchemeIdentificationItem(
        designator=LOCAL_SCHEME, name="lumbarkit local concepts", responsible_organization="lumbarkit project",
    )


def _site_code(site: str) -> Any | None:
    """Standard (SNOMED CT) code of a vertebra, disc or the canal named as in :mod:`lumbarkit.levels`, else None."""
    from pydicom.sr.codedict import codes

    text = site.strip()
    if text.lower() in ("canal", "spinal canal", "vertebral canal"):
        return codes.SCT.VertebralCanal
    if text.lower() in ("lumbar spine", "lumbar"):
        return codes.SCT.LumbarSpine
    if text.upper() == "S1":
        return codes.SCT.Sacrum  # the S1 body-like block; no S1-vertebra code in pydicom's dictionary
    keyword = text.upper().replace("/", "") + ("Disc" if "/" in text else "Vertebra")
    try:
        return getattr(codes.SCT, keyword)
    except AttributeError:
        return None


def _label_code(label: int) -> Any:
    from lumbarkit.levels import label_name

    try:
        name = label_name(int(label))
    except ValueError:
        return None
    return _site_code(name)


def _ucum(unit: str | None) -> Any:
    from highdicom.sr import CodedConcept

    unit = "1" if unit in (None, "") else str(unit)
    return CodedConcept(value=unit, scheme_designator="UCUM", meaning=UCUM_MEANINGS.get(unit, unit))


# ----------------------------------------------------------------------------- source series


def source_datasets(source: Path, series_uid: str, headers_only: bool = False) -> list["pydicom.Dataset"]:
    """The DICOM instances (with pixel data unless ``headers_only``) of series ``series_uid`` under ``source``.

    ``source`` is a DICOM file or a folder searched recursively (as :func:`lumbarkit.io.dicom.read_dicom`
    does; non-image objects such as earlier SEG/SR files are ignored). Datasets come in file-path order.

    Raises
    ------
    InputError : ``source`` is missing or holds no such series (one-line message).
    """
    import pydicom

    from lumbarkit.io.dicom.headers import quiet_pydicom, error_reason
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


def _match_frames(scan: Scan, datasets: list[Any], shape: tuple[int, int, int], source_affine: np.ndarray) -> list[list[int | None]]:
    """For each dataset, the slice index (on the source grid) of each of its frames; None = off the scan's slices.

    Raises InputError when an image's orientation, spacing, size or in-plane position differs from the grid.
    """
    from lumbarkit.io.dicom.headers import COSINE_TOLERANCE, LPS_TO_RAS, frames_from_header

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


# ----------------------------------------------------------------------------- SEG


def write_dicom_seg(scan: Scan, labels: np.ndarray, source: Path, out_path: Path, segment_names: dict[int, str]) -> Path:
    """Write a DICOM SEG (BINARY, one segment per named label present) derived from the scan's source series.

    Parameters
    ----------
    scan : the scan as read from DICOM (``scan.metadata.series_uid`` names the source series).
    labels : integer VerSe label map on the scan's canonical grid (``labels.shape == scan.shape``).
    source : the DICOM file or folder the scan was read from (searched recursively).
    out_path : the SEG file to write (parent folders are created).
    segment_names : label id -> segment label (e.g. ``{24: "L5", 124: "L5/S1"}``); ids present in
        ``labels`` but not named here are left out. Segments are numbered 1..N in increasing id order;
        each segment's tracking id is its name and its property type the SNOMED CT code of the
        vertebra/disc/canal when there is one (``99LUMBARKIT`` otherwise).

    Returns ``out_path``. Frames without any segment are omitted (standard SEG behaviour).

    Raises
    ------
    InputError : the source series is missing under ``source`` or does not match the scan grid.
    ValueError : ``labels`` has another shape or holds no named label.
    """
    hd = _highdicom()
    from pydicom.sr.codedict import codes

    labels = np.asarray(labels)
    if labels.shape != scan.shape:
        raise ValueError(f"labels shape {labels.shape} differs from the scan's {scan.shape}")
    if labels.dtype.kind not in "iub" and not np.array_equal(labels, np.round(labels)):
        raise ValueError("labels must hold integer label ids")
    labels = labels.astype(np.int64)
    present = sorted(int(v) for v in np.unique(labels) if v != 0)
    ids = [v for v in present if v in segment_names]
    skipped = [v for v in present if v not in segment_names]
    if skipped:
        log.info("label ids %s have no segment name; left out of the SEG", skipped)
    if not ids:
        raise ValueError(f"no label in segment_names is present in the label map (present: {present})")

    datasets = source_datasets(Path(source), scan.metadata.series_uid)
    grid_labels, source_affine = scan.to_source_grid(labels)
    slots = _match_frames(scan, datasets, grid_labels.shape, source_affine)

    segment_of = np.zeros(max(ids) + 1, dtype=np.uint16)
    segment_of[ids] = np.arange(1, len(ids) + 1)
    numbered = np.where((grid_labels > 0) & (grid_labels <= max(ids)), segment_of[np.clip(grid_labels, 0, max(ids))], 0)
    n_slices = grid_labels.shape[0]
    what = f"series {scan.metadata.series_uid}"
    multi = [ds for ds, s in zip(datasets, slots) if len(s) > 1 or "PerFrameFunctionalGroupsSequence" in ds]
    if multi:
        if len(datasets) != 1:
            raise InputError(f"{what} mixes several multi-frame images; DICOM SEG export supports one multi-frame image or single-frame images")
        frame_slots = slots[0]
        if None in frame_slots or sorted(frame_slots) != list(range(n_slices)):  # type: ignore[type-var]
            raise InputError(f"the frames of {what} do not match the scan's {n_slices} slices one to one")
        sources = datasets
        pixel_array = numbered[np.array(frame_slots)]
    else:
        by_slice: dict[int, Any] = {}
        for ds, s in zip(datasets, slots):
            k = s[0]
            if k is None:
                log.info("source image %s lies outside the scan's slices; not referenced", getattr(ds, "SOPInstanceUID", "?"))
                continue
            if k in by_slice:
                raise InputError(f"{what} has two images at slice {k} of the scan grid (several echoes or acquisitions?)")
            by_slice[k] = ds
        missing = [k for k in range(n_slices) if k not in by_slice]
        if missing:
            raise InputError(f"{what} under {source} has no image for {len(missing)} of the scan's {n_slices} slices; the scan does not match its source series")
        sources = [by_slice[k] for k in range(n_slices)]
        pixel_array = numbered

    algorithm = hd.AlgorithmIdentificationSequence(
        name="lumbarkit", family=codes.cid7162.ArtificialIntelligence, version=_version(), source=MANUFACTURER,
    )
    descriptions = []
    private = False
    for number, label in enumerate(ids, start=1):
        name = _lo(segment_names[label]) or f"label {label}"
        code = _label_code(label)
        if code is None:
            private = True
            code = _local_code(name)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number, segment_label=name,
                segmented_property_category=codes.SCT.AnatomicalStructure, segmented_property_type=code,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC, algorithm_identification=algorithm,
                tracking_uid=hd.UID(), tracking_id=name,
            )
        )
    with _quiet_names():
        seg = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=pixel_array.astype(np.uint16 if len(ids) > 255 else np.uint8),
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=SEG_SERIES_NUMBER,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            manufacturer_model_name=MANUFACTURER,
            software_versions=_version(),
            device_serial_number="0",
            content_description=_lo(f"lumbarkit segmentation - {RESEARCH_NOTE}"),
            content_label="LUMBARKIT",
            content_qualification="RESEARCH",
            series_description=SEG_SERIES_DESCRIPTION,
            coding_schemes=[_local_scheme()] if private else None,
        )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(out)
    log.info("wrote DICOM SEG %s (%d segments, %d frames)", out, len(ids), int(seg.NumberOfFrames))
    return out


# ----------------------------------------------------------------------------- SR


def _read_seg(seg_path: Path, series_uid: str) -> tuple[Any, dict[str, int]]:
    """The SEG dataset (header only) and its segment numbers by label; checks it references ``series_uid``."""
    import pydicom

    from lumbarkit.io.dicom.headers import quiet_pydicom, error_reason

    path = Path(seg_path)
    if not path.is_file():
        raise InputError(f"DICOM SEG not found: {path}")
    with quiet_pydicom():
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception as exc:
            raise InputError(f"cannot read DICOM SEG {path.name}: {error_reason(exc)}") from None
    if str(ds.get("SOPClassUID", "")) not in SEGMENTATION_SOP_CLASSES:
        raise InputError(f"{path.name} is not a DICOM segmentation (SOP class {ds.get('SOPClassUID', 'missing')})")
    referenced = {str(item.get("SeriesInstanceUID", "")) for item in ds.get("ReferencedSeriesSequence", [])}
    if series_uid not in referenced:
        raise InputError(f"DICOM SEG {path.name} does not reference the scan's series {series_uid}")
    segments = {str(item.SegmentLabel): int(item.SegmentNumber) for item in ds.get("SegmentSequence", [])}
    return ds, segments


def write_dicom_sr(
    scan: Scan,
    items: list[SRItem],
    source: Path,
    out_path: Path,
    seg_path: Path | None = None,
    title: str = "Lumbar spine MRI analysis",
) -> Path:
    """Write a TID 1500 Measurement Report (Comprehensive 3D SR) about the scan's source series.

    One measurement group per site, in the order sites first appear in ``items``: tracking
    identifier = site, finding site = the SNOMED CT code of the vertebra/disc (``99LUMBARKIT``
    otherwise). Numeric values become TID 300 measurements with UCUM units (no unit: ``"1"``);
    non-finite numbers are left out with a warning. Text values become qualitative evaluations
    whose name and value are ``99LUMBARKIT`` codes (meaning = the text). When ``seg_path`` is
    given, the SEG is part of the evidence and a site named like one of its segments becomes a
    volumetric ROI group referencing that segment. ``title`` is kept in the series description
    (the document title is the standard "Imaging Measurement Report").

    Returns ``out_path``.

    Raises
    ------
    InputError : the source series is missing under ``source``, or the SEG is unreadable or does
        not reference that series.
    ValueError : no items.
    """
    hd = _highdicom()
    from pydicom.sr.codedict import codes

    if not items:
        raise ValueError("an SR needs at least one item")
    series_uid = scan.metadata.series_uid
    evidence = source_datasets(Path(source), series_uid)
    seg_ds, seg_segments = (None, {})
    if seg_path is not None:
        seg_ds, seg_segments = _read_seg(Path(seg_path), series_uid)
        evidence = evidence + [seg_ds]

    algorithm = hd.sr.AlgorithmIdentification(name="lumbarkit", version=_version(), manufacturer=MANUFACTURER)
    sites: dict[str, list[SRItem]] = {}
    for item in items:
        sites.setdefault(str(item.site), []).append(item)
    groups = []
    for site, site_items in sites.items():
        measurements, evaluations = [], []
        for item in site_items:
            if isinstance(item.value, str):
                evaluations.append(hd.sr.QualitativeEvaluation(name=_local_code(item.name), value=_local_code(item.value)))
                continue
            if isinstance(item.value, bool):
                raise ValueError(f"SR item {site} {item.name!r}: a boolean is neither a measurement nor a text value")
            value = float(item.value)
            if not math.isfinite(value):
                log.warning("SR item %s %r is not finite (%s); left out", site, item.name, value)
                continue
            measurements.append(hd.sr.Measurement(name=_local_code(item.name), value=value, unit=_ucum(item.unit)))
        if not measurements and not evaluations:
            continue
        site_code = _site_code(site) or _local_code(site)
        common = dict(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=_lo(site)),
            algorithm_id=algorithm,
            finding_sites=[hd.sr.FindingSite(anatomic_location=site_code)],
            measurements=measurements or None,
            qualitative_evaluations=evaluations or None,
        )
        if seg_ds is not None and site in seg_segments:
            segment = hd.sr.ReferencedSegment(
                sop_class_uid=seg_ds.SOPClassUID, sop_instance_uid=seg_ds.SOPInstanceUID,
                segment_number=seg_segments[site], source_series=hd.sr.SourceSeriesForSegmentation(series_uid),
            )
            groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(referenced_segment=segment, **common))
        else:
            groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(**common))
    if not groups:
        raise ValueError("no SR item has a finite number or a text value")

    observer = hd.sr.ObserverContext(
        observer_type=codes.cid270.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="lumbarkit", manufacturer_name=MANUFACTURER, model_name=_lo(f"lumbarkit {_version()}"),
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.cid100.MRIUnspecifiedBodyRegion,
        imaging_measurements=groups,
        title=codes.cid7021.ImagingMeasurementReport,
    )
    description = _lo(title)[: 64 - len(SR_SERIES_SUFFIX)].rstrip() + SR_SERIES_SUFFIX
    with _quiet_names():
        sr = hd.sr.Comprehensive3DSR(
            evidence=evidence,
            content=report[0],
            series_instance_uid=hd.UID(),
            series_number=SR_SERIES_NUMBER,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            is_complete=True,
            is_final=False,
            is_verified=False,
            manufacturer_model_name=MANUFACTURER,
            software_versions=_version(),
            content_qualification="RESEARCH",
            series_description=description,
            coding_schemes=[_local_scheme()],
        )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sr.save_as(out)
    log.info("wrote DICOM SR %s (%d measurement groups)", out, len(groups))
    return out
