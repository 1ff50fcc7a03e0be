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
