"""``write_dicom_seg``: a DICOM SEG (BINARY, one segment per named label) derived from the source series."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from lumbarkit.errors import InputError
from lumbarkit.report.dicom.codes import (
    MANUFACTURER,
    RESEARCH_NOTE,
    SEG_SERIES_DESCRIPTION,
    SEG_SERIES_NUMBER,
    import_highdicom,
    label_code,
    lo_text,
    local_code,
    local_scheme,
    quiet_names,
    software_version,
)
from lumbarkit.scan import Scan

log = logging.getLogger(__name__)
from lumbarkit.report.dicom.source import export_copy, match_frames, source_datasets


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
    hd = import_highdicom()
    from pydicom.sr.codedict import codes

    labels, ids = _named_labels(scan, labels, segment_names)
    datasets = [export_copy(ds) for ds in source_datasets(Path(source), scan.metadata.series_uid)]
    grid_labels, source_affine = scan.to_source_grid(labels)
    slots = match_frames(scan, datasets, grid_labels.shape, source_affine)

    sources, pixel_array = _frames(scan, datasets, slots, grid_labels, ids, source)

    descriptions, private = _segment_descriptions(hd, codes, ids, segment_names)
    with quiet_names():
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
            software_versions=software_version(),
            device_serial_number="0",
            content_description=lo_text(f"lumbarkit segmentation - {RESEARCH_NOTE}"),
            content_label="LUMBARKIT",
            content_qualification="RESEARCH",
            series_description=SEG_SERIES_DESCRIPTION,
            coding_schemes=[local_scheme()] if private else None,
        )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(out)
    log.info("wrote DICOM SEG %s (%d segments, %d frames)", out, len(ids), int(seg.NumberOfFrames))
    return out


def _named_labels(scan: Scan, labels: np.ndarray, segment_names: dict[int, str]) -> tuple[np.ndarray, list[int]]:
    """The label map as int64 and the ids present in it that have a segment name (ValueError when none)."""
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

    return labels, ids


def _frames(scan: Scan, datasets: list, slots: list, grid_labels: np.ndarray, ids: list[int], source: Path):
    """(source images in frame order, segment-number pixel array): one multi-frame image or one image per slice."""
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

    return sources, pixel_array


def _segment_descriptions(hd, codes, ids: list[int], segment_names: dict[int, str]):
    """One highdicom SegmentDescription per id (SNOMED CT code, else a local one) and whether a local code was used."""
    algorithm = hd.AlgorithmIdentificationSequence(
        name="lumbarkit", family=codes.cid7162.ArtificialIntelligence, version=software_version(), source=MANUFACTURER,
    )
    from lumbarkit.levels import lumbar_count_of

    descriptions = []
    private = False
    lumbar = lumbar_count_of(v for v in ids if v != 100)
    for number, label in enumerate(ids, start=1):
        name = lo_text(segment_names[label]) or f"label {label}"
        code = label_code(label, lumbar)
        if code is None:
            private = True
            code = local_code(name)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number, segment_label=name,
                segmented_property_category=codes.SCT.AnatomicalStructure, segmented_property_type=code,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC, algorithm_identification=algorithm,
                tracking_uid=hd.UID(), tracking_id=name,
            )
        )
    return descriptions, private
