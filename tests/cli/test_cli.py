"""The ``lumbarkit`` console script, run as a subprocess like a user would."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lumbarkit import __version__

RUN = "from lumbarkit.cli.main import run; run()"


def lumbarkit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}  # wide, plain rich tables
    return subprocess.run(
        [sys.executable, "-c", RUN, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd, env=env
    )


@pytest.mark.slow  # a subprocess
def test_version():
    res = lumbarkit("--version")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"lumbarkit {__version__}"


@pytest.mark.slow  # a subprocess
def test_info_on_phantom_nifti(tmp_path, phantom):
    from lumbarkit.phantom import write_phantom

    files = write_phantom(phantom, tmp_path, fmt="nifti")
    res = lumbarkit("info", files["image"])
    assert res.returncode == 0, res.stderr
    assert " x ".join(str(s) for s in phantom.scan.shape) in res.stdout
    assert "3 x 0.8 x 0.8 mm" in res.stdout
    assert "LIP" in res.stdout


@pytest.mark.slow  # a subprocess
def test_info_on_spider_png(shared_data):
    res = lumbarkit("info", shared_data / "spider" / "images" / "1_t2.png", "--spacing", "0.625", "0.625")
    assert res.returncode == 0, res.stderr
    assert "1 x 578 x 448" in res.stdout
    assert "0.625" in res.stdout


@pytest.mark.slow  # a subprocess
def test_info_on_missing_input_is_one_line_error(tmp_path):
    res = lumbarkit("info", tmp_path / "nothing.nii.gz")
    assert res.returncode == 2
    assert res.stderr.strip().startswith("error: input not found") and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # a subprocess
def test_demo(tmp_path):
    out = tmp_path / "demo"
    res = lumbarkit("demo", "-o", out)
    assert res.returncode == 0, res.stderr
    assert (out / "phantom_dicom").is_dir() and any((out / "phantom_dicom").glob("*.dcm"))
    assert (out / "phantom_label.nii.gz").is_file()
    assert "LIP" in res.stdout and "0.8" in res.stdout
    report = out / "analysis" / "report.html"
    assert f"report: {report}" in res.stdout.replace("\n", "")
    assert report.is_file() and (out / "analysis" / "result.json").is_file()
    with open(out / "analysis" / "levels.csv", newline="") as fh:
        grades = [r["meyerding_grade"] for r in csv.DictReader(fh)]
    assert grades and all(g in ("", "0") for g in grades)  # the phantom has no slip: none may be reported
    again = lumbarkit("demo", "-o", out)  # refuses to mix two phantom series in one folder
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert lumbarkit("demo", "-o", out, "--overwrite").returncode == 0


@pytest.mark.slow  # a subprocess
@pytest.mark.parametrize("command", ["help", "info"])
def test_help_and_info_never_import_torch(tmp_path, phantom, command):
    from lumbarkit.phantom import write_phantom

    image = write_phantom(phantom, tmp_path, fmt="nifti")["image"]
    argv = ["--help"] if command == "help" else ["info", str(image)]
    code = (
        "import sys\n"
        f"sys.argv = ['lumbarkit', *{argv!r}]\n"
        "from lumbarkit.cli.main import run\n"
        "try:\n    run()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print('HEAVY=' + ','.join(m for m in ('torch', 'monai') if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.rstrip().splitlines()[-1] == "HEAVY=", res.stdout[-300:]


@pytest.mark.slow  # subprocesses
@pytest.mark.parametrize("args, words", [
    (["analyze"], "Missing argument"),
    (["analyze", "scan.nii.gz"], "Missing option"),
    (["no-such-command"], "No such command"),
    (["batch", "x", "-o", "y", "--workers", "zero"], "workers"),
    (["segment", "x", "-o", "y", "--no-such-option"], "No such option"),
    (["analyze", "x", "-o", "y", "--lumbar-vertebrae", "7"], "lumbar-vertebrae"),
])
def test_usage_errors_are_one_line_and_exit_2(args, words):
    """Whatever click typer brings (0.29 vendors its own), a usage error is one line on stderr and exit code 2."""
    res = lumbarkit(*args)
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0]
    assert "unexpected" not in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow  # a subprocess
def test_bare_command_prints_help_without_an_error():
    res = lumbarkit()
    assert "analyze" in res.stdout and "error" not in res.stderr.lower()


@pytest.mark.slow  # a subprocess
def test_info_on_a_study_lists_every_series_with_its_full_uid(tmp_path):
    from lumbarkit.phantom import make_phantom
    from lumbarkit.report.dicom import write_dicom_series

    scan = make_phantom(n_slices=3, noise_sigma=0.0).scan
    write_dicom_series(scan, tmp_path / "study" / "a", series_description="T2 SAG", series_uid="1.2.3.4.5.6.7.8.9.10.11.12.13")
    write_dicom_series(scan, tmp_path / "study" / "b", series_description="T1 SAG", series_uid="1.2.3.4.5.6.7.8.9.10.11.12.14",
                       series_number=2)
    res = lumbarkit("info", tmp_path / "study")
    assert res.returncode == 0, res.stderr
    assert "1.2.3.4.5.6.7.8.9.10.11.12.13" in res.stdout and "1.2.3.4.5.6.7.8.9.10.11.12.14" in res.stdout
    assert "T1 SAG" in res.stdout and "sagittal" in res.stdout
