"""Every file of ../shared/data reads through load_scan with the documented shape, spacing and orientation.

Failures are collected per group and reported together, so one run lists every bad file.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from lumbarkit.io import load_scan

pytestmark = pytest.mark.shared


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _canonical_shape(rows_x_cols_x_slices: str) -> tuple[int, ...]:
    """index.csv shapes are rows x cols x slices; the canonical shape is (slices, rows, cols)."""
    r, c, s = (int(v) for v in rows_x_cols_x_slices.split("x"))
    return (s, r, c)


def _canonical_spacing(text: str) -> tuple[float, ...]:
    r, c, s = (float(v) for v in text.split("x"))
    return (s, r, c)


def _check_geometry(scan, shape, spacing, name: str, problems: list[str]) -> None:
    if scan.shape != tuple(shape):
        problems.append(f"{name}: shape {scan.shape} != {tuple(shape)}")
    if not np.allclose(scan.spacing_mm, spacing, atol=1e-4):
        problems.append(f"{name}: spacing {scan.spacing_mm} != {tuple(spacing)}")
    if scan.orientation != "LIP":
        problems.append(f"{name}: orientation {scan.orientation} != LIP")


def _mean_index(labels: np.ndarray, value: int, axis: int) -> float:
    return float(np.nonzero(labels == value)[axis].mean())


def test_volumes(shared_data):
    folder = shared_data / "volumes"
    index = _rows(folder / "index.csv")
    cases = {r["case"] for r in index}
    on_disk = {p.name[: -len("_image.nii.gz")] for p in folder.glob("*_image.nii.gz")}
    assert cases == on_disk, f"index.csv and files differ: {sorted(cases ^ on_disk)}"
    assert {p.name[: -len("_label.nii.gz")] for p in folder.glob("*_label.nii.gz")} == on_disk
    problems: list[str] = []
    for row in index:
        shape, spacing = _canonical_shape(row["shape"]), _canonical_spacing(row["spacing_mm"])
        image = load_scan(folder / f"{row['case']}_image.nii.gz")
        label = load_scan(folder / f"{row['case']}_label.nii.gz")
        for scan, kind in ((image, "image"), (label, "label")):
            _check_geometry(scan, shape, spacing, f"{row['case']} {kind}", problems)
        if not np.allclose(image.affine, label.affine):
            problems.append(f"{row['case']}: image and label grids differ")
        labels = label.array.astype(np.int32)
        if not np.array_equal(labels, label.array):
            problems.append(f"{row['case']}: non-integer label values")
        present = sorted(int(v) for v in np.unique(labels) if v)
        expected = sorted(int(v) for v in row["label_ids"].split())
        if present != expected:
            problems.append(f"{row['case']}: label ids {present} != index {expected}")
        # ids grow from superior to inferior, so their mean rows must grow too (rows run towards inferior)
        mean_rows = [_mean_index(labels, v, 1) for v in present]
        if len(present) >= 2 and not all(a < b for a, b in zip(mean_rows, mean_rows[1:])):
            problems.append(f"{row['case']}: labels {present} not ordered superior->inferior (mean rows {np.round(mean_rows)})")
    assert not problems, "\n".join(problems)


def test_spider_space(shared_data):
    folder = shared_data / "spider_space"
    index = _rows(folder / "index.csv")
    on_disk = {p.name[: -len("_image.nii.gz")] for p in folder.glob("*_image.nii.gz")}
    assert {r["series"] for r in index} == on_disk
    problems: list[str] = []
    for row in index:
        shape, spacing = _canonical_shape(row["shape"]), _canonical_spacing(row["spacing_mm"])
        image = load_scan(folder / f"{row['series']}_image.nii.gz")
        label = load_scan(folder / f"{row['series']}_label.nii.gz")
        for scan, kind in ((image, "image"), (label, "label")):
            _check_geometry(scan, shape, spacing, f"{row['series']} {kind}", problems)
        labels = label.array.astype(np.int32)
        if not set(np.unique(labels).tolist()) <= {0, 1, 2, 3}:
            problems.append(f"{row['series']}: label values {np.unique(labels)} outside 0..3")
            continue
        # the canal (3) lies posterior of the discs (2): columns run towards posterior
        if (labels == 2).any() and (labels == 3).any() and not _mean_index(labels, 3, 2) > _mean_index(labels, 2, 2):
            problems.append(f"{row['series']}: canal not posterior of the discs")
    assert not problems, "\n".join(problems)


def test_spider_images(shared_data):
    folder = shared_data / "spider"
    series = _rows(folder / "series.csv")
    on_disk = {p.stem for p in (folder / "images").glob("*.png")}
    assert {r["series"] for r in series} == on_disk
    problems: list[str] = []
    for row in series:
        spacing = tuple(float(v) for v in re.findall(r"[-+0-9.eE]+", row["PixelSpacing"]))
        rows, cols = (int(v) for v in row["png_rows_x_cols"].split("x"))
        scan = load_scan(folder / "images" / f"{row['series']}.png", spacing_mm=spacing)
        _check_geometry(scan, (1, rows, cols), (1.0, *spacing), row["series"], problems)
        if scan.array.max() <= scan.array.min():
            problems.append(f"{row['series']}: blank image")
    assert not problems, "\n".join(problems)


def test_slices2d(shared_data):
    folder = shared_data / "slices2d"
    images = sorted(folder.glob("*_image.png"))
    assert images, "no slices2d images"
    problems: list[str] = []
    for path in images:
        label_path = path.with_name(path.name.replace("_image", "_label"))
        image = load_scan(path, spacing_mm=(1.3, 1.3))  # spacing not recorded; README estimates ~1.3 mm
        label = load_scan(label_path, spacing_mm=(1.3, 1.3))
        for scan, name in ((image, path.name), (label, label_path.name)):
            _check_geometry(scan, (1, 256, 256), (1.0, 1.3, 1.3), name, problems)
        if not set(np.unique(label.array).tolist()) <= {0, 1, 2}:
            problems.append(f"{label_path.name}: values outside 0 (background), 1 (disc), 2 (body)")
    assert not problems, "\n".join(problems)
