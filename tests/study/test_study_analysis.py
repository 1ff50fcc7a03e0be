"""`lumbarkit analyze` on studies: every sagittal series analysed, levels checked, one fused grade per disc."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from lumbarkit.io.volume import write_nifti
from lumbarkit.phantom import make_phantom
from lumbarkit.report.dicom import write_dicom_series

pytestmark = pytest.mark.slow  # CLI subprocesses on several series

PHANTOM = dict(lordosis_deg=50.0, tilt_deg=15.0, shape_rc=(400, 320), n_slices=7)  # the demo's anatomy


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "lumbarkit", *args], capture_output=True, text=True, env=env, timeout=600)


def _validate(doc: dict) -> None:
    import jsonschema

    from lumbarkit.results.scan_result import SCHEMA_PATH

    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()), cls=jsonschema.Draft202012Validator)


def _phantom_niftis(folder: Path, contrasts: dict[str, str]) -> list[Path]:
    """The demo-anatomy phantom (seed 3) written as NIfTI files, file name -> contrast ("T1" or "T2")."""
    paths = []
    for name, contrast in contrasts.items():
        scan = make_phantom(sequence=contrast, seed=3, **PHANTOM).scan
        paths.append(write_nifti(scan.array, scan.affine, folder / name))
    return paths


@pytest.fixture(scope="module")
def dicom_study(tmp_path_factory) -> Path:
    """T2, T1 and T2 SPACE sagittal series of one phantom patient (one frame of reference), an axial series and a localizer."""
    root = tmp_path_factory.mktemp("study") / "dicom"
    study, frame = generate_uid(), generate_uid()
    kw = dict(study_uid=study, frame_of_reference_uid=frame)
    write_dicom_series(make_phantom(sequence="T2", seed=3, **PHANTOM).scan, root / "t2", series_description="t2_tse_sag_384", series_number=2, **kw)
    write_dicom_series(make_phantom(sequence="T1", seed=3, **PHANTOM).scan, root / "t1", series_description="t1_tse_sag", series_number=3, **kw)
    write_dicom_series(make_phantom(sequence="T2", seed=3, **PHANTOM).scan, root / "space", series_description="T2_space_sag_p2_iso",
                       series_number=4, **kw)
    write_dicom_series(make_phantom(sequence="T2", seed=5, **PHANTOM).scan, root / "ax", series_description="t2_tse_tra", series_number=5, **kw)
    for path in (root / "ax").glob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.save_as(path)
    write_dicom_series(make_phantom(sequence="T2", seed=6, n_slices=1).scan, root / "loc", series_description="localizer", series_number=1, **kw)
    return root


@pytest.fixture(scope="module")
def analysed(dicom_study, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "study"
    proc = _cli("analyze", str(dicom_study), "-o", str(out), "--no-hotspots")
    assert proc.returncode == 0, proc.stderr
    assert "3 of 3 series analysed" in proc.stdout
    return out


def test_every_sagittal_series_is_analysed(analysed):
    doc = json.loads((analysed / "result.json").read_text())
    _validate(doc)
    series = doc["study"]["series"]
    assert [(s["folder"], s["sequence"], s["status"]) for s in series] == [
        ("series/1_T2", "T2", "analysed"), ("series/2_T1", "T1", "analysed"), ("series/3_T2_SPACE", "T2_SPACE", "analysed")]
    for s in series:
        own = json.loads((analysed / s["folder"] / "result.json").read_text())
        assert own["input"]["sequence"] == s["sequence"] and "study" not in own
        assert (analysed / s["folder"] / "report.html").is_file()
    assert any("localizer" in w for w in doc["warnings"]) and any("axial" in w for w in doc["warnings"])


def test_one_fused_grade_per_disc_from_t1_and_t2(analysed):
    doc = json.loads((analysed / "result.json").read_text())
    assert doc["study"]["fused_by"].startswith("study grader")
    used = {s["folder"]: s["used_for"] for s in doc["study"]["series"]}
    assert used == {"series/1_T2": ["T2"], "series/2_T1": ["T1"], "series/3_T2_SPACE": []}  # the 2D T2 is preferred
    graded = [lv for lv in doc["levels"] if "grades" in lv]
    assert len(graded) >= 5 and all(lv["sequences"] == "T1+T2" for lv in graded)
    assert any(m["stage"] == "study grading" for m in doc["models"])
    for lv in graded:
        assert set(lv["grades_by_series"]) <= {"series/1_T2", "series/2_T1", "series/3_T2_SPACE"}
        assert abs(sum(lv["grades"]["pfirrmann"]["probabilities"]) - 1) < 1e-3
    with open(analysed / "levels.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["level"] for r in rows] == [lv["level"] for lv in doc["levels"]]
    assert all(r["sequences"] == "T1+T2" for r in rows if r["pfirrmann"])
    by_level = {lv["level"]: lv for lv in doc["levels"]}
    assert all(int(r["pfirrmann"]) == by_level[r["level"]]["grades"]["pfirrmann"]["value"] for r in rows if r["pfirrmann"])


def test_levels_are_checked_in_patient_mm(analysed):
    check = json.loads((analysed / "result.json").read_text())["study"]["level_check"]
    assert [0, 1] in check["compared_series"] and check["disagreements"] == []
    assert max(check["centre_offsets_mm"]["0-1"].values()) < 3.0  # same phantom anatomy on T1 and T2


def test_study_report_shows_both_crops_and_links_every_series(analysed):
    html = (analysed / "report.html").read_text()
    for folder in ("series/1_T2", "series/2_T1", "series/3_T2_SPACE"):
        assert f"href='{folder}/report.html'" in html
    crops = sorted((analysed / "crops").glob("*.png"))
    assert crops and "T1+T2" in html
    import imageio.v3 as iio

    height, width = iio.imread(crops[0]).shape[:2]
    assert (height, width) == (2 * 64, 2 * (2 * 128 + 4))  # two 64 x 128 crops side by side, 4 px apart, shown at 2x


def test_two_nifti_inputs_on_different_grids(tmp_path):
    t2 = make_phantom(sequence="T2", seed=3, **PHANTOM)
    t1 = make_phantom(sequence="T1", seed=3, **{**PHANTOM, "n_slices": 5}, spacing_mm=(4.0, 1.0, 1.0))
    write_nifti(t2.scan.array, t2.scan.affine, tmp_path / "sag_T2w.nii.gz")
    write_nifti(t1.scan.array, t1.scan.affine, tmp_path / "sag_T1w.nii.gz")
    out = tmp_path / "out"
    proc = _cli("analyze", str(tmp_path / "sag_T1w.nii.gz"), str(tmp_path / "sag_T2w.nii.gz"), "-o", str(out))  # hotspots on
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "result.json").read_text())
    assert [s["sequence"] for s in doc["study"]["series"]] == ["T1", "T2"]
    assert doc["study"]["primary_series"] == "series/2_T2"
    assert doc["study"]["level_check"]["compared_series"] == []  # NIfTI files share no DICOM frame of reference
    graded = [lv["level"] for lv in doc["levels"] if "grades" in lv]
    on_both = set(doc["study"]["series"][0]["discs"]) & set(doc["study"]["series"][1]["discs"])
    assert len(on_both) >= 5
    for lv in doc["levels"]:
        if "grades" in lv:  # a disc found on one series only is graded from that one
            assert lv["sequences"] == ("T1+T2" if lv["level"] in on_both else
                                       "T1" if lv["level"] in doc["study"]["series"][0]["discs"] else "T2"), lv["level"]
    maps = sorted(p.name for p in (out / "hotspots").glob("*.png"))  # evidence of the fused grades
    assert maps and {m.split("_")[0].replace("-", "/") for m in maps} <= set(graded)
    assert (out / "series" / "1_T1" / "hotspots").is_dir() and (out / "series" / "2_T2" / "hotspots").is_dir()


def test_a_study_without_t1_is_graded_from_t2(tmp_path):
    _phantom_niftis(tmp_path, {"sub-01_T2w.nii.gz": "T2", "sub-01_STIR.nii.gz": "T2"})  # the name declares STIR
    out = tmp_path / "out"
    proc = _cli("analyze", str(tmp_path), "-o", str(out), "--no-hotspots")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "result.json").read_text())
    assert sorted(s["sequence"] for s in doc["study"]["series"]) == ["STIR", "T2"]
    graded = [lv for lv in doc["levels"] if "grades" in lv]
    assert graded and {lv["sequences"] for lv in graded} == {"T2"}


def test_a_single_series_gives_todays_result_plus_sequences(tmp_path):
    t2 = make_phantom(sequence="T2", seed=3, **PHANTOM)
    write_nifti(t2.scan.array, t2.scan.affine, tmp_path / "t2.nii.gz")
    import lumbarkit
    from lumbarkit.report.outputs import result_json

    out = tmp_path / "out"
    proc = _cli("analyze", str(tmp_path / "t2.nii.gz"), "-o", str(out), "--no-hotspots", "--config", str(_no_hotspots(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "result.json").read_text())
    assert "study" not in doc and not (out / "series").exists()
    direct = json.loads(result_json(lumbarkit.analyze(tmp_path / "t2.nii.gz", config=_config())))
    assert doc == direct
    assert {lv["sequences"] for lv in doc["levels"] if "grades" in lv} == {"unknown"}  # a bare NIfTI names no sequence


def _config():
    from lumbarkit.pipeline import PipelineConfig

    return PipelineConfig(hotspots=False)


def _no_hotspots(folder: Path) -> Path:
    path = folder / "cfg.yaml"
    path.write_text("hotspots: false\n")
    return path


def test_conflicting_level_names_are_a_warning(dicom_study, tmp_path):
    """The T1 series declared with one more lumbar vertebra is named differently: reported, not merged."""
    from lumbarkit.pipeline import Pipeline, PipelineConfig
    from lumbarkit.study import analyze_study, find_study

    study = find_study([dicom_study])
    pipeline = Pipeline(PipelineConfig(hotspots=False))
    original = pipeline.run

    def run(source, **kwargs):
        if kwargs.get("series") == study.series[1].series_uid:
            kwargs["lumbar_vertebrae"] = 6  # names shift by one level on this series only
        return original(source, **kwargs)

    pipeline.run = run
    result = analyze_study(study, pipeline)
    assert result.check.disagreements and "series 1 (T2) and series 2 (T1) disagree" in result.check.disagreements[0]
    assert result.check.outliers == (1,)  # the T1 series disagrees with both T2 series
    doc = result.to_dict()
    assert any("series 2 (T1) names the levels unlike the other series" in w for w in doc["warnings"])
    assert [s["used_for"] for s in doc["study"]["series"]] == [["T2"], [], []]  # its grades are not fused
    assert {lv["sequences"] for lv in doc["levels"] if "grades" in lv} == {"T2"}


def test_sequence_option_wins_over_an_unknown_sequence(tmp_path):
    """Bare NIfTI files say nothing about their sequence: --sequence declares it, and the study is fused."""
    _phantom_niftis(tmp_path, {"a.nii.gz": "T1", "b.nii.gz": "T2"})
    out = tmp_path / "out"
    proc = _cli("analyze", str(tmp_path / "a.nii.gz"), str(tmp_path / "b.nii.gz"), "-o", str(out), "--no-hotspots")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "result.json").read_text())
    assert "not graded" in doc["study"]["fused_by"] and sum("its sequence is unknown" in w for w in doc["warnings"]) == 2
    assert all("grades" not in lv and lv["not_graded"] == "the study has no T1 or T2 series" for lv in doc["levels"])
    with open(out / "levels.csv") as fh:
        assert all(r["pfirrmann"] == "" and r["sequences"] == "" for r in csv.DictReader(fh))  # as result.json says
    proc = _cli("analyze", str(tmp_path / "a.nii.gz"), str(tmp_path / "b.nii.gz"), "-o", str(out), "--no-hotspots", "--overwrite",
                "--sequence", "T1", "--sequence", "T2")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "result.json").read_text())
    assert [s["sequence"] for s in doc["study"]["series"]] == ["T1", "T2"]
    assert {lv["sequences"] for lv in doc["levels"] if "grades" in lv} == {"T1+T2"}


def test_dicom_option_on_a_nifti_study_is_refused_before_the_work(tmp_path):
    t2 = make_phantom(sequence="T2", seed=3, n_slices=3)
    write_nifti(t2.scan.array, t2.scan.affine, tmp_path / "sub-01_T2w.nii.gz")
    write_nifti(t2.scan.array, t2.scan.affine, tmp_path / "sub-01_T1w.nii.gz")
    proc = _cli("analyze", str(tmp_path), "-o", str(tmp_path / "out"), "--dicom")
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --dicom needs a DICOM input (the SEG and SR reference its series)"
    assert not (tmp_path / "out").exists()
