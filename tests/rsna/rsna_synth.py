"""RSNA-format synthetic studies for the tests: Kaggle layout DICOM with stenosis planted at known severity.

Each study has a sagittal T2 and a sagittal T1 series (lumbarkit phantoms, extra noise per study) and an axial T2
series (two images per disc level, drawn here), all in one frame of reference. Severity s (0 normal/mild,
1 moderate, 2 severe) is planted as a dark ball of radius ``RADIUS_MM[s]``: in the canal behind the disc (spinal),
16 mm left/right of the disc in the T1 (foraminal), 10 mm left/right of the canal centre on the axial images
(subarticular). Coordinates rows are the planted centres written as the host did (instance number, pixel x, y).
"""

from __future__ import annotations

import csv
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from lumbarkit.report.dicom import write_dicom_series
from lumbarkit.rsna.format import CONDITIONS, LEVELS, target_columns
from lumbarkit.scan import Scan

RADIUS_MM = (0.0, 4.0, 7.0)
SEVERITY_TEXT = ("Normal/Mild", "Moderate", "Severe")
DISCS = {"l1_l2": "L1/L2", "l2_l3": "L2/L3", "l3_l4": "L3/L4", "l4_l5": "L4/L5", "l5_s1": "L5/S1"}
RIGHT, ANTERIOR, SUPERIOR = np.eye(3)


@lru_cache(maxsize=4)
def _phantom(sequence: str, anatomy: int):
    from lumbarkit.phantom import make_phantom

    return make_phantom(sequence=sequence, seed=anatomy, lordosis_deg=50.0, tilt_deg=15.0, shape_rc=(400, 320))


@lru_cache(maxsize=4)
def _grid(sequence: str, anatomy: int) -> np.ndarray:
    """RAS mm of every voxel of a phantom (slices, rows, cols, 3)."""
    scan = _phantom(sequence, anatomy).scan
    k, i, j = np.indices(scan.shape)
    return scan.voxel_to_mm(np.stack([k, i, j], axis=-1).reshape(-1, 3).astype(float)).reshape(*scan.shape, 3).astype(np.float32)


def _plant(array: np.ndarray, grid: np.ndarray, centre: np.ndarray, radius: float, factor: float = 0.15) -> None:
    """Darken (to ``factor``) the voxels of ``array`` within ``radius`` mm of ``centre`` (RAS), in place."""
    if radius <= 0:
        return
    lo = np.floor(centre - radius - 4)
    hi = np.ceil(centre + radius + 4)
    near = np.all((grid >= lo) & (grid <= hi), axis=-1)
    sel = np.flatnonzero(near.ravel())
    pts = grid.reshape(-1, 3)[sel]
    flat = array.reshape(-1)
    flat[sel[np.linalg.norm(pts - centre, axis=1) <= radius]] *= factor


def _severities(rng) -> dict[str, int]:
    return {c: int(rng.choice(3, p=[0.45, 0.3, 0.25])) for c in target_columns()}


def _axial(discs: dict[str, np.ndarray], sev: dict[str, int], rng) -> list[tuple[Scan, str]]:
    """Two axial images per level (through the disc centre and 4 mm below) as one-slice-pair scans."""
    out = []
    px = 0.8
    n = 120
    for level, c in discs.items():
        origin = c + 40.0 * RIGHT + 30.0 * ANTERIOR  # top-left pixel: right-anterior corner
        affine = np.eye(4)
        affine[:3, 0] = -4.0 * SUPERIOR  # slice axis: 4 mm inferior
        affine[:3, 1] = -px * ANTERIOR  # rows run posteriorly
        affine[:3, 2] = -px * RIGHT  # columns run to the patient's left
        affine[:3, 3] = origin
        y, x = np.mgrid[0:n, 0:n]
        pts = origin - y[..., None] * px * ANTERIOR - x[..., None] * px * RIGHT  # RAS of each pixel (plane of the disc)
        rel = pts - c
        image = 150.0 + rng.normal(0, 15, (n, n))
        image[(rel[..., 0] / 22) ** 2 + (rel[..., 1] / 17) ** 2 <= 1] = 350.0  # disc
        canal = c - 22.0 * ANTERIOR
        rc = pts - canal
        image[(rc[..., 0] / 14) ** 2 + (rc[..., 1] / 7) ** 2 <= 1] = 900.0  # CSF, bright on T2
        for side, sign in (("left", -1.0), ("right", 1.0)):
            r = RADIUS_MM[sev[f"{side}_subarticular_stenosis_{level}"]]
            if r:
                image[np.linalg.norm(pts - (canal + sign * 10.0 * RIGHT), axis=-1) <= r] = 120.0
        out.append((Scan(np.stack([image, image]).astype(np.float32), affine), level))
    return out


def write_study(root: Path, study_id: str, rng, split: str = "train", anatomy: int = 0,
                skip: tuple[str, ...] = ()) -> tuple[dict[str, int], list[dict]]:
    """Write one study under ``root/<split>_images``; returns (severity per target column, coordinate rows)."""
    sev = _severities(rng)
    t2, t1 = _phantom("T2", anatomy), _phantom("T1", anatomy)
    discs = {lv: np.array(t2.truth.discs[d].centroid_ras) for lv, d in DISCS.items()}
    study_uid, frame = generate_uid(), generate_uid()
    coords: list[dict] = []
    series_rows = []
    t2_array = t2.scan.array + rng.normal(0, 10, t2.scan.shape).astype(np.float32)
    for lv, c in discs.items():
        _plant(t2_array, _grid("T2", anatomy), c - 15.0 * ANTERIOR, RADIUS_MM[sev[f"spinal_canal_stenosis_{lv}"]])
    t1_array = t1.scan.array + rng.normal(0, 10, t1.scan.shape).astype(np.float32)
    for lv, c in discs.items():
        for side, sign in (("left", -1.0), ("right", 1.0)):
            centre = c + sign * 16.0 * RIGHT - 12.0 * ANTERIOR
            _plant(t1_array, _grid("T1", anatomy), centre, RADIUS_MM[sev[f"{side}_neural_foraminal_narrowing_{lv}"]])
    t2_scan, t1_scan = t2.scan.with_array(np.maximum(t2_array, 0)), t1.scan.with_array(np.maximum(t1_array, 0))
    images = root / f"{split}_images" / study_id
    kinds = [("Sagittal T2/STIR", [(t2_scan, None)]), ("Sagittal T1", [(t1_scan, None)]), ("Axial T2", _axial(discs, sev, rng))]
    for n, (desc, parts) in enumerate(kinds, start=1):
        series_id = f"{study_id}{n}"
        series_rows.append((study_id, series_id, desc))
        if desc in skip:
            continue
        folder = images / series_id
        _write_series(folder, parts, desc, study_uid, frame, n)
        coords += _coordinates(study_id, series_id, desc, folder, discs)
    return sev, coords, series_rows


def _write_series(folder: Path, parts, desc: str, study_uid: str, frame: str, number: int) -> None:
    """Write the scans of one series, then rename the files ``<instance>.dcm`` with instance numbers unique in it."""
    series_uid = generate_uid()
    tmp = folder.parent / f"_tmp_{folder.name}"
    files = []
    for p, (scan, _) in enumerate(parts):
        files += write_dicom_series(scan, tmp / str(p), series_description=desc, series_uid=series_uid, study_uid=study_uid,
                                    frame_of_reference_uid=frame, series_number=number)
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files, start=1):
        ds = pydicom.dcmread(str(f))
        ds.InstanceNumber = i
        ds.save_as(folder / f"{i}.dcm", enforce_file_format=True)
    shutil.rmtree(tmp)


def _coordinates(study_id: str, series_id: str, desc: str, folder: Path, discs: dict[str, np.ndarray]) -> list[dict]:
    """The planted centre of each condition shown by this series, as (instance, x, y) of the nearest image."""
    from lumbarkit.rsna.geometry import series_planes

    planes = series_planes(folder)
    rows = []
    targets = []
    for lv, c in discs.items():
        if desc == "Sagittal T2/STIR":
            targets.append(("Spinal Canal Stenosis", lv, c - 15.0 * ANTERIOR))
        elif desc == "Sagittal T1":
            for side, sign in (("Left", -1.0), ("Right", 1.0)):
                targets.append((f"{side} Neural Foraminal Narrowing", lv, c + sign * 16.0 * RIGHT - 12.0 * ANTERIOR))
        else:
            for side, sign in (("Left", -1.0), ("Right", 1.0)):
                targets.append((f"{side} Subarticular Stenosis", lv, c - 22.0 * ANTERIOR + sign * 10.0 * RIGHT))
    for condition, lv, point in targets:
        best = min(planes, key=lambda p: abs(p.to_pixel(point)[2]))
        x, y, _ = best.to_pixel(point)
        rows.append({"study_id": study_id, "series_id": series_id, "instance_number": best.instance,
                     "condition": condition, "level": DISCS[lv], "x": round(x, 2), "y": round(y, 2)})
    return rows


def make_rsna(root: Path, n_studies: int, seed: int = 0, split: str = "train", first_id: int = 1000,
              skip: dict[int, tuple[str, ...]] | None = None) -> dict[str, dict[str, int]]:
    """Write ``n_studies`` studies in the Kaggle layout under ``root``; returns study id -> severity per column."""
    rng = np.random.default_rng(seed)
    truth, coords, series = {}, [], []
    for i in range(n_studies):
        sid = str(first_id + i)
        sev, rows, srows = write_study(root, sid, rng, split, anatomy=i % 2, skip=(skip or {}).get(i, ()))
        truth[sid], coords, series = sev, coords + rows, series + srows
    with open(root / f"{split}_series_descriptions.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["study_id", "series_id", "series_description"])
        w.writerows(series)
    if split == "train":
        with open(root / "train.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["study_id", *target_columns()])
            w.writeheader()
            for sid, sev in truth.items():
                w.writerow({"study_id": sid, **{c: SEVERITY_TEXT[v] for c, v in sev.items()}})
        with open(root / "train_label_coordinates.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["study_id", "series_id", "instance_number", "condition", "level", "x", "y"])
            w.writeheader()
            w.writerows(coords)
    return truth


assert set(CONDITIONS) and set(LEVELS) == set(DISCS)
