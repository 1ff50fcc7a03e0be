"""DICOM reading of damaged and unusual series: truncated, corrupt, missing or doubled slices, odd pixels."""

from __future__ import annotations


import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    generate_uid,
)

from lumbarkit.errors import InputError
from lumbarkit.io.dicom import is_dicom_file, read_dicom
from lumbarkit.report.dicom import write_dicom_series
from lumbarkit.scan import Scan
from dicom_volumes import canonical_affine, pattern  # noqa: E402 (tests/io/ helper)


# ----------------------------------------------------------------------------- damaged series


@pytest.fixture
def series(tmp_path):
    folder = tmp_path / "series"
    paths = write_dicom_series(Scan(pattern(), canonical_affine()), folder)
    return folder, paths


def test_truncated_pixels_in_a_series_is_an_error(series):
    folder, paths = series
    data = paths[3].read_bytes()
    paths[3].write_bytes(data[: len(data) - 200])
    with pytest.raises(InputError, match=paths[3].name):
        read_dicom(folder)


def test_truncated_header_in_a_series_is_an_error(series):
    folder, paths = series
    paths[4].write_bytes(paths[4].read_bytes()[:400])
    with pytest.raises(InputError, match=paths[4].name):
        read_dicom(folder)


def test_corrupt_dcm_among_good_files_is_an_error(series):
    folder, _ = series
    (folder / "junk.dcm").write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(InputError, match="junk.dcm"):
        read_dicom(folder)


def test_missing_slice_is_an_error(series):
    folder, paths = series
    paths[3].unlink()
    with pytest.raises(InputError, match="non-uniform slice spacing"):
        read_dicom(folder)


def test_two_images_at_one_position_is_an_error(series):
    folder, paths = series
    ds = pydicom.dcmread(paths[2])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(folder / "second_echo.dcm", enforce_file_format=True)
    with pytest.raises(InputError, match="same slice position"):
        read_dicom(folder)


def test_mixed_orientations_in_one_series_is_an_error(series):
    folder, paths = series
    ds = pydicom.dcmread(paths[2])
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.save_as(paths[2], enforce_file_format=True)
    with pytest.raises(InputError):
        read_dicom(folder, require_sagittal=False)


def test_float_pixels_with_nan_are_refused(tmp_path):
    paths = write_dicom_series(Scan(pattern((1, 20, 20)), canonical_affine()), tmp_path)
    ds = pydicom.dcmread(paths[0])
    del ds.PixelData
    del ds.PixelRepresentation
    ds.BitsAllocated = 32
    values = np.ones((20, 20), dtype=np.float32)
    values[3, 4] = np.nan
    ds.FloatPixelData = values.tobytes()
    ds.save_as(paths[0], enforce_file_format=True)
    with pytest.raises(InputError, match="non-finite"):
        read_dicom(tmp_path)


def test_raw_files_without_preamble_or_extension(series):
    folder, paths = series
    for n, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        del ds.file_meta
        ds.preamble = None
        ds.save_as(path.with_suffix(""), enforce_file_format=False, implicit_vr=n % 2 == 0, little_endian=True)
        path.unlink()
    assert is_dicom_file(paths[0].with_suffix(""))
    np.testing.assert_array_equal(read_dicom(folder).array, pattern())


def test_rescale_is_applied_per_slice(series):
    folder, paths = series
    ds = pydicom.dcmread(paths[4])  # values 40000..42319, all even after doubling below
    ds.PixelData = (ds.pixel_array // 2).astype(np.uint16).tobytes()
    ds.RescaleSlope, ds.RescaleIntercept = "2", "0"
    ds.save_as(paths[4], enforce_file_format=True)
    expected = pattern()
    expected[4] = 2 * (expected[4] // 2)
    np.testing.assert_array_equal(read_dicom(folder).array, expected)


def test_monochrome1_is_inverted(series):
    folder, paths = series
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.PhotometricInterpretation = "MONOCHROME1"
        ds.save_as(path, enforce_file_format=True)
    values = pattern()
    np.testing.assert_array_equal(read_dicom(folder).array, values.max() + values.min() - values)


def test_localizer_is_not_a_default_candidate(tmp_path):
    write_dicom_series(Scan(pattern(), canonical_affine()), tmp_path / "a", series_description="T2 SAG", series_number=2)
    write_dicom_series(Scan(pattern((1, 24, 20)), canonical_affine()), tmp_path / "b", series_description="localizer T2", series_number=1)
    assert read_dicom(tmp_path).metadata.series_description == "T2 SAG"


def test_multiframe_without_functional_groups_is_refused(tmp_path):
    paths = write_dicom_series(Scan(pattern((1, 24, 20)), canonical_affine()), tmp_path)
    ds = pydicom.dcmread(paths[0])
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2
    ds.save_as(paths[0], enforce_file_format=True)
    with pytest.raises(InputError, match="multi-frame"):
        read_dicom(tmp_path)
