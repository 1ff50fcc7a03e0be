"""`lumbarkit analyze` and `lumbarkit.analyze` on real shared data: outputs, schema, determinism, privacy."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # end to end through CLI subprocesses

PLANTED = {
    "PatientName": "Planted^Jane^Q", "PatientID": "PID-PLANTED-7731", "PatientBirthDate": "19510317",
    "AccessionNumber": "ACC-PLANTED-99", "InstitutionName": "Planted General Hospital",
    "ReferringPhysicianName": "Doctor^Planted", "StudyID": "STUDY-PLANTED",
}


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "lumbarkit", *args], capture_output=True, text=True, env=env, timeout=600)


def _schema() -> dict:
    from lumbarkit.results.scan_result import SCHEMA_PATH

    return json.loads(SCHEMA_PATH.read_text())


def _validate(doc: dict) -> None:
    import jsonschema

    jsonschema.validate(doc, _schema(), cls=jsonschema.Draft202012Validator)


@pytest.fixture(scope="module")
def volume_run(shared_data, tmp_path_factory):
    """analyze on a real 3D NIfTI volume (ivd source: T2 FSE, discs labelled)."""
    src = shared_data / "volumes" / "ivd_11_image.nii.gz"
    out = tmp_path_factory.mktemp("analyze_volume")
    proc = _cli("analyze", str(src), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    return src, out, proc


def test_volume_outputs_are_complete_and_valid(volume_run):
    import nibabel as nib

    src, out, proc = volume_run
    for name in ("result.json", "levels.csv", "vertebrae.csv", "segmentation.nii.gz", "qc.png", "report.html"):
        assert (out / name).is_file(), name
    assert f"report: {out / 'report.html'}" in proc.stdout
    doc = json.loads((out / "result.json").read_text())
    _validate(doc)
    levels = [r["level"] for r in doc["levels"]]
    assert {"L3/L4", "L4/L5", "L5/S1"} <= set(levels), levels
    assert doc["models"][0]["stage"] == "segmentation" and len(doc["models"][0]["sha256"]) == 64
    # segmentation on the input's own grid, with VerSe disc ids
    img, seg = nib.load(src), nib.load(out / "segmentation.nii.gz")
    assert seg.shape == img.shape and np.allclose(seg.affine, img.affine)
    ids = set(np.unique(np.asarray(seg.dataobj)).astype(int))
    assert {122, 123, 124} <= ids
    with open(out / "levels.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["level"] for r in rows] == levels
    assert "pfirrmann" in rows[0] and "disc_height_middle_mm" in rows[0]
    measured = [float(r["disc_height_middle_mm"]) for r in rows if r["disc_height_middle_mm"]]
    assert measured and all(3.0 < h < 20.0 for h in measured)  # lumbar disc heights, mm
    html = (out / "report.html").read_text()
    assert "Research use only" in html and "data:image/png;base64," in html and 'src="http' not in html


def test_result_json_is_byte_identical_on_rerun(volume_run, tmp_path):
    src, out, _ = volume_run
    proc = _cli("analyze", str(src), "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "result.json").read_bytes() == (out / "result.json").read_bytes()
    text = (out / "result.json").read_text()
    assert str(src.parent) not in text and "/tmp" not in text


def test_python_api_returns_result(shared_data):
    import lumbarkit

    result = lumbarkit.analyze(shared_data / "volumes" / "ivd_11_image.nii.gz", config=None)
    assert [i.name for i in result.levels.discs][-1] == "L5/S1"
    assert result.timings_s["total"] > 0
    _validate(json.loads(json.dumps(result.to_dict())))


def test_2d_slice_with_spacing(shared_data, tmp_path):
    import imageio.v3 as iio

    with open(shared_data / "spider" / "series.csv") as fh:
        row = next(r for r in csv.DictReader(fh) if r["series"].endswith("_t2"))
    image = shared_data / "spider" / "images" / f"{row['series']}.png"
    spacing = row["PixelSpacing"].strip("[]").replace(",", " ").split()
    proc = _cli("analyze", str(image), "--spacing", *spacing, "-o", str(tmp_path), "--no-hotspots")
    assert proc.returncode == 0, proc.stderr
    seg = iio.imread(tmp_path / "segmentation.png")
    assert seg.shape == iio.imread(image).shape[:2]
    doc = json.loads((tmp_path / "result.json").read_text())
    _validate(doc)
    assert doc["input"]["single_slice"] is True and len(doc["levels"]) >= 3


@pytest.fixture(scope="module")
def planted_dicom(shared_data, tmp_path_factory):
    """A DICOM series written from a real volume with identifiers planted in its tags."""
    from lumbarkit.io import load_scan
    from lumbarkit.report.dicom import write_dicom_series

    scan = load_scan(shared_data / "volumes" / "ivd_11_image.nii.gz")
    folder = tmp_path_factory.mktemp("planted") / "series"
    write_dicom_series(scan, folder, series_description="T2 SAG Planted^Jane", patient=PLANTED)
    return folder


def _leaks(folder: Path, skip_suffix: tuple[str, ...] = ()) -> list[str]:
    found = []
    needles = [v.encode() for v in PLANTED.values()] + [b"Planted"]
    for f in folder.rglob("*"):
        if f.is_file() and not f.name.endswith(skip_suffix):
            data = f.read_bytes()
            if f.name.endswith(".gz"):
                import gzip

                data = gzip.decompress(data)
            found += [f"{f.name}: {n.decode()}" for n in needles if n in data]
    return found


def test_no_identifier_leaks_from_dicom(planted_dicom, tmp_path):
    out = tmp_path / "out"
    proc = _cli("analyze", str(planted_dicom), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "result.json").exists() and (out / "report.html").exists()
    assert _leaks(out) == []
    assert "Planted" not in proc.stdout


def test_keep_phi_keeps_identifiers(planted_dicom, tmp_path):
    out = tmp_path / "out"
    proc = _cli("analyze", str(planted_dicom), "-o", str(out), "--keep-phi", "--no-hotspots")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "result.json").read_text())
    _validate(doc)
    assert doc["input"]["identifiers"]["PatientID"] == PLANTED["PatientID"]
    assert PLANTED["PatientID"] in (out / "report.html").read_text()


def test_dicom_seg_and_sr_reference_the_source(planted_dicom, tmp_path, dciodvfy_errors):
    pytest.importorskip("highdicom")
    import pydicom

    out = tmp_path / "out"
    proc = _cli("analyze", str(planted_dicom), "-o", str(out), "--dicom", "--no-hotspots")
    assert proc.returncode == 0, proc.stderr
    src_uid = pydicom.dcmread(next(planted_dicom.glob("*.dcm")), stop_before_pixels=True).SeriesInstanceUID
    seg = pydicom.dcmread(out / "segmentation.dcm")
    sr = pydicom.dcmread(out / "report_sr.dcm")
    assert seg.Modality == "SEG" and sr.Modality == "SR"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == src_uid
    names = {s.SegmentLabel for s in seg.SegmentSequence}
    assert any("L4/L5" in n for n in names), names
    # everything but the DICOM objects (which carry the patient module by necessity) stays clean
    assert _leaks(out, skip_suffix=(".dcm",)) == []
    assert dciodvfy_errors(out / "segmentation.dcm") == [] and dciodvfy_errors(out / "report_sr.dcm") == []


def test_not_a_spine_is_a_one_line_error(tmp_path):
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    noise = (rng.random((256, 256)) * 40).astype(np.uint8)
    path = tmp_path / "noise.png"
    iio.imwrite(path, noise)
    proc = _cli("analyze", str(path), "--spacing", "1", "1", "-o", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert "spine" in proc.stderr


def test_config_file_is_checked(tmp_path, shared_data):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("tta: false\nhotspotz: true\n")
    proc = _cli("analyze", str(shared_data / "volumes" / "ivd_11_image.nii.gz"), "-o", str(tmp_path / "o"), "--config", str(cfg))
    assert proc.returncode == 2 and "hotspotz" in proc.stderr
