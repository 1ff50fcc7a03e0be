"""Unusable inputs through the real command line: one ``error:`` line on stderr, no traceback."""

from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pydicom
import pytest

from lumbarkit.report.dicom import write_dicom_series
from lumbarkit.scan import Scan

CLI = [sys.executable, "-c", "from lumbarkit.cli.main import run; run()"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=120)


def sagittal_scan(shape=(5, 20, 18)) -> Scan:
    k, i, j = np.indices(shape)
    affine = np.zeros((4, 4))
    affine[0, 0], affine[2, 1], affine[1, 2], affine[3, 3] = -3.0, -0.7, -0.7, 1
    return Scan((1000 * k + 30 * i + j).astype(np.float32), affine)


def axial_scan() -> Scan:
    affine = np.zeros((4, 4))
    affine[2, 0], affine[1, 1], affine[0, 2], affine[3, 3] = -4.0, -0.8, -0.8, 1
    return Scan(sagittal_scan().array, affine)


def _series(tmp_path, name="series", **kwargs):
    folder = tmp_path / name
    return folder, write_dicom_series(kwargs.pop("scan", sagittal_scan()), folder, **kwargs)


# Each builder makes a bad input in tmp_path and returns (CLI arguments, expected words in the message).


def missing_path(tmp_path):
    return [tmp_path / "nope"], "not found"


def empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    return [tmp_path / "empty"], "empty"


def folder_without_dicom(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("not an image")
    return [folder], "no DICOM files"


def corrupt_dcm_file(tmp_path):
    path = tmp_path / "corrupt.dcm"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    return [path], "corrupt.dcm"


def corrupt_dcm_in_folder(tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "corrupt.dcm").write_bytes(np.random.default_rng(1).bytes(4096))
    return [folder], "not a valid DICOM file"


def truncated_dicom_file(tmp_path):
    _, paths = _series(tmp_path)
    data = paths[0].read_bytes()
    paths[0].write_bytes(data[: len(data) // 2])
    return [paths[0]], paths[0].name


def truncated_header_file(tmp_path):
    _, paths = _series(tmp_path)
    paths[0].write_bytes(paths[0].read_bytes()[:300])
    return [paths[0]], "truncated"


def truncated_dicom_among_good_ones(tmp_path):
    folder, paths = _series(tmp_path)
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[: len(data) - 100])
    return [folder], paths[2].name


def dicom_without_pixel_data(tmp_path):
    _, paths = _series(tmp_path)
    ds = pydicom.dcmread(paths[0])
    del ds.PixelData
    ds.save_as(paths[0], enforce_file_format=True)
    return [paths[0]], "without pixel data"


def dicom_without_geometry(tmp_path):
    folder, paths = _series(tmp_path)
    for path in paths:
        ds = pydicom.dcmread(path)
        del ds.ImageOrientationPatient, ds.ImagePositionPatient, ds.PixelSpacing
        ds.save_as(path, enforce_file_format=True)
    return [folder], "geometry"


def mixed_series_without_choice(tmp_path):
    _series(tmp_path, "study/a", series_description="T2 SAG", series_number=1)
    _series(tmp_path, "study/b", series_description="T2 SAG FS", series_number=2)
    return [tmp_path / "study"], "--series"


def series_choice_matching_nothing(tmp_path):
    folder, _ = _series(tmp_path, series_description="T2 SAG")
    return [folder, "--series", "flair"], "T2 SAG"


def axial_only_study(tmp_path):
    _series(tmp_path, "study/ax1", scan=axial_scan(), series_description="T2 AX", series_number=1)
    _series(tmp_path, "study/ax2", scan=axial_scan(), series_description="T1 AX", series_number=2)
    return [tmp_path / "study"], "no sagittal series"


def png_without_spacing(tmp_path):
    import imageio.v3 as iio

    path = tmp_path / "slice.png"
    iio.imwrite(path, (np.arange(64 * 64) % 256).astype(np.uint8).reshape(64, 64))
    return [path], "--spacing"


def nifti_with_nan(tmp_path):
    import nibabel as nib

    data = np.ones((8, 8, 4), dtype=np.float32)
    data[2, 3, 1] = np.nan
    path = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1, 3, 1])), str(path))
    return [path], "non-finite"


def truncated_nifti_gz(tmp_path):
    path = tmp_path / "cut.nii.gz"
    raw = np.random.default_rng(2).normal(size=(32, 32, 8)).astype(np.float32)
    import nibabel as nib

    nib.save(nib.Nifti1Image(raw, np.eye(4)), str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises((EOFError, OSError, gzip.BadGzipFile)):
        gzip.decompress(path.read_bytes())
    return [path], "cut.nii.gz"


CASES = [
    missing_path, empty_folder, folder_without_dicom, corrupt_dcm_file, corrupt_dcm_in_folder,
    truncated_dicom_file, truncated_header_file, truncated_dicom_among_good_ones, dicom_without_pixel_data,
    dicom_without_geometry, mixed_series_without_choice, series_choice_matching_nothing, axial_only_study,
    png_without_spacing, nifti_with_nan, truncated_nifti_gz,
]


@pytest.mark.slow  # a subprocess
@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input_gives_one_error_line(tmp_path, case):
    args, expected = case(tmp_path)
    result = run_cli("info", *args)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.slow  # a subprocess
def test_good_dicom_folder_works_through_cli(tmp_path):
    folder, _ = _series(tmp_path, patient={"PatientName": "Doe^Jane", "PatientID": "SECRET123"})
    result = run_cli("info", folder)
    assert result.returncode == 0, result.stderr
    assert "LIP" in result.stdout and "T2" in result.stdout
    assert "Doe" not in result.stdout and "SECRET123" not in result.stdout
