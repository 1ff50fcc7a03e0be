"""`lumbarkit batch` by study: the series of one study are one job, as `analyze` treats them."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from lumbarkit.batch.inputs import discover_jobs
from lumbarkit.phantom import make_phantom
from lumbarkit.report.dicom import write_dicom_series

PHANTOM = dict(lordosis_deg=50.0, tilt_deg=15.0, shape_rc=(400, 320), n_slices=5)


def _study(folder: Path, damaged_t1: bool = False) -> str:
    """A T2 and a T1 series of one study (one frame of reference) in ``folder``; returns the StudyInstanceUID."""
    study, frame = generate_uid(), generate_uid()
    kw = dict(study_uid=study, frame_of_reference_uid=frame)
    write_dicom_series(make_phantom(sequence="T2", seed=3, **PHANTOM).scan, folder / "t2", series_description="t2_tse_sag", series_number=2, **kw)
    paths = write_dicom_series(make_phantom(sequence="T1", seed=3, **PHANTOM).scan, folder / "t1", series_description="t1_tse_sag",
                               series_number=3, **kw)
    if damaged_t1:
        paths[0].write_bytes(paths[0].read_bytes()[:300])  # a truncated header
    return study


def _nifti(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 3), dtype=np.int16), np.diag([0.8, 0.8, 3.0, 1.0])), path)
    return path


def test_series_of_one_study_are_one_job(tmp_path):
    _study(tmp_path / "patient_a")
    write_dicom_series(make_phantom(n_slices=3).scan, tmp_path / "patient_b" / "t2", series_description="t2_tse_sag")
    _nifti(tmp_path / "bids" / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    _nifti(tmp_path / "bids" / "sub-01" / "anat" / "sub-01_T2w.nii.gz")
    _nifti(tmp_path / "bids" / "sub-02" / "anat" / "sub-02_T2w.nii.gz")
    jobs = {j.display: j for j in discover_jobs(tmp_path).jobs}
    assert sorted(jobs) == ["bids/sub-01/anat", "bids/sub-02/anat/sub-02_T2w.nii.gz", "patient_a", "patient_b/t2"]
    a = jobs["patient_a"]
    assert [p.display for p in a.parts] == ["patient_a/t1", "patient_a/t2"] and a.error is None
    assert {p.series for p in a.parts} == {pydicom.dcmread(next((tmp_path / "patient_a" / d).glob("*.dcm"))).SeriesInstanceUID
                                           for d in ("t1", "t2")}
    assert [Path(p.input).name for p in jobs["bids/sub-01/anat"].parts] == ["sub-01_T1w.nii.gz", "sub-01_T2w.nii.gz"]
    assert not jobs["patient_b/t2"].parts and not jobs["bids/sub-02/anat/sub-02_T2w.nii.gz"].parts


def test_a_study_job_is_redone_when_one_of_its_series_changes(tmp_path):
    _study(tmp_path / "p")
    before = discover_jobs(tmp_path).jobs[0]
    key = before.key()  # computed now: a key reads the files' state when asked
    again = discover_jobs(tmp_path).jobs[0]
    assert before.id == again.id and key == again.key()
    f = next((tmp_path / "p" / "t1").glob("*.dcm"))
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    changed = discover_jobs(tmp_path).jobs[0]
    assert changed.id == before.id and changed.key() != key


def test_a_damaged_series_is_its_own_error_row_and_the_study_goes_on(tmp_path):
    _study(tmp_path / "p", damaged_t1=True)
    jobs = discover_jobs(tmp_path).jobs
    assert len(jobs) == 2 and not any(j.parts for j in jobs)  # one runnable series left: no study job
    assert sorted(bool(j.error) for j in jobs) == [False, True]


def test_manifest_study_column(tmp_path):
    a, b, c = (_nifti(tmp_path / f"{n}.nii.gz") for n in ("a_t1", "a_t2", "c_t2"))
    (tmp_path / "m.csv").write_text("input,study\na_t1.nii.gz,visit1\na_t2.nii.gz,visit1\nc_t2.nii.gz,\n")
    jobs = {j.display: j for j in discover_jobs(tmp_path / "m.csv").jobs}
    assert sorted(jobs) == [".", "c_t2.nii.gz"]
    assert [Path(p.input).name for p in jobs["."].parts] == ["a_t1.nii.gz", "a_t2.nii.gz"] and not jobs["c_t2.nii.gz"].parts


@pytest.mark.slow
def test_batch_writes_one_folder_and_cohort_rows_per_study_and_disc(tmp_path):
    _study(tmp_path / "in" / "p")
    out = tmp_path / "out"
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-m", "lumbarkit", "batch", str(tmp_path / "in"), "-o", str(out), "--workers", "1",
                           "--no-hotspots"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    doc = json.loads((folder / "result.json").read_text())
    assert [s["sequence"] for s in doc["study"]["series"]] == ["T1", "T2"]  # in the order of their folders
    with open(out / "cohort.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["level"] for r in rows] == [lv["level"] for lv in doc["levels"]]
    assert {r["series_id"] for r in rows} == {folder.name}
    graded = [r for r in rows if r["pfirrmann"]]
    assert doc["study"]["fused_by"].startswith("study grader")  # the packaged study grader
    assert graded and all(r["sequences"] == "T1+T2" for r in graded)


@pytest.mark.slow
def test_batch_dicom_and_keep_phi_options_and_they_redo_the_job(tmp_path, dciodvfy_errors):
    study, frame = generate_uid(), generate_uid()
    patient = {"PatientName": "Studybatch^Planted", "PatientID": "PID-STUDY-5521"}
    for sequence, number in (("T2", 2), ("T1", 3)):
        write_dicom_series(make_phantom(sequence=sequence, seed=3, **PHANTOM).scan, tmp_path / "in" / "p" / sequence.lower(),
                           series_description=f"{sequence.lower()}_tse_sag", series_number=number, study_uid=study,
                           frame_of_reference_uid=frame, patient=patient)
    out = tmp_path / "out"
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    args = [sys.executable, "-m", "lumbarkit", "batch", str(tmp_path / "in"), "-o", str(out), "--workers", "1", "--no-hotspots"]
    proc = subprocess.run(args + ["--dicom", "--keep-phi"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    doc = json.loads((folder / "result.json").read_text())
    assert doc["input"]["identifiers"]["PatientID"] == patient["PatientID"]
    for dcm in (folder / "segmentation.dcm", folder / "report_sr.dcm", folder / "series" / "1_T1" / "segmentation.dcm"):
        assert dcm.is_file() and dciodvfy_errors(dcm) == []
    again = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)  # without the options: redone
    assert again.returncode == 0 and "0 already complete" in again.stdout, again.stdout
    assert not (folder / "segmentation.dcm").exists()
    assert patient["PatientID"] not in (folder / "result.json").read_text()
