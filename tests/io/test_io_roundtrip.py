"""Phantom -> NIfTI / MHA / NRRD / DICOM -> load_scan keeps voxels and geometry."""

from __future__ import annotations

import numpy as np
import pytest

from lumbarkit.io import load_scan
from lumbarkit.io.volume import read_label_volume, write_itk, write_nifti
from lumbarkit.phantom import make_phantom, write_phantom


@pytest.fixture(scope="module")
def oblique():
    """A curved phantom acquired obliquely (affine with off-axis in-plane directions)."""
    return make_phantom(lordosis_deg=30.0, in_plane_rotation_deg=15.0, slip_mm={"L5": 5.0}, n_slices=9)


def _same_scan(loaded, ph, fmt: str) -> None:
    assert loaded.metadata.source_format == fmt
    assert loaded.shape == ph.scan.shape
    assert loaded.orientation == "LIP"
    np.testing.assert_allclose(loaded.affine, ph.scan.affine, atol=1e-5)
    np.testing.assert_array_equal(loaded.array, ph.scan.array)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mha", ".nrrd"])
@pytest.mark.parametrize("which", ["phantom", "oblique"])
def test_volume_roundtrip(tmp_path, request, suffix, which):
    ph = request.getfixturevalue(which)
    path = tmp_path / f"scan{suffix}"
    if suffix.startswith(".nii"):
        write_nifti(ph.scan.array, ph.scan.affine, path)
    else:
        write_itk(ph.scan.array, ph.scan.affine, path)
    fmt = "nifti" if suffix.startswith(".nii") else suffix[1:]
    _same_scan(load_scan(path), ph, fmt)


@pytest.mark.parametrize("axcodes", [None, "RAS", "PSR", "ILA"])
def test_write_phantom_nifti_any_storage_order(tmp_path, oblique, axcodes):
    files = write_phantom(oblique, tmp_path, fmt="nifti", axcodes=axcodes)
    assert files["image"].name == "phantom_image.nii.gz" and files["label"].name == "phantom_label.nii.gz"
    _same_scan(load_scan(files["image"]), oblique, "nifti")
    np.testing.assert_array_equal(read_label_volume(files["label"]), oblique.labels)


@pytest.mark.parametrize("fmt", ["mha", "nrrd"])
def test_write_phantom_itk(tmp_path, phantom, fmt):
    files = write_phantom(phantom, tmp_path, fmt=fmt, axcodes="RAS")
    _same_scan(load_scan(files["image"]), phantom, fmt)
    np.testing.assert_array_equal(read_label_volume(files["label"]), phantom.labels)


def test_write_phantom_rejects_unknown_format(tmp_path, phantom):
    with pytest.raises(ValueError):
        write_phantom(phantom, tmp_path, fmt="analyze")


def _dicom_writer():
    from lumbarkit.report.dicom import write_dicom_series

    return write_dicom_series


@pytest.mark.parametrize("which", ["phantom", "oblique"])
def test_dicom_roundtrip(tmp_path, request, which):
    _dicom_writer()
    ph = request.getfixturevalue(which)
    files = write_phantom(ph, tmp_path, fmt="dicom", patient={"PatientName": "PHANTOM^TEST"})
    assert files["image"].is_dir() and len(list(files["image"].glob("*.dcm"))) == ph.scan.shape[0]
    loaded = load_scan(files["image"])
    assert loaded.metadata.source_format == "dicom"
    assert loaded.metadata.sequence == "T2"
    assert loaded.shape == ph.scan.shape and loaded.orientation == "LIP"
    np.testing.assert_allclose(loaded.affine, ph.scan.affine, atol=1e-4)
    # stored as uint16 with a rescale slope: values agree within one quantisation step
    step = (float(ph.scan.array.max()) - float(ph.scan.array.min())) / 65000.0
    np.testing.assert_allclose(loaded.array, ph.scan.array, atol=2 * step + 1e-3)
    np.testing.assert_array_equal(read_label_volume(files["label"]), ph.labels)
