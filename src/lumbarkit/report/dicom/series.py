"""DICOM writing: a scan as a classic single-frame MR DICOM series (phantoms, round-trip tests).

Part of :mod:`lumbarkit.io.dicom`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from lumbarkit.errors import InputError
from lumbarkit.io.dicom.headers import LPS_TO_RAS
from lumbarkit.io.dicom.series import guess_sequence
from lumbarkit.scan import Scan

# One logger for the whole DICOM reader/writer, named after the public module (log output unchanged).
log = logging.getLogger("lumbarkit.io.dicom")

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

    identity = dict(ANONYMOUS_PATIENT)
    for key, value in (patient or {}).items():
        if key not in IDENTITY_KEYWORDS:
            raise ValueError(f"unsupported patient/identity attribute {key!r}; use one of {IDENTITY_KEYWORDS}")
        identity[key] = value
    lps, row_cos, col_cos, pixel_mm = _image_plane(scan)
    normal = np.cross(row_cos, col_cos)
    slice_gap = abs(float(lps[:3, 0] @ normal))
    family = guess_sequence(series_description)
    stored, slope, intercept = _to_uint16(scan.array)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    n = scan.shape[0]
    instances = _instance_order(n) + 1
    paths = [out / f"S{series_number:03d}_I{int(i):04d}.dcm" for i in instances]
    clash = [p for p in paths if p.exists()]
    if clash:
        raise InputError(f"{clash[0]} already exists; write each series to its own folder or use another series_number")
    shared = _shared_attributes(scan, series_description, identity, family, (row_cos, col_cos, pixel_mm, slice_gap),
                                (sequence_te_ms, repetition_time_ms, field_strength_t),
                                (study_uid, series_uid, frame_of_reference_uid, series_number), (slope, intercept))
    for k in range(n):
        position = lps[:3, 3] + k * lps[:3, 0]
        ds = _image_dataset(shared, InstanceNumber=int(instances[k]), ImagePositionPatient=[_ds(v) for v in position],
                            SliceLocation=_ds(float(position @ normal)), PixelData=np.ascontiguousarray(stored[k]).tobytes())
        ds.save_as(paths[k], enforce_file_format=True)
    log.info("wrote %d DICOM files of series %s to %s", n, series_description, out)
    return paths


def _image_plane(scan: Scan) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]:
    """(voxel -> LPS affine, row direction cosine, column direction cosine, PixelSpacing (row, col) in mm)."""
    lps = LPS_TO_RAS @ np.asarray(scan.affine, dtype=float)
    col_vec, row_vec = lps[:3, 1], lps[:3, 2]
    row_mm, col_mm = float(np.linalg.norm(col_vec)), float(np.linalg.norm(row_vec))
    col_cos, row_cos = col_vec / row_mm, row_vec / col_mm
    if abs(row_cos @ col_cos) > 1e-6:
        raise InputError("cannot write DICOM: the scan's in-plane axes (1 and 2) are not orthogonal")
    return lps, row_cos, col_cos, (row_mm, col_mm)


def _image_dataset(shared: dict, **per_image):
    """One MR Image Storage dataset (explicit VR little endian) with the series' ``shared`` attributes and ``per_image``."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = sop_uid
    for key, value in {**shared, **per_image}.items():
        setattr(ds, key, value)
    return ds


def _shared_attributes(scan: Scan, series_description: str, identity: dict, family: str, plane, timing, uids, rescale) -> dict:
    """DICOM attributes (by keyword) shared by every image of the series; times in ms, field strength in T."""
    from pydicom.uid import generate_uid

    row_cos, col_cos, pixel_mm, slice_gap = plane
    sequence_te_ms, repetition_time_ms, field_strength_t = timing
    study_uid, series_uid, frame_of_reference_uid, series_number = uids
    slope, intercept = rescale
    te_default, tr_default = DEFAULT_TIMES_MS.get(family, (30.0, 2000.0))
    values = np.asarray(scan.array, dtype=np.float64)
    return {
        "SpecificCharacterSet": "ISO_IR 100", "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"], "StudyDate": "",
        "StudyTime": "", "AccessionNumber": "", "ReferringPhysicianName": "", "StudyID": "1", "Modality": "MR",
        "Manufacturer": "lumbarkit-phantom", "ManufacturerModelName": "lumbarkit synthetic",
        "StudyDescription": "LUMBAR SPINE", "SeriesDescription": series_description, **identity,
        "BodyPartExamined": "LSPINE", "ScanningSequence": "SE", "SequenceVariant": "SK", "ScanOptions": "",
        "MRAcquisitionType": "3D" if family == "T2_SPACE" else "2D", "SliceThickness": _ds(slice_gap),
        "SpacingBetweenSlices": _ds(slice_gap),
        "RepetitionTime": _ds(repetition_time_ms if repetition_time_ms is not None else tr_default),
        "EchoTime": _ds(sequence_te_ms if sequence_te_ms is not None else te_default),
        **({"InversionTime": "150"} if family == "STIR" else {}),
        "MagneticFieldStrength": _ds(field_strength_t), "PatientPosition": "HFS",
        "StudyInstanceUID": study_uid or generate_uid(), "SeriesInstanceUID": series_uid or generate_uid(),
        "SeriesNumber": int(series_number), "AcquisitionNumber": 1,
        "ImageOrientationPatient": [_ds(v) for v in np.concatenate([row_cos, col_cos])],
        "FrameOfReferenceUID": frame_of_reference_uid or generate_uid(), "PositionReferenceIndicator": "",
        "SamplesPerPixel": 1, "PhotometricInterpretation": "MONOCHROME2",
        "Rows": int(scan.shape[1]), "Columns": int(scan.shape[2]), "PixelSpacing": [_ds(v) for v in pixel_mm],
        "BitsAllocated": 16, "BitsStored": 16, "HighBit": 15, "PixelRepresentation": 0,
        "WindowCenter": _ds(float((values.max() + values.min()) / 2)),
        "WindowWidth": _ds(float(max(values.max() - values.min(), 1.0))),
        **({"RescaleIntercept": _ds(intercept), "RescaleSlope": _ds(slope), "RescaleType": "US"}
           if (slope, intercept) != (1.0, 0.0) else {}),
    }
