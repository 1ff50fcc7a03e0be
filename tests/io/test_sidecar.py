"""BIDS / dcm2niix JSON sidecars and BIDS suffixes give a NIfTI its sequence, field strength and vendor."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lumbarkit.errors import InputError
from lumbarkit.io import load_scan
from lumbarkit.io.sidecar import sidecar_identifiers

T2_TSE = {"SeriesDescription": "t2_tse_sag_384", "EchoTime": 0.098, "RepetitionTime": 3.2, "MagneticFieldStrength": 3,
          "Manufacturer": "Siemens", "MRAcquisitionType": "2D", "SliceThickness": 4, "SpacingBetweenSlices": 4.4,
          "InstitutionName": "Planted General Hospital", "PatientName": "Planted^Jane"}


def _nifti(folder: Path, name: str, sidecar: dict | str | None = None, slice_mm: float = 4.4) -> Path:
    """A small sagittal volume (slices along the third voxel axis, as dcm2niix writes them) and its sidecar."""
    affine = np.array([[0, 0, -slice_mm, 20], [-0.7, 0, 0, 90], [0, 0.7, 0, -80], [0, 0, 0, 1.0]])
    path = folder / name
    nib.save(nib.Nifti1Image(np.zeros((32, 40, 5), dtype=np.int16), affine), path)
    if sidecar is not None:
        text = sidecar if isinstance(sidecar, str) else json.dumps(sidecar)
        path.with_name(name.split(".nii")[0] + ".json").write_text(text)
    return path


def test_dcm2niix_sidecar_gives_sequence_field_and_vendor(tmp_path):
    meta = load_scan(_nifti(tmp_path, "t2.nii.gz", T2_TSE)).metadata
    assert (meta.sequence, meta.series_description, meta.manufacturer, meta.field_strength_t) == ("T2", "t2_tse_sag_384", "Siemens", 3.0)
    assert meta.notes == ()


@pytest.mark.parametrize("times,expected", [((0.012, 0.55), "T1"), ((0.1, 4.0), "T2"), ((0.025, 2.5), "PD")])
def test_sidecar_times_are_seconds(tmp_path, times, expected):
    """No description: the family comes from TE/TR given in seconds (BIDS), read as ms like DICOM's."""
    sidecar = {"EchoTime": times[0], "RepetitionTime": times[1]}
    assert load_scan(_nifti(tmp_path, "x.nii", sidecar)).metadata.sequence == expected


def test_stir_by_inversion_time(tmp_path):
    sidecar = {"SeriesDescription": "sag 3", "EchoTime": 0.06, "RepetitionTime": 4.0, "InversionTime": 0.15}
    assert load_scan(_nifti(tmp_path, "x.nii.gz", sidecar)).metadata.sequence == "STIR"


@pytest.mark.parametrize("name,sidecar,expected", [
    ("sub-01_T1w.nii.gz", None, "T1"),
    ("sub-01_ses-1_T2w.nii.gz", None, "T2"),
    ("sub-01_STIR.nii.gz", None, "STIR"),
    ("sub-01_T2w.nii.gz", {"MRAcquisitionType": "3D", "SeriesDescription": "t2_space_sag"}, "T2_SPACE"),
    ("sub-01_acq-sag_dwi.nii.gz", None, "unknown"),
    ("scan.nii.gz", None, "unknown"),
])
def test_bids_suffix(tmp_path, name, sidecar, expected):
    assert load_scan(_nifti(tmp_path, name, sidecar)).metadata.sequence == expected


def test_suffix_and_sidecar_disagreeing_is_a_note(tmp_path):
    meta = load_scan(_nifti(tmp_path, "sub-01_T1w.nii.gz", T2_TSE)).metadata
    assert meta.sequence == "T1"
    assert len(meta.notes) == 1 and "names T1" in meta.notes[0] and "T2" in meta.notes[0]


def test_slice_spacing_disagreeing_with_the_affine_is_a_note(tmp_path):
    assert load_scan(_nifti(tmp_path, "a.nii.gz", T2_TSE, slice_mm=4.45)).metadata.notes == ()  # within 0.1 mm
    notes = load_scan(_nifti(tmp_path, "b.nii.gz", T2_TSE, slice_mm=3.3)).metadata.notes
    assert len(notes) == 1 and "4.4 mm" in notes[0] and "3.3 mm" in notes[0]


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_broken_sidecar_is_a_one_line_input_error(tmp_path, text):
    with pytest.raises(InputError, match="sidecar") as info:
        load_scan(_nifti(tmp_path, "x.nii.gz", text))
    assert "\n" not in str(info.value)


def test_sidecar_identifiers_only_for_keep_phi(tmp_path):
    path = _nifti(tmp_path, "t2.nii.gz", T2_TSE)
    assert sidecar_identifiers(path) == {"InstitutionName": "Planted General Hospital", "PatientName": "Planted^Jane"}
    meta = load_scan(path).metadata
    assert "Planted" not in json.dumps(meta.to_dict())
