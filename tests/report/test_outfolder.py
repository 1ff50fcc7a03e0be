"""Outputs are checked before the work and appear whole or not at all; another input's folder is never mixed in."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lumbarkit.errors import InputError
from lumbarkit.report.outfolder import MARKER, check_label_file, check_output, staged_folder


def _made(folder, source, files=("result.json",)):
    with staged_folder(folder, source) as tmp:
        for name in files:
            (tmp / name).write_text("x")


def test_a_new_or_empty_folder_is_fine(tmp_path):
    check_output(tmp_path / "new" / "deeper", tmp_path / "scan.nii.gz")
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty", tmp_path / "scan.nii.gz")


def test_a_file_is_not_an_output_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        check_output(tmp_path / "f", tmp_path / "scan.nii.gz")


def test_another_inputs_results_are_refused_unless_overwrite(tmp_path):
    out = tmp_path / "out"
    _made(out, tmp_path / "patient_a.nii.gz", ("result.json", "segmentation.dcm", "report_sr.dcm"))
    check_output(out, tmp_path / "patient_a.nii.gz")  # the same input again: replaced whole
    with pytest.raises(InputError, match="another input"):
        check_output(out, tmp_path / "patient_b.nii.gz")
    check_output(out, tmp_path / "patient_b.nii.gz", overwrite=True)
    _made(out, tmp_path / "patient_b.nii.gz")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "result.json"]  # patient A's DICOM objects are gone


def test_a_folder_of_other_files_is_refused(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.docx").write_text("x")
    with pytest.raises(InputError, match="other files"):
        check_output(tmp_path / "mine", tmp_path / "scan.nii.gz")


def test_a_failed_run_leaves_the_previous_folder_untouched_and_no_temporary(tmp_path):
    out = tmp_path / "out"
    _made(out, tmp_path / "a.nii.gz", ("result.json",))
    with pytest.raises(RuntimeError):
        with staged_folder(out, tmp_path / "a.nii.gz") as tmp:
            (tmp / "result.json").write_text("half")
            raise RuntimeError("disk full")
    assert (out / "result.json").read_text() == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_label_file_targets(tmp_path):
    assert check_label_file(tmp_path / "labels.nii.gz") == tmp_path / "labels.nii.gz"
    assert check_label_file(tmp_path / "folder") is None
    with pytest.raises(InputError, match="a label map is written as"):
        check_label_file(tmp_path / "x.txt")
    (tmp_path / "old.nii.gz").write_text("x")
    with pytest.raises(InputError, match="--overwrite"):
        check_label_file(tmp_path / "old.nii.gz")


@pytest.mark.slow  # a subprocess
def test_an_unwritable_output_is_refused_before_the_work(tmp_path):
    from lumbarkit.phantom import make_phantom, write_phantom

    image = write_phantom(make_phantom(n_slices=3, noise_sigma=0.0), tmp_path, fmt="nifti")["image"]
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder would have to be made")
    res = subprocess.run([sys.executable, "-c", "from lumbarkit.cli.main import run; run()", "analyze", str(image),
                          "-o", str(blocker / "out")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "cannot write" in res.stderr
