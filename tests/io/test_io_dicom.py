"""DICOM reading/writing: geometry round trips, slice sorting, series choice, damaged files."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    BasicTextSRStorage,
    EnhancedMRImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

from lumbarkit.errors import InputError, SeriesSelectionError
from lumbarkit.io import load_scan
from lumbarkit.io.dicom import guess_sequence, is_dicom_file, read_dicom
from lumbarkit.report.dicom import write_dicom_series
from lumbarkit.scan import Scan
from dicom_volumes import SHAPE, assert_same_scan, axial_scan, canonical_affine, flip, pattern, rotation, swap_inplane  # noqa: E402 (tests/io/ helper)


# ----------------------------------------------------------------------------- round trips

AFFINES = {
    "canonical": canonical_affine(),
    "slices_right": canonical_affine() @ np.diag([-1.0, 1, 1, 1]),
    "rows_superior": canonical_affine() @ np.diag([1.0, -1, 1, 1]),
    "oblique_15_about_lr": rotation(0, 15) @ canonical_affine(),
    "double_oblique": rotation(2, 12) @ rotation(0, -17) @ canonical_affine(),
}


@pytest.mark.parametrize("name", sorted(AFFINES))
def test_round_trip_preserves_voxels_and_geometry(tmp_path, name):
    source = Scan(pattern(), AFFINES[name])  # any geometry, written as stored
    paths = write_dicom_series(source, tmp_path)
    assert len(paths) == SHAPE[0]
    got = read_dicom(tmp_path)
    assert_same_scan(got, Scan.from_array(source.array, source.affine))
    assert got.metadata.source_format == "dicom"


def test_round_trip_rescales_float_values(tmp_path):
    values = pattern() * 0.0137 - 123.4  # negative, non-integer: needs RescaleSlope/Intercept
    source = Scan(values.astype(np.float32), AFFINES["oblique_15_about_lr"])
    write_dicom_series(source, tmp_path)
    ds = pydicom.dcmread(next(tmp_path.iterdir()))
    slope = float(ds.RescaleSlope)
    assert ds.BitsAllocated == 16 and ds.PixelRepresentation == 0 and slope != 1
    got = read_dicom(tmp_path)
    assert_same_scan(got, source, atol=slope / 2 + 1e-4)


def test_file_names_and_instance_numbers_do_not_follow_position(tmp_path):
    paths = write_dicom_series(Scan(pattern(), canonical_affine()), tmp_path)
    by_name = sorted(tmp_path.iterdir())
    position = {p.name: float(pydicom.dcmread(p).ImagePositionPatient[0]) for p in by_name}
    along_x = [position[p.name] for p in by_name]
    assert along_x != sorted(along_x) and along_x != sorted(along_x, reverse=True)
    instance = [int(pydicom.dcmread(p).InstanceNumber) for p in paths]  # paths are in slice order
    assert instance != sorted(instance) and instance != sorted(instance, reverse=True)


def test_written_tags(tmp_path):
    source = Scan(pattern(), AFFINES["oblique_15_about_lr"])
    paths = write_dicom_series(source, tmp_path, series_description="T1 SAG", field_strength_t=3.0)
    ds = pydicom.dcmread(paths[0])
    assert ds.SOPClassUID == pydicom.uid.MRImageStorage
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.Modality == "MR" and ds.Manufacturer == "lumbarkit-phantom"
    assert str(ds.PatientName) == "ANON" and ds.PatientID == "ANON"
    assert float(ds.MagneticFieldStrength) == 3.0 and float(ds.EchoTime) < 30
    assert (ds.Rows, ds.Columns) == SHAPE[1:]
    assert [float(v) for v in ds.PixelSpacing] == pytest.approx([0.6, 0.7])
    assert float(ds.SpacingBetweenSlices) == pytest.approx(3.3)
    # row cosine = direction of scan axis 2 (posterior, rotated), in LPS
    lps = np.diag([-1.0, -1, 1, 1]) @ source.affine
    np.testing.assert_allclose([float(v) for v in ds.ImageOrientationPatient[:3]], lps[:3, 2] / 0.7, atol=1e-9)
    np.testing.assert_allclose([float(v) for v in ds.ImageOrientationPatient[3:]], lps[:3, 1] / 0.6, atol=1e-9)
    np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], lps[:3, 3], atol=1e-9)
    assert len({pydicom.dcmread(p).SeriesInstanceUID for p in paths}) == 1
    assert len({pydicom.dcmread(p).SOPInstanceUID for p in paths}) == len(paths)


def test_writer_refuses_to_overwrite(tmp_path):
    scan = Scan(pattern(), canonical_affine())
    write_dicom_series(scan, tmp_path)
    with pytest.raises(InputError, match="already exists"):
        write_dicom_series(scan, tmp_path)
    write_dicom_series(scan, tmp_path, series_number=2)  # another series number: other names


# ----------------------------------------------------------------------------- orientation invariance

MARK_A, MARK_B = (1, 3, 4), (5, 20, 15)


def marked_volume() -> np.ndarray:
    array = np.zeros(SHAPE, dtype=np.float32)
    array[MARK_A], array[MARK_B] = 1000, 2000
    return array


def _layouts():
    base = (marked_volume(), AFFINES["oblique_15_about_lr"])
    yield "as_is", base
    yield "slices_reversed", flip(*base, 0)
    yield "rows_reversed", flip(*base, 1)
    yield "cols_reversed", flip(*flip(*base, 2), 0)
    yield "rows_cols_swapped", swap_inplane(*base)


@pytest.mark.parametrize("layout", [name for name, _ in _layouts()])
def test_marker_positions_do_not_depend_on_storage_layout(tmp_path, layout):
    array, affine = dict(_layouts())[layout]
    write_dicom_series(Scan(array, affine), tmp_path)
    got = read_dicom(tmp_path)
    reference = Scan(marked_volume(), AFFINES["oblique_15_about_lr"])
    expected_a, expected_b = reference.voxel_to_mm(np.array(MARK_A)), reference.voxel_to_mm(np.array(MARK_B))
    a = got.voxel_to_mm(np.argwhere(got.array == 1000)[0])
    b = got.voxel_to_mm(np.argwhere(got.array == 2000)[0])
    np.testing.assert_allclose(a, expected_a, atol=1e-6)
    np.testing.assert_allclose(b, expected_b, atol=1e-6)
    assert np.linalg.norm(a - b) == pytest.approx(np.linalg.norm(expected_a - expected_b), abs=1e-6)


# ----------------------------------------------------------------------------- series choice


@pytest.fixture
def study(tmp_path):
    """A study folder: sagittal T2, sagittal T1 and axial T2 series sharing one StudyInstanceUID."""
    root = tmp_path / "study"
    study_uid, frame_uid = generate_uid(), generate_uid()
    uids = {}
    specs = [
        ("t2sag", Scan(pattern(), canonical_affine()), "T2_TSE_SAG", 1),
        ("t1sag", Scan(pattern() + 5, canonical_affine()), "T1_TSE_SAG", 2),
        ("t2ax", axial_scan(), "T2_TSE_AX", 3),
    ]
    for key, scan, description, number in specs:
        uids[key] = generate_uid()
        write_dicom_series(
            scan, root / f"series{number}", series_description=description, series_uid=uids[key],
            study_uid=study_uid, frame_of_reference_uid=frame_uid, series_number=number,
        )
    return root, uids


def test_study_defaults_to_sagittal_t2(study):
    root, uids = study
    scan = read_dicom(root)
    assert scan.metadata.series_uid == uids["t2sag"]
    assert scan.metadata.sequence == "T2" and scan.metadata.series_description == "T2_TSE_SAG"
    np.testing.assert_array_equal(scan.array, pattern())


def test_study_series_by_uid_and_description(study):
    root, uids = study
    t1 = read_dicom(root, series=uids["t1sag"])
    assert t1.metadata.series_uid == uids["t1sag"] and t1.metadata.sequence == "T1"
    np.testing.assert_array_equal(t1.array, pattern() + 5)
    assert read_dicom(root, series="t1_tse_sag").metadata.series_uid == uids["t1sag"]  # exact, any case
    assert read_dicom(root, series="T1").metadata.series_uid == uids["t1sag"]  # substring
    assert read_dicom(root, series="t2").metadata.series_uid == uids["t2sag"]  # sagittal one of two matches
    axial = read_dicom(root, series="t2_tse_ax", require_sagittal=False)
    assert axial.metadata.series_uid == uids["t2ax"]
    assert_same_scan(axial, Scan.from_array(axial_scan().array, axial_scan().affine))
    assert read_dicom(root, series=uids["t2ax"], require_sagittal=False).metadata.series_uid == uids["t2ax"]
    assert load_scan(root, series=uids["t1sag"]).metadata.series_uid == uids["t1sag"]


def test_study_explicit_axial_choice_needs_require_sagittal_false(study):
    root, uids = study
    with pytest.raises(InputError, match="not sagittal"):
        read_dicom(root, series=uids["t2ax"])


def test_unknown_series_choice_lists_descriptions(study):
    root, _ = study
    with pytest.raises(SeriesSelectionError, match="T1_TSE_SAG"):
        read_dicom(root, series="flair")


def test_two_sagittal_t2_need_a_choice(tmp_path):
    uids = [generate_uid(), generate_uid()]
    for n, uid in enumerate(uids, start=1):
        write_dicom_series(Scan(pattern(), canonical_affine()), tmp_path / f"s{n}", series_description=f"T2 SAG {n}", series_uid=uid, series_number=n)
    with pytest.raises(SeriesSelectionError, match="--series") as info:
        read_dicom(tmp_path)
    message = str(info.value)
    assert "\n" not in message and all(uid in message for uid in uids) and "T2 SAG 2" in message
    assert read_dicom(tmp_path, series="T2 SAG 2").metadata.series_uid == uids[1]


def test_echo_time_breaks_tie_without_descriptive_names(tmp_path):
    write_dicom_series(Scan(pattern(), canonical_affine()), tmp_path / "a", series_description="SAG A", sequence_te_ms=110, series_number=1)
    write_dicom_series(Scan(pattern(), canonical_affine()), tmp_path / "b", series_description="SAG B", sequence_te_ms=10, repetition_time_ms=500, series_number=2)
    assert read_dicom(tmp_path).metadata.series_description == "SAG A"


def test_axial_only_study_is_refused(tmp_path):
    write_dicom_series(axial_scan(), tmp_path / "ax", series_description="T2 AX")
    write_dicom_series(axial_scan(), tmp_path / "ax2", series_description="T1 AX", series_number=2)
    with pytest.raises(InputError, match="no sagittal series"):
        read_dicom(tmp_path)
    with pytest.raises(InputError, match="no sagittal series"):
        read_dicom(tmp_path / "ax")  # a single series too
    assert read_dicom(tmp_path / "ax", require_sagittal=False).shape == (18, 5, 16)


@pytest.mark.parametrize(
    "description, te, tr, expected",
    [
        ("T2 SAG", None, None, "T2"), ("sag_t2_space", None, None, "T2_SPACE"), ("T1_TSE_SAG", None, None, "T1"),
        ("STIR SAG", None, None, "STIR"), ("t2_tirm_sag", None, None, "STIR"), ("SAG T2*", None, None, "T2STAR"),
        ("sagittal", 100, 3000, "T2"), ("sagittal", 10, 500, "T1"), ("sagittal", None, None, "unknown"), ("T12 level", None, None, "unknown"),
    ],
)
def test_guess_sequence(description, te, tr, expected):
    assert guess_sequence(description, te, tr) == expected


# ----------------------------------------------------------------------------- metadata and privacy


def test_metadata_is_kept_and_identity_is_not(tmp_path):
    identity = {
        "PatientName": "Doe^Jane", "PatientID": "SECRET123", "PatientBirthDate": "19700101",
        "InstitutionName": "General Hospital", "AccessionNumber": "ACC999",
    }
    paths = write_dicom_series(Scan(pattern(), canonical_affine()), tmp_path, field_strength_t=3.0, patient=identity)
    assert str(pydicom.dcmread(paths[0]).PatientName) == "Doe^Jane"
    scan = read_dicom(tmp_path)
    meta = scan.metadata
    assert (meta.modality, meta.manufacturer, meta.field_strength_t, meta.source_format) == ("MR", "lumbarkit-phantom", 3.0, "dicom")
    assert meta.series_uid == pydicom.dcmread(paths[0]).SeriesInstanceUID
    text = repr(scan) + repr(meta) + str(meta.to_dict())
    for value in identity.values():
        assert value not in text and value.split("^")[0] not in text


# ----------------------------------------------------------------------------- single files, enhanced, odd folders


def test_single_file_is_a_one_slice_scan(tmp_path):
    source = Scan(pattern(), AFFINES["oblique_15_about_lr"])
    paths = write_dicom_series(source, tmp_path)
    assert is_dicom_file(paths[3]) and not is_dicom_file(tmp_path)
    got = read_dicom(paths[3])
    assert got.shape == (1,) + SHAPE[1:]
    np.testing.assert_array_equal(got.array[0], source.array[3])
    np.testing.assert_allclose(got.voxel_to_mm(np.array([0, 5, 7])), source.voxel_to_mm(np.array([3, 5, 7])), atol=1e-6)
    assert got.spacing_mm[0] == pytest.approx(3.3)


def test_non_image_objects_and_exact_duplicates_are_ignored(tmp_path):
    paths = write_dicom_series(Scan(pattern(), canonical_affine()), tmp_path / "series")
    shutil.copy(paths[2], tmp_path / "copy_of_one_slice.dcm")  # same SOPInstanceUID
    (tmp_path / "notes.txt").write_text("scanned on Monday")
    sr = Dataset()
    sr.file_meta = FileMetaDataset()
    sr.file_meta.MediaStorageSOPClassUID = BasicTextSRStorage
    sr.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    sr.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sr.SOPClassUID, sr.SOPInstanceUID = BasicTextSRStorage, sr.file_meta.MediaStorageSOPInstanceUID
    sr.Modality, sr.SeriesInstanceUID = "SR", generate_uid()
    sr.save_as(tmp_path / "report.dcm", enforce_file_format=True)
    np.testing.assert_array_equal(read_dicom(tmp_path).array, pattern())


def _enhanced_mr(scan: Scan, path, order) -> None:
    """Write ``scan`` as one Enhanced MR file with frames stored in ``order``."""
    lps = np.diag([-1.0, -1, 1, 1]) @ scan.affine
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = EnhancedMRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = EnhancedMRImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesDescription = "MR", generate_uid(), "t2_space_sag"
    ds.Rows, ds.Columns, ds.NumberOfFrames = scan.shape[1], scan.shape[2], scan.shape[0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    shared = Dataset()
    orientation, measures = Dataset(), Dataset()
    sp = np.linalg.norm(lps[:3, :3], axis=0)
    orientation.ImageOrientationPatient = [f"{v:.10f}" for v in np.concatenate([lps[:3, 2] / sp[2], lps[:3, 1] / sp[1]])]
    measures.PixelSpacing = [f"{sp[1]:.10f}", f"{sp[2]:.10f}"]
    measures.SliceThickness = f"{sp[0]:.10f}"
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = [orientation], [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for k in order:
        item, position = Dataset(), Dataset()
        position.ImagePositionPatient = [f"{v:.10f}" for v in lps[:3, 3] + k * lps[:3, 0]]
        item.PlanePositionSequence = [position]
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    ds.PixelData = scan.array[list(order)].astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_enhanced_multiframe(tmp_path):
    source = Scan(pattern(), AFFINES["oblique_15_about_lr"])
    _enhanced_mr(source, tmp_path / "enhanced.dcm", order=[3, 0, 6, 1, 5, 2, 4])
    got = read_dicom(tmp_path / "enhanced.dcm")
    assert_same_scan(got, source)
    assert got.metadata.sequence == "T2_SPACE"
    assert_same_scan(read_dicom(tmp_path), source)


def test_enhanced_multiframe_with_repeated_positions_is_refused(tmp_path):
    source = Scan(pattern(), canonical_affine())
    _enhanced_mr(source, tmp_path / "enhanced.dcm", order=[0, 1, 2, 3, 3, 5, 6])
    with pytest.raises(InputError, match="same slice position"):
        read_dicom(tmp_path)
