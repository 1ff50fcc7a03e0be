"""Per-condition crops of one RSNA study: where each disc level is, and a small image per (condition, level).

Levels come from lumbarkit's own stage 1 on the sagittal T2/STIR series (the T1 series when it is missing). Crops
are sampled in patient millimetres (trilinear), ``CROP_MM`` wide, ``CROP_PX`` pixels, intensities divided by the
series' 99.5th percentile:

* spinal canal stenosis: sagittal T2/STIR through the disc centre, centred ``CANAL_OFFSET_MM`` behind it;
* left / right neural foraminal narrowing: sagittal T1, ``FORAMEN_OFFSET_MM`` left / right of the disc centre;
* left / right subarticular stenosis: the axial T2 image nearest the disc (:func:`assign_axial`), beside the canal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from lumbarkit.rsna.format import AXIAL_T2, CONDITIONS, DISC_NAMES, LEVELS, SAGITTAL_T1, SAGITTAL_T2

CROP_PX = 32
CROP_MM = 40.0
CANAL_OFFSET_MM = 15.0  # disc centre -> canal, posteriorly
FORAMEN_OFFSET_MM = 16.0  # mid-sagittal plane -> neural foramen, laterally
FORAMEN_POSTERIOR_MM = 12.0
SUBARTICULAR_OFFSET_MM = 10.0  # canal centre -> lateral recess, laterally
AXIAL_CANAL_MM = 22.0  # disc centre -> canal centre on an axial image, posteriorly
# RAS unit vectors
RIGHT, ANTERIOR, SUPERIOR = np.eye(3)


@dataclass
class StudyCrops:
    """Crops ``(25, 1, CROP_PX, CROP_PX)`` in :func:`~lumbarkit.rsna.format.target_columns` order, which exist,
    the disc centres found (RAS mm), the canal AP diameter per level (mm, when measured) and notes."""

    study_id: str
    crops: np.ndarray
    present: np.ndarray
    discs: dict[str, np.ndarray] = field(default_factory=dict)
    canal_ap_mm: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _sample(volume: np.ndarray, to_index, centre: np.ndarray, down: np.ndarray, across: np.ndarray) -> np.ndarray:
    """A CROP_PX x CROP_PX image of ``volume`` on the square of CROP_MM around ``centre`` spanned by ``down`` (rows)
    and ``across`` (columns), RAS unit vectors; ``to_index`` maps RAS points (N, 3) to array indices (N, ndim)."""
    from scipy.ndimage import map_coordinates

    t = (np.arange(CROP_PX) + 0.5) / CROP_PX * CROP_MM - CROP_MM / 2
    pts = centre + t[:, None, None] * down + t[None, :, None] * across
    idx = to_index(pts.reshape(-1, 3))
    return map_coordinates(volume, idx.T, order=1, mode="constant", cval=0.0).reshape(CROP_PX, CROP_PX).astype(np.float32)


def _scale(array: np.ndarray) -> float:
    top = float(np.percentile(array, 99.5))
    return top if top > 0 else 1.0


def sagittal_levels(scan, pipeline, measure: bool, analysed=None) -> tuple[dict[str, np.ndarray], dict[str, float], str | None]:
    """RSNA level -> disc centre (RAS) from stage 1 on a sagittal scan, and the canal AP diameter (mm) per level
    when ``measure``; a note instead when no spine is found. ``analysed``: that scan's result when the pipeline has
    already run on it (``analyze``), so it is not run twice."""
    from lumbarkit.errors import InputError

    result = analysed
    if result is None or (measure and result.measurements is None):
        try:
            result = pipeline.run(scan, until="measure" if measure else "segment")
        except InputError as exc:
            return {}, {}, f"no levels found on the sagittal series: {exc}"
    names = {v: k for k, v in DISC_NAMES.items()}
    discs = {names[d.name]: np.array(d.centroid_mm) for d in result.levels.discs if d.name in names}
    canal = {}
    if measure and result.measurements is not None:
        for d in result.measurements.discs:
            if d.name in names and d.canal_ap.ok:
                canal[names[d.name]] = float(d.canal_ap.value)
    return discs, canal, None


def study_crops(study, pipeline, measure: bool = False, analysed: dict | None = None) -> StudyCrops:
    """The crops of one :class:`~lumbarkit.rsna.dataset.RsnaStudy`; anything missing or unreadable is a note.

    ``analysed`` maps a series' SeriesInstanceUID to its :class:`ScanResult` where ``analyze`` already read and
    segmented it: its scan and levels are used instead of reading and segmenting it again."""
    from lumbarkit.errors import LumbarkitError
    from lumbarkit.io import load_scan

    t0 = time.perf_counter()
    analysed = analysed or {}
    out = StudyCrops(study.study_id, np.zeros((len(CONDITIONS) * len(LEVELS), 1, CROP_PX, CROP_PX), np.float32),
                     np.zeros(len(CONDITIONS) * len(LEVELS), bool))
    scans, results = {}, {}
    for d in (SAGITTAL_T2, SAGITTAL_T1):
        for s in study.of(d)[:1]:
            results[d] = analysed.get(s.series_uid) if s.series_uid else None
            try:
                scans[d] = results[d].scan if results[d] is not None else load_scan(s.folder, series=s.series_uid)
            except LumbarkitError as exc:
                out.notes.append(f"{d} series {s.series_id} unreadable: {exc}")
    kind = SAGITTAL_T2 if SAGITTAL_T2 in scans else SAGITTAL_T1
    ref = scans.get(kind)
    if ref is None:
        out.notes.append("no readable sagittal series: levels cannot be found")
        out.seconds = time.perf_counter() - t0
        return out
    out.discs, out.canal_ap_mm, note = sagittal_levels(ref, pipeline, measure, results.get(kind))
    if note:
        out.notes.append(note)
    _sagittal_crops(out, scans)
    _axial_crops(out, study, ref)
    out.seconds = time.perf_counter() - t0
    return out


def _put(out: StudyCrops, condition: str, level: str, crop: np.ndarray) -> None:
    i = CONDITIONS.index(condition) * len(LEVELS) + LEVELS.index(level)
    out.crops[i, 0], out.present[i] = crop, True


def _sagittal_crops(out: StudyCrops, scans: dict) -> None:
    for kind, scan in scans.items():
        if scan.metadata.frame_of_reference_uid != scans.get(SAGITTAL_T2, scan).metadata.frame_of_reference_uid:
            out.notes.append(f"{kind} in another frame of reference than the T2: its crops are not placed")
            continue
        volume = scan.array / _scale(scan.array)
        to_index = scan.mm_to_voxel
        for level, c in out.discs.items():
            if kind == SAGITTAL_T2:
                _put(out, "spinal_canal_stenosis", level, _sample(volume, to_index, c - CANAL_OFFSET_MM * ANTERIOR, -SUPERIOR, -ANTERIOR))
            else:
                for side, sign in (("left", -1.0), ("right", 1.0)):
                    centre = c + sign * FORAMEN_OFFSET_MM * RIGHT - FORAMEN_POSTERIOR_MM * ANTERIOR
                    _put(out, f"{side}_neural_foraminal_narrowing", level, _sample(volume, to_index, centre, -SUPERIOR, -ANTERIOR))


def _axial_crops(out: StudyCrops, study, ref) -> None:
    import pydicom

    from lumbarkit.rsna.geometry import assign_axial, series_planes

    series = study.of(AXIAL_T2)
    if not series or not out.discs:
        return
    planes = series_planes(series[0].files or series[0].folder)
    assigned, note = assign_axial(planes, out.discs, ref.metadata.frame_of_reference_uid)
    if note:
        out.notes.append(note)
    for level, plane in assigned.items():
        try:
            image = pydicom.dcmread(str(plane.path)).pixel_array.astype(np.float32)
        except Exception as exc:  # noqa: BLE001 - a damaged instance only loses its crops
            out.notes.append(f"axial instance {plane.instance} unreadable ({type(exc).__name__}): {level} subarticular from the prior")
            continue
        image = image / _scale(image)

        def to_index(pts, plane=plane):
            d = pts - plane.origin
            return np.stack([d @ plane.along_y / plane.spacing_xy[1], d @ plane.along_x / plane.spacing_xy[0]], axis=1)

        canal = out.discs[level] - AXIAL_CANAL_MM * ANTERIOR
        canal = canal - (canal - plane.origin) @ plane.normal * plane.normal  # onto the image plane
        for side, sign in (("left", -1.0), ("right", 1.0)):
            centre = canal + sign * SUBARTICULAR_OFFSET_MM * RIGHT
            _put(out, f"{side}_subarticular_stenosis", level, _sample(image, to_index, centre, -ANTERIOR, -RIGHT))
