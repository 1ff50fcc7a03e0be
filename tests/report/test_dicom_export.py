"""DICOM SEG / SR export: round trips through highdicom on a phantom written as a DICOM series."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pytest

hd = pytest.importorskip("highdicom")

import lumbarkit  # noqa: E402
from lumbarkit.errors import InputError  # noqa: E402
from lumbarkit.io import load_scan  # noqa: E402
from lumbarkit.levels import label_name, vertebra_id  # noqa: E402
from lumbarkit.phantom import make_phantom, write_phantom  # noqa: E402
from lumbarkit.report.dicom import (  # noqa: E402
    SRItem,
    source_datasets,
    write_dicom_seg,
    write_dicom_series,
    write_dicom_sr,
)
from lumbarkit.scan import Scan  # noqa: E402

L4 = vertebra_id("L4")
ITEMS = [
    SRItem("L4", "anterior height", 25.5, "mm"),
    SRItem("L4", "wedge angle", 3.25, "deg"),
    SRItem("L4/L5", "Pfirrmann grade", "3"),
    SRItem("L4/L5", "disc height index", 0.42, "1"),
    SRItem("lumbar spine", "lordosis", 41.2, "deg"),
]


def _names(labels: np.ndarray) -> dict[int, str]:
    return {int(v): label_name(int(v)) for v in np.unique(labels) if v != 0}


def _expected_labels(ds: pydicom.Dataset, scan: Scan, labels: np.ndarray) -> np.ndarray:
    """The canonical label map sampled at the pixel centres of one source image (independent of the exporter)."""
    rows, cols = int(ds.Rows), int(ds.Columns)
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    dr, dc = (float(v) for v in ds.PixelSpacing)
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    lps = ipp + r[..., None] * dr * iop[3:] + c[..., None] * dc * iop[:3]
    ras = lps * np.array([-1.0, -1.0, 1.0])
    index = scan.mm_to_voxel(ras)
    rounded = np.round(index).astype(int)
    assert np.abs(index - rounded).max() < 1e-3, "source pixel centres must lie on the scan grid"
    return labels[rounded[..., 0], rounded[..., 1], rounded[..., 2]]


def _check_seg_frames(seg_path: Path, folder: Path, scan: Scan, labels: np.ndarray, label: int) -> int:
    """Compare the SEG mask of ``label`` with the input on every source instance; returns the masked pixel count."""
    seg = hd.seg.segread(seg_path)
    number = seg.get_segment_numbers(segment_label=label_name(label))
    assert len(number) == 1
    sources = [pydicom.dcmread(p) for p in sorted(folder.glob("S*_I*.dcm"))]
    masks = seg.get_pixels_by_source_instance(
        [ds.SOPInstanceUID for ds in sources], segment_numbers=number, assert_missing_frames_are_empty=True,
    )[..., 0]
    total = 0
    for ds, mask in zip(sources, masks):
        expected = _expected_labels(ds, scan, labels) == label
        np.testing.assert_array_equal(mask.astype(bool), expected)
        total += int(expected.sum())
    assert total > 0
    return total


@pytest.fixture(scope="module")
def exported(phantom, tmp_path_factory):
    """The default phantom as a DICOM series, loaded, with a SEG and an SR written inside the series folder."""
    root = tmp_path_factory.mktemp("export")
    folder = write_phantom(phantom, root)["image"]
    scan = load_scan(folder)
    assert np.allclose(scan.affine, phantom.scan.affine) and scan.shape == phantom.labels.shape  # truth is on the scan grid
    seg_path = write_dicom_seg(scan, phantom.labels, folder, folder / "derived" / "seg.dcm", _names(phantom.labels))
    sr_path = write_dicom_sr(scan, ITEMS, folder, folder / "derived" / "sr.dcm", seg_path=seg_path)  # folder now holds the SEG
    return {"folder": folder, "scan": scan, "labels": phantom.labels, "seg": seg_path, "sr": sr_path}


def test_source_datasets_finds_the_series(exported):
    datasets = source_datasets(exported["folder"], exported["scan"].metadata.series_uid)
    assert len(datasets) == exported["scan"].shape[0]
    assert {ds.SeriesInstanceUID for ds in datasets} == {exported["scan"].metadata.series_uid}
    assert all("PixelData" in ds for ds in datasets)
    headers = source_datasets(exported["folder"], exported["scan"].metadata.series_uid, headers_only=True)
    assert [ds.SOPInstanceUID for ds in headers] == [ds.SOPInstanceUID for ds in datasets]
    assert not any("PixelData" in ds for ds in headers)


def test_seg_segments_and_provenance(exported):
    seg = hd.seg.segread(exported["seg"])
    names = _names(exported["labels"])
    assert seg.number_of_segments == len(names) == 14
    assert [str(d.SegmentLabel) for d in seg.SegmentSequence] == [names[k] for k in sorted(names)]
    assert seg.segmentation_type == hd.seg.SegmentationTypeValues.BINARY
    l4 = seg.get_segment_description(seg.get_segment_numbers(segment_label="L4")[0])
    assert l4.segmented_property_type.value == "11994002"  # SCT "L4 vertebra"
    assert seg.Manufacturer == "lumbarkit" and seg.SoftwareVersions == lumbarkit.__version__
    assert "research use" in seg.SeriesDescription and seg.ContentQualification == "RESEARCH"
    assert [str(s.SeriesInstanceUID) for s in seg.ReferencedSeriesSequence] == [exported["scan"].metadata.series_uid]


def test_seg_frames_match_source_instances(exported):
    _check_seg_frames(exported["seg"], exported["folder"], exported["scan"], exported["labels"], L4)


def test_seg_of_an_oblique_series_stored_flipped(tmp_path):
    """Source grid != canonical grid: slices towards the right, rows towards superior, 20 deg oblique."""
    small = make_phantom(n_slices=5, spacing_mm=(4.0, 1.6, 1.6), in_plane_rotation_deg=20.0, vertebrae=("L3", "L4", "L5", "S1"), noise_sigma=0)
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    flip[0, 3], flip[1, 3] = small.scan.shape[0] - 1, small.scan.shape[1] - 1
    stored = Scan(small.scan.array[::-1, ::-1].copy(), small.scan.affine @ flip)
    folder = tmp_path / "series"
    write_dicom_series(stored, folder)
    scan = load_scan(folder)
    np.testing.assert_allclose(scan.affine, small.scan.affine, atol=1e-4)
    assert not np.allclose(scan.source_affine, scan.affine)
    seg_path = write_dicom_seg(scan, small.labels, folder, tmp_path / "seg.dcm", _names(small.labels))
    _check_seg_frames(seg_path, folder, scan, small.labels, L4)


def _measurement_groups(sr):
    report = hd.sr.MeasurementReport.from_sequence([sr])
    return {g.tracking_identifier: g for g in report.get_volumetric_roi_measurement_groups() + report.get_image_measurement_groups()}


def test_sr_measurements_and_evaluations(exported):
    sr = hd.sr.srread(exported["sr"])
    groups = _measurement_groups(sr)
    assert set(groups) == {"L4", "L4/L5", "lumbar spine"}
    l4 = groups["L4"]
    height = [m for m in l4.get_measurements() if m.name.meaning == "anterior height"]
    assert len(height) == 1 and height[0].value == pytest.approx(25.5)
    assert (height[0].unit.value, height[0].unit.scheme_designator) == ("mm", "UCUM")
    assert height[0].name.scheme_designator == "99LUMBARKIT"
    assert [s.value.value for s in l4.finding_sites] == ["11994002"]
    grade = [e for e in groups["L4/L5"].get_qualitative_evaluations() if e.name.meaning == "Pfirrmann grade"]
    assert len(grade) == 1 and grade[0].value.meaning == "3"
    assert [m.unit.value for m in groups["lumbar spine"].get_measurements()] == ["deg"]
    assert sr.Manufacturer == "lumbarkit" and sr.SoftwareVersions == lumbarkit.__version__
    assert "research use" in sr.SeriesDescription and sr.ContentQualification == "RESEARCH"
    assert "99LUMBARKIT" in [str(i.CodingSchemeDesignator) for i in sr.CodingSchemeIdentificationSequence]


def test_sr_references_source_series_and_seg(exported):
    sr = hd.sr.srread(exported["sr"])
    seg = pydicom.dcmread(exported["seg"], stop_before_pixels=True)
    evidence = sr.get_evidence()
    series_uid = exported["scan"].metadata.series_uid
    source_uids = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in exported["folder"].glob("S*_I*.dcm")}
    assert {e[2] for e in evidence if e[1] == series_uid} == source_uids
    assert seg.SOPInstanceUID in {e[2] for e in evidence}
    group = _measurement_groups(sr)["L4"]  # the L4 group points at the SEG's L4 segment and the source series
    segment = group.referenced_segment[0]
    assert segment.value == (seg.SOPClassUID, seg.SOPInstanceUID)
    l4_number = [int(s.SegmentNumber) for s in seg.SegmentSequence if s.SegmentLabel == "L4"]
    assert segment.referenced_segment_numbers == l4_number
    assert [item.value for item in group.referenced_segment[1:]] == [series_uid]  # Source Series for Segmentation


def test_unknown_series_is_a_one_line_input_error(exported, tmp_path):
    stranger = replace(exported["scan"], metadata=replace(exported["scan"].metadata, series_uid="1.2.826.0.1.3680043.99.1"))
    with pytest.raises(InputError, match="1.2.826.0.1.3680043.99.1 not found") as info:
        write_dicom_seg(stranger, exported["labels"], exported["folder"], tmp_path / "seg.dcm", _names(exported["labels"]))
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="not found"):
        write_dicom_sr(stranger, ITEMS, exported["folder"], tmp_path / "sr.dcm")
    assert not (tmp_path / "seg.dcm").exists() and not (tmp_path / "sr.dcm").exists()


def test_scan_off_the_source_grid_is_an_input_error(exported, tmp_path):
    scan = exported["scan"]
    shift = np.eye(4)
    shift[:3, 3] = scan.source_affine[:3, 1] * 0.5  # half a pixel along the rows
    moved = replace(scan, source_affine=shift @ scan.source_affine)
    with pytest.raises(InputError, match="off the scan grid") as info:
        write_dicom_seg(moved, exported["labels"], exported["folder"], tmp_path / "seg.dcm", _names(exported["labels"]))
    assert "\n" not in str(info.value)


def test_seg_and_sr_pass_the_dicom3tools_validator(exported, dciodvfy_errors):
    assert dciodvfy_errors(exported["seg"]) == []
    assert dciodvfy_errors(exported["sr"]) == []


def test_sr_renders_in_dcmtk(exported, dicom_tool):
    import subprocess

    proc = subprocess.run([dicom_tool("dsrdump"), str(exported["sr"])], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Imaging Measurement Report" in proc.stdout and "L4/L5" in proc.stdout


def test_a_failure_while_writing_dicom_leaves_no_output_folder(exported, tmp_path, monkeypatch, capsys):
    """The SR writer fails after the SEG is written: nothing of the run appears, not even result.json."""
    import sys

    import lumbarkit.report.dicom as dicom_module
    from lumbarkit.cli.main import run

    def broken(*args, **kwargs):
        raise InputError("cannot write the SR (simulated)")

    monkeypatch.setattr(dicom_module, "write_dicom_sr", broken)
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["lumbarkit", "analyze", str(exported["folder"]), "-o", str(out), "--dicom", "--no-hotspots"])
    with pytest.raises(SystemExit) as info:
        run()
    assert info.value.code == 2
    assert "simulated" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
