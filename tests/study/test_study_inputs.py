"""What a study is: DICOM study folders, BIDS folders and several inputs, resolved before any analysis."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from lumbarkit.errors import InputError
from lumbarkit.phantom import make_phantom
from lumbarkit.report.dicom import write_dicom_series
from lumbarkit.study import find_study

SMALL = dict(n_slices=3, vertebrae=("L3", "L4", "L5", "S1"), noise_sigma=0)


def _series(folder: Path, description: str, study: str, number: int, sequence: str = "T2", **tags) -> Path:
    scan = make_phantom(sequence=sequence, **SMALL).scan
    write_dicom_series(scan, folder, series_description=description, study_uid=study, series_number=number)
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        for key, value in tags.items():
            setattr(ds, key, value)
        ds.save_as(path)
    return folder


@pytest.fixture(scope="module")
def mixed_study(tmp_path_factory) -> Path:
    """One study folder: T2, T1 and T2 SPACE sagittal series, an axial series and a localizer (nested folders)."""
    root = tmp_path_factory.mktemp("mixed") / "study"
    uid = generate_uid()
    _series(root / "a" / "t2", "t2_tse_sag_384", uid, 2)
    _series(root / "a" / "t1", "t1_tse_sag", uid, 3, sequence="T1")
    _series(root / "b" / "space", "T2_space_sag_iso", uid, 4, MRAcquisitionType="3D")
    _series(root / "b" / "ax", "t2_tse_tra", uid, 5, ImageOrientationPatient=[1, 0, 0, 0, 1, 0])
    _series(root / "loc", "localizer", uid, 1, ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    return root


def test_mixed_dicom_study_keeps_the_sagittal_series(mixed_study):
    study = find_study([mixed_study])
    assert [s.sequence for s in study.series] == ["T2", "T1", "T2_SPACE"]
    assert {s.series_uid for s in study.series} == {pydicom.dcmread(next((mixed_study / d).rglob("*.dcm"))).SeriesInstanceUID
                                                    for d in ("a/t2", "a/t1", "b/space")}
    assert len(study.notes) == 2
    assert any("series 1" in n and "localizer" in n for n in study.notes)
    assert any("series 5" in n and "axial" in n for n in study.notes)


def test_series_option_still_picks_one(mixed_study):
    study = find_study([mixed_study], series="t1_tse_sag")
    assert study.single and study.series[0].sequence == "T1"


def test_two_studies_in_one_folder_are_an_error_listing_them(tmp_path):
    _series(tmp_path / "x", "t2_tse_sag", generate_uid(), 1)
    _series(tmp_path / "y", "t2_tse_sag", generate_uid(), 1)
    with pytest.raises(InputError, match="holds 2 studies") as info:
        find_study([tmp_path])
    assert "\n" not in str(info.value) and str(info.value).count("1 series") == 2


def _nifti(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 3), dtype=np.int16), np.diag([0.8, 0.8, 3.0, 1.0])), path)
    return path


def test_bids_folder(tmp_path):
    t1 = _nifti(tmp_path / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    t2 = _nifti(tmp_path / "sub-01" / "anat" / "sub-01_T2w.nii.gz")
    _nifti(tmp_path / "sub-01" / "anat" / "sub-01_acq-sag_dseg.nii.gz")
    _nifti(tmp_path / "derivatives" / "sub-01_T2w.nii.gz")  # derived data is not an input
    study = find_study([tmp_path])
    assert [(s.source, s.sequence) for s in study.series] == [(t1, "T1"), (t2, "T2")]
    assert len(study.notes) == 1 and "dseg" in study.notes[0]


def test_bids_folder_with_two_subjects_is_an_error(tmp_path):
    _nifti(tmp_path / "sub-01_T2w.nii.gz")
    _nifti(tmp_path / "sub-02_T2w.nii.gz")
    with pytest.raises(InputError, match="2 subjects/sessions.*sub-01.*sub-02"):
        find_study([tmp_path])


def test_several_inputs_are_one_study(tmp_path):
    a, b = _nifti(tmp_path / "t1.nii.gz"), _nifti(tmp_path / "scan_T2w.nii")
    study = find_study([a, b])
    assert [s.source for s in study.series] == [a, b] and [s.sequence for s in study.series] == ["unknown", "T2"]
    with pytest.raises(InputError, match="twice"):
        find_study([a, a])
    with pytest.raises(InputError, match="--series"):
        find_study([a, b], series="x")
    with pytest.raises(InputError, match="not found"):
        find_study([a, tmp_path / "missing.nii.gz"])


def test_sequence_option_declares_each_series(tmp_path):
    a, b = _nifti(tmp_path / "first.nii.gz"), _nifti(tmp_path / "second.nii.gz")
    study = find_study([a, b], sequences=["T1", "T2"])
    assert [(s.sequence, s.declared) for s in study.series] == [("T1", "T1"), ("T2", "T2")]
    assert find_study([a, b]).series[0].declared is None
    with pytest.raises(InputError, match="2 series"):
        find_study([a, b], sequences=["T2"])
    with pytest.raises(InputError, match="--sequence 'T3'"):
        find_study([a, b], sequences=["T1", "T3"])
