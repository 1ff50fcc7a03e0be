"""A completed series is skipped only for the very same input files and configuration."""

from __future__ import annotations

import json
import os
from dataclasses import replace

from lumbarkit.batch.cohort import MARKER
from lumbarkit.batch.inputs import Job
from lumbarkit.batch.outdir import is_complete
from lumbarkit.batch.worker import marker_document
from lumbarkit.pipeline import PipelineConfig


def _complete(outdir, job, config) -> None:
    (outdir / job.id).mkdir(parents=True)
    (outdir / job.id / MARKER).write_text(json.dumps(marker_document(job, config)))


def _stored(config) -> dict:
    return json.loads(json.dumps(marker_document(Job("x", "x", "x"), config)["config"]))


def test_same_input_and_config_is_complete_and_a_change_of_either_is_not(tmp_path):
    scan = tmp_path / "in" / "scan.nii.gz"
    scan.parent.mkdir()
    scan.write_bytes(b"first version")
    job, config = Job("s1", str(scan), "scan.nii.gz"), PipelineConfig()
    out = tmp_path / "out"
    _complete(out, job, config)
    assert is_complete(out, job, _stored(config))
    assert not is_complete(out, job, _stored(replace(config, tta=False)))  # another configuration
    scan.write_bytes(b"a replaced scan, same path")  # another size and mtime
    assert not is_complete(out, job, _stored(config))


def test_the_same_relative_name_under_another_root_is_not_complete(tmp_path):
    for root in ("site_a", "site_b"):
        (tmp_path / root).mkdir()
        (tmp_path / root / "scan.nii.gz").write_bytes(b"same bytes")
        os.utime(tmp_path / root / "scan.nii.gz", ns=(1, 1))
    config = PipelineConfig()
    a = Job("s1", str(tmp_path / "site_a" / "scan.nii.gz"), "scan.nii.gz")
    b = Job("s1", str(tmp_path / "site_b" / "scan.nii.gz"), "scan.nii.gz")
    _complete(tmp_path / "out", a, config)
    assert is_complete(tmp_path / "out", a, _stored(config)) and not is_complete(tmp_path / "out", b, _stored(config))


def test_a_dicom_series_fingerprint_covers_its_files(tmp_path):
    files = []
    for i in range(3):
        f = tmp_path / f"{i}.dcm"
        f.write_bytes(b"x" * (i + 1))
        files.append(str(f))
    job = Job("s", str(tmp_path), "study", files=tuple(files))
    before = job.fingerprint()
    (tmp_path / "1.dcm").write_bytes(b"changed!")
    assert job.fingerprint() != before


def test_non_sagittal_series_of_a_study_are_skipped_with_a_note(tmp_path):
    import numpy as np

    from lumbarkit.batch import discover_jobs
    from lumbarkit.phantom import make_phantom
    from lumbarkit.report.dicom import write_dicom_series
    from lumbarkit.scan import Scan

    study = tmp_path / "study"
    write_dicom_series(make_phantom(n_slices=3, noise_sigma=0.0).scan, study / "sag", series_description="T2 SAG")
    affine = np.zeros((4, 4))  # stored as displayed: slices towards inferior, rows posterior, cols left
    affine[2, 0], affine[1, 1], affine[0, 2], affine[3, 3] = -4.0, -0.8, -0.75, 1
    axial = Scan(np.random.default_rng(0).random((4, 32, 32)).astype(np.float32), affine)
    write_dicom_series(axial, study / "ax", series_description="T2 AX", series_number=2)
    found = discover_jobs(study)
    assert [j.display for j in found.jobs] == ["sag"] and all(j.error is None for j in found.jobs)
    assert any("1 non-sagittal DICOM series skipped (axial)" in n for n in found.notes)


def test_manifest_lumbar_count_is_read_checked_and_part_of_the_key(tmp_path):
    from lumbarkit.batch.inputs import read_manifest

    (tmp_path / "a.nii.gz").write_bytes(b"x")
    (tmp_path / "m.csv").write_text("input,id,lumbar_vertebrae\na.nii.gz,a6,6\na.nii.gz,a5,\na.nii.gz,a7,7\n")
    six, usual, bad = read_manifest(tmp_path / "m.csv")
    assert six.lumbar_vertebrae == 6 and six.error is None
    assert usual.lumbar_vertebrae is None and usual.error is None
    assert bad.error is not None and "4, 5 or 6" in bad.error
    assert six.key() != replace(six, lumbar_vertebrae=None).key()  # declaring the count redoes the series


def test_config_file_lumbar_count_is_checked(tmp_path):
    import pytest

    from lumbarkit.errors import InputError

    (tmp_path / "ok.yaml").write_text("lumbar_vertebrae: 4\n")
    assert PipelineConfig.from_yaml(tmp_path / "ok.yaml").lumbar_vertebrae == 4
    (tmp_path / "bad.yaml").write_text("lumbar_vertebrae: 3\n")
    with pytest.raises(InputError, match="4, 5 or 6"):
        PipelineConfig.from_yaml(tmp_path / "bad.yaml")
