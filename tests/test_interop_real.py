"""Issue 23 on a real T2 volume (ivd_11) written as a DICOM series, as a cohort reaches lumbarkit from other tools.

The series is de-identified the way PS3.15's basic profile does it (PatientSex, StudyID, ReferringPhysicianName,
StudyTime, AccessionNumber and PatientBirthDate removed) with PatientName, PatientID and InstitutionName planted.
It is analysed as written, JPEG-Lossless compressed by dcmtk, and converted to NIfTI + sidecar by dcm2niix;
the SEG and SR are checked by dicom3tools' validator, dcmtk's SR renderer and highdicom's reader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.shared]

PLANTED = {"PatientName": "Planted^Jane^Q", "PatientID": "PID-PLANTED-7731", "InstitutionName": "Planted General Hospital"}
REMOVED = ("PatientSex", "StudyID", "ReferringPhysicianName", "StudyTime", "AccessionNumber", "PatientBirthDate")
PATIENT_MODULE = {"PatientName", "PatientID"}  # where a derived object must carry the source's values


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "lumbarkit", *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("interop")


@pytest.fixture(scope="module")
def deidentified(shared_data, root) -> Path:
    from lumbarkit.io import load_scan
    from lumbarkit.report.dicom import write_dicom_series

    folder = root / "deidentified"
    write_dicom_series(load_scan(shared_data / "volumes" / "ivd_11_image.nii.gz"), folder,
                       series_description="t2_tse_sag", patient=PLANTED)
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        for keyword in REMOVED:
            delattr(ds, keyword)
        ds.save_as(path)
    return folder


def _analysed(source: Path, out: Path, *extra: str) -> Path:
    if not out.is_dir():
        proc = _cli("analyze", str(source), "-o", str(out), "--no-hotspots", *extra)
        assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def from_dicom(deidentified, root) -> Path:
    return _analysed(deidentified, root / "out_dicom", "--dicom")


def _grades(out: Path) -> dict:
    doc = json.loads((out / "result.json").read_text())
    return {d["level"]: {t: g["value"] for t, g in d.get("grades", {}).items()} for d in doc["levels"]}


def _numbers(doc, prefix="") -> dict[str, float]:
    """Every number in a result document by its path (grade probabilities left out: they are not measurements)."""
    out: dict[str, float] = {}
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key not in ("probabilities", "input", "timings_s"):
                out.update(_numbers(value, f"{prefix}/{key}"))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out.update(_numbers(value, f"{prefix}/{i}"))
    elif isinstance(doc, (int, float)) and not isinstance(doc, bool):
        out[prefix] = float(doc)
    return out


def test_deidentified_series_gives_valid_seg_and_sr(from_dicom, dciodvfy_errors):
    assert (from_dicom / "segmentation.dcm").is_file() and (from_dicom / "report_sr.dcm").is_file()
    assert _grades(from_dicom), "no disc graded"
    assert dciodvfy_errors(from_dicom / "segmentation.dcm") == []
    assert dciodvfy_errors(from_dicom / "report_sr.dcm") == []


def test_sr_renders_in_dcmtk(from_dicom, dicom_tool):
    proc = subprocess.run([dicom_tool("dsrdump"), str(from_dicom / "report_sr.dcm")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Imaging Measurement Report" in proc.stdout and "L4/L5" in proc.stdout


def test_seg_reads_back_to_the_label_map(from_dicom, deidentified):
    """Segment by segment, highdicom's reading of the SEG equals segmentation.nii.gz sampled at each source pixel."""
    hd = pytest.importorskip("highdicom")
    import nibabel as nib

    from lumbarkit.report.outputs import segment_names

    seg = hd.seg.segread(from_dicom / "segmentation.dcm")
    img = nib.load(from_dicom / "segmentation.nii.gz")
    labels, inverse = np.asarray(img.dataobj), np.linalg.inv(img.affine)
    names = segment_names(labels)
    assert [str(d.SegmentLabel) for d in seg.SegmentSequence] == [names[k] for k in sorted(names)]
    sources = [pydicom.dcmread(p) for p in sorted(deidentified.glob("*.dcm"))]
    masks = seg.get_pixels_by_source_instance([ds.SOPInstanceUID for ds in sources], combine_segments=True, relabel=False)
    by_number = {int(d.SegmentNumber): label for d, label in zip(seg.SegmentSequence, sorted(names))}
    for ds, mask in zip(sources, masks):
        iop, ipp = np.array(ds.ImageOrientationPatient, float), np.array(ds.ImagePositionPatient, float)
        dr, dc = (float(v) for v in ds.PixelSpacing)
        r, c = np.meshgrid(np.arange(ds.Rows), np.arange(ds.Columns), indexing="ij")
        ras = (ipp + r[..., None] * dr * iop[3:] + c[..., None] * dc * iop[:3]) * np.array([-1.0, -1.0, 1.0])
        index = np.round(ras @ inverse[:3, :3].T + inverse[:3, 3]).astype(int)
        expected = labels[index[..., 0], index[..., 1], index[..., 2]]
        got = np.vectorize(lambda n: by_number.get(int(n), 0))(mask)
        np.testing.assert_array_equal(got, np.where(np.isin(expected, list(names)), expected, 0))


def test_planted_identifiers_only_in_the_patient_module(from_dicom):
    needles = [v.encode() for v in PLANTED.values()]
    for f in from_dicom.rglob("*"):
        if f.is_file() and f.suffix != ".dcm":
            data = f.read_bytes()
            assert not [n for n in needles if n in data], f.name
    for name in ("segmentation.dcm", "report_sr.dcm"):
        ds = pydicom.dcmread(from_dicom / name)
        found = set()
        ds.walk(lambda d, elem: found.add(elem.keyword) if any(v in str(elem.value) for v in PLANTED.values()) else None)
        assert found == PATIENT_MODULE, (name, found)
        assert all(str(ds[k].value) == PLANTED[k] for k in PATIENT_MODULE)


def test_jpeg_lossless_series_gives_identical_grades(deidentified, from_dicom, root, dicom_tool, dciodvfy_errors):
    tool = dicom_tool("dcmcjpeg")
    folder = root / "jpeg_lossless"
    folder.mkdir()
    for path in deidentified.glob("*.dcm"):
        subprocess.run([tool, "+e1", str(path), str(folder / path.name)], check=True, capture_output=True)
    assert pydicom.dcmread(next(folder.glob("*.dcm"))).file_meta.TransferSyntaxUID == pydicom.uid.JPEGLosslessSV1
    out = _analysed(folder, root / "out_jpeg", "--dicom")
    assert _grades(out) == _grades(from_dicom)
    assert dciodvfy_errors(out / "segmentation.dcm") == [] and dciodvfy_errors(out / "report_sr.dcm") == []


def test_dcm2niix_nifti_is_read_as_t2_with_the_same_results(deidentified, from_dicom, root, dicom_tool):
    converted = root / "dcm2niix"
    converted.mkdir()
    proc = subprocess.run([dicom_tool("dcm2niix"), "-b", "y", "-z", "y", "-f", "%p_%s", "-o", str(converted), str(deidentified)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    nifti = next(converted.glob("*.nii.gz"))
    assert "InstitutionName" in json.loads(nifti.with_name(nifti.name[:-7] + ".json").read_text())
    out = _analysed(nifti, root / "out_nifti")
    doc = json.loads((out / "result.json").read_text())
    assert doc["input"]["sequence"] == "T2" and doc["input"]["field_strength_t"] == 1.5
    assert not [w for w in doc["warnings"] if "sequence" in w.lower() or "T2-weighted" in w]
    assert _grades(out) == _grades(from_dicom)
    reference = _numbers(json.loads((from_dicom / "result.json").read_text()))
    numbers = _numbers(doc)
    assert numbers.keys() == reference.keys()
    worst = max(abs(numbers[k] - reference[k]) for k in reference)
    assert worst <= 0.1, worst  # mm, degrees, ratios: within 0.1
    assert PLANTED["InstitutionName"] not in "".join(p.read_text(errors="ignore") for p in out.rglob("*") if p.is_file() and p.suffix in (".json", ".csv", ".html"))


def test_sr_values_are_coded_with_meanings_a_reader_understands(from_dicom):
    """Grades are "Pfirrmann grade III", "no Modic change"; present/absent and severity use SNOMED CT codes."""
    values = []
    for item in pydicom.dcmread(from_dicom / "report_sr.dcm").ContentSequence:
        for sub in getattr(item, "ContentSequence", []):
            for ev in getattr(sub, "ContentSequence", []):
                if ev.ValueType == "CODE" and ev.ConceptNameCodeSequence[0].CodeMeaning not in ("Finding Site", "Tracking Unique Identifier"):
                    code = ev.ConceptCodeSequence[0]
                    values.append((ev.ConceptNameCodeSequence[0].CodeMeaning, code.CodeMeaning, code.CodingSchemeDesignator,
                                   code.get("CodeValue") or code.get("LongCodeValue")))
    assert values
    meanings = {name: [] for name, *_ in values}
    for name, meaning, scheme, code in values:
        meanings[name].append((meaning, scheme, code))
    assert all(m.startswith("Pfirrmann grade ") for m, _, _ in meanings["Pfirrmann grade"])
    assert all(m == "no Modic change" or m.startswith("Modic type ") for m, _, _ in meanings["Modic change"])
    for meaning, scheme, code in meanings["disc herniation"]:
        assert (meaning, scheme, code) in (("Present", "SCT", "52101004"), ("Absent", "SCT", "272519000"))
    assert not [v for v in values if v[1].isdigit()]  # no bare "0"/"1"/"3" meanings any more
