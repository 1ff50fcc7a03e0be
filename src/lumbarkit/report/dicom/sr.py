"""``write_dicom_sr``: a TID 1500 Measurement Report (Comprehensive 3D SR) about the source series."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lumbarkit.errors import InputError
from lumbarkit.report.dicom.codes import (
    MANUFACTURER,
    SEGMENTATION_SOP_CLASSES,
    SR_SERIES_NUMBER,
    SR_SERIES_SUFFIX,
    import_highdicom,
    lo_text,
    local_code,
    local_scheme,
    quiet_names,
    snomed_site_code,
    software_version,
    ucum_code,
)
from lumbarkit.scan import Scan

log = logging.getLogger(__name__)
from lumbarkit.report.dicom.source import export_copy, source_datasets


@dataclass(frozen=True)
class SRItem:
    """One reported value: a measurement (number + UCUM unit) or a qualitative evaluation (text)."""

    site: str  # e.g. "L4" or "L4/L5" (becomes the tracking identifier / finding site text)
    name: str  # e.g. "anterior height", "Pfirrmann grade"
    value: float | str  # number (measurement) or text (qualitative evaluation, e.g. "3" or "moderate")
    unit: str | None = None  # UCUM: "mm", "deg", "%", "1" ; None for qualitative text


def _read_seg(seg_path: Path, series_uid: str) -> tuple[Any, dict[str, int]]:
    """The SEG dataset (header only) and its segment numbers by label; checks it references ``series_uid``."""
    import pydicom

    from lumbarkit.io.dicom.headers import error_reason, quiet_pydicom

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
    hd = import_highdicom()
    from pydicom.sr.codedict import codes

    if not items:
        raise ValueError("an SR needs at least one item")
    series_uid = scan.metadata.series_uid
    evidence = [export_copy(ds) for ds in source_datasets(Path(source), series_uid)]
    seg_ds, seg_segments = (None, {})
    if seg_path is not None:
        seg_ds, seg_segments = _read_seg(Path(seg_path), series_uid)
        evidence = evidence + [seg_ds]

    algorithm = hd.sr.AlgorithmIdentification(name="lumbarkit", version=software_version(), manufacturer=MANUFACTURER)
    sites: dict[str, list[SRItem]] = {}
    for item in items:
        sites.setdefault(str(item.site), []).append(item)
    groups = [g for site, site_items in sites.items()
              if (g := _group(hd, site, site_items, algorithm, seg_ds, seg_segments, series_uid)) is not None]
    if not groups:
        raise ValueError("no SR item has a finite number or a text value")

    report = _measurement_report(hd, codes, groups)
    description = lo_text(title)[: 64 - len(SR_SERIES_SUFFIX)].rstrip() + SR_SERIES_SUFFIX
    with quiet_names():
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
            software_versions=software_version(),
            content_qualification="RESEARCH",
            series_description=description,
            coding_schemes=[local_scheme()],
        )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sr.save_as(out)
    log.info("wrote DICOM SR %s (%d measurement groups)", out, len(groups))
    return out


def value_code(text: str) -> Any:
    """The code of a qualitative value: SNOMED CT for present/absent and mild/moderate/severe, else a local code
    whose meaning is the value as a reader says it ("Pfirrmann grade III")."""
    from highdicom.sr import CodedConcept
    from pydicom.sr.codedict import codes

    standard = {"present": codes.SCT.Present, "absent": codes.SCT.Absent, "mild": codes.SCT.Mild,
                "moderate": codes.SCT.Moderate, "severe": codes.SCT.Severe}.get(str(text).strip().lower())
    if standard is None:
        return local_code(text)
    return CodedConcept(value=standard.value, scheme_designator=standard.scheme_designator, meaning=standard.meaning)


def _group(hd, site: str, site_items: list[SRItem], algorithm, seg_ds, seg_segments: dict[str, int], series_uid: str):
    """The TID 1501/1411 measurement group of one site, or None when it has no finite number and no text."""
    measurements, evaluations = [], []
    for item in site_items:
        if isinstance(item.value, str):
            evaluations.append(hd.sr.QualitativeEvaluation(name=local_code(item.name), value=value_code(item.value)))
            continue
        if isinstance(item.value, bool):
            raise ValueError(f"SR item {site} {item.name!r}: a boolean is neither a measurement nor a text value")
        value = float(item.value)
        if not math.isfinite(value):
            log.warning("SR item %s %r is not finite (%s); left out", site, item.name, value)
            continue
        measurements.append(hd.sr.Measurement(name=local_code(item.name), value=value, unit=ucum_code(item.unit)))
    if not measurements and not evaluations:
        return None
    site_code = snomed_site_code(site) or local_code(site)
    common = dict(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=lo_text(site)),
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
        return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(referenced_segment=segment, **common)
    return hd.sr.MeasurementsAndQualitativeEvaluations(**common)


def _measurement_report(hd, codes, groups: list):
    """The TID 1500 Imaging Measurement Report content, observed by the lumbarkit device."""
    observer = hd.sr.ObserverContext(
        observer_type=codes.cid270.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="lumbarkit", manufacturer_name=MANUFACTURER, model_name=lo_text(f"lumbarkit {software_version()}"),
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.cid100.MRIUnspecifiedBodyRegion,
        imaging_measurements=groups,
        title=codes.cid7021.ImagingMeasurementReport,
    )
    return report
