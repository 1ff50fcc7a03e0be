"""Disc crops: horizontal, centred, normalised, deterministic; on the phantom and on real masks."""

from __future__ import annotations

import numpy as np
import pytest

from lumbarkit.levels import DISC_OFFSET, LUMBAR_DISCS, VERTEBRA_IDS, disc_id, label_name
from lumbarkit.results.labelmap import LabelMap
from lumbarkit.scan import Scan
from lumbarkit.stages.s4_crops import CropSpec, extract_disc_crops
from lumbarkit.stages.s2_localize import LevelInstance, Levels
from lumbarkit.phantom import make_phantom


def levels_from_labels(scan: Scan, labels: np.ndarray) -> Levels:
    """Levels straight from a VerSe-id label map (truth), without the segmentation model."""
    instances = []
    for lid in sorted(int(v) for v in np.unique(labels) if v and v != 100):
        idx = np.argwhere(labels == lid)
        kind = "disc" if lid > DISC_OFFSET else "vertebra"
        k = int(np.bincount(idx[:, 0]).argmax())
        centroid = tuple(float(v) for v in scan.voxel_to_mm(idx.mean(axis=0)))
        instances.append(LevelInstance(label_name(lid), lid, kind, centroid, float(len(idx)), 1.0, k))
    seg = LabelMap(labels=labels.astype(np.int16), affine=scan.affine)
    return Levels(tuple(instances), seg, sacrum_found=True)


def principal_angle_deg(mask: np.ndarray) -> float:
    """Long-axis angle of a 2D mask from the column axis, folded to (-90, 90]."""
    idx = np.argwhere(mask).astype(float)
    evals, evecs = np.linalg.eigh(np.cov((idx - idx.mean(axis=0)).T))
    e = evecs[:, 1]
    return float((np.degrees(np.arctan2(-e[0], e[1])) + 90.0) % 180.0 - 90.0)


def check_horizontal_and_centred(crop, angle_tol: float, centre_tol_px: float) -> None:
    mid = crop.labels[len(crop.labels) // 2]
    disc = mid == crop.label
    assert disc.sum() > 50, crop.name
    assert abs(principal_angle_deg(disc)) < angle_tol, crop.name
    rows, cols = np.nonzero(disc)
    h, w = disc.shape
    assert abs(rows.mean() - (h - 1) / 2) < centre_tol_px, crop.name
    assert abs(cols.mean() - (w - 1) / 2) < centre_tol_px, crop.name


@pytest.mark.parametrize("kwargs", [
    {"tilt_deg": 25.0},
    {"tilt_deg": -15.0, "lordosis_deg": 40.0},
    {"slip_mm": {"L4": 8.0}},
    {"in_plane_rotation_deg": 20.0},
])
def test_phantom_crops_are_horizontal_centred_and_normalised(kwargs):
    ph = make_phantom(noise_sigma=0.0, **kwargs)
    levels = levels_from_labels(ph.scan, ph.labels)
    crops = extract_disc_crops(ph.scan, levels, n_slices=3)
    assert crops.names == list(LUMBAR_DISCS)
    assert not crops.skipped
    for c in crops.crops:
        assert c.image.shape == (3, 64, 128) and c.image.dtype == np.float32
        assert 0.0 <= c.image.min() and c.image.max() <= 1.0
        check_horizontal_and_centred(c, angle_tol=1.5, centre_tol_px=1.0)
        upper = c.label - DISC_OFFSET
        lower = VERTEBRA_IDS["S1"] if c.name == "L5/S1" else upper + 1
        body = np.isin(c.labels, [upper, lower])
        assert abs(np.median(c.image[body]) - 0.5) < 0.01
        assert c.normalisation == "bodies" and c.geometry.orientation_source == "disc"
        assert not c.image.flags.writeable


def test_crop_angle_follows_the_tilt_and_anterior_stays_left():
    ph = make_phantom(noise_sigma=0.0, tilt_deg=20.0)
    crops = extract_disc_crops(ph.scan, levels_from_labels(ph.scan, ph.labels))
    for c in crops.crops:
        assert abs(c.geometry.angle_deg - 20.0) < 1.5
        # the canal (label 100) lies behind the disc: in the right half of the crop
        canal_cols = np.nonzero(c.labels[0] == 100)[1]
        assert canal_cols.size and canal_cols.mean() > 64
        # the upper body is above the disc, the lower below
        rows_up = np.nonzero(c.labels[0] == c.label - DISC_OFFSET)[0]
        assert rows_up.mean() < 32


def test_shapes_spec_names_and_determinism():
    ph = make_phantom(noise_sigma=20.0, seed=3, tilt_deg=10.0)
    levels = levels_from_labels(ph.scan, ph.labels)
    spec = CropSpec(n_slices=5, size_mm=(28.0, 56.0), shape_px=(56, 112))
    a = extract_disc_crops(ph.scan, levels, **spec.to_dict(), names=["L4/L5", "L5/S1", "L6/S1"])
    b = extract_disc_crops(ph.scan, levels, **spec.to_dict(), names=["L4/L5", "L5/S1", "L6/S1"])
    assert a.names == ["L4/L5", "L5/S1"]
    assert dict(a.skipped) == {"L6/S1": "disc not found by level localisation"}
    assert a.stack().shape == (2, 5, 56, 112)
    assert np.array_equal(a.stack(), b.stack())
    assert a.spec == spec and CropSpec.from_dict(spec.to_dict()) == spec
    assert a["L4/L5"].geometry.pixel_mm == (0.5, 0.5)
    assert a["L4/L5"].geometry.slice_indices == (5, 6, 7, 8, 9)


def test_single_slice_scan_repeats_its_slice():
    ph = make_phantom(noise_sigma=0.0, n_slices=1)
    crops = extract_disc_crops(ph.scan, levels_from_labels(ph.scan, ph.labels), n_slices=3)
    c = crops["L3/L4"]
    assert c.geometry.slice_indices == (0, 0, 0)
    assert np.array_equal(c.image[0], c.image[2])


def test_geometry_maps_crop_pixels_back_to_the_scan():
    ph = make_phantom(noise_sigma=0.0, tilt_deg=15.0)
    c = extract_disc_crops(ph.scan, levels_from_labels(ph.scan, ph.labels))["L2/L3"]
    back = c.geometry.to_scan_plane((c.labels[0] == c.label).astype(float), ph.scan.shape[1:])
    truth = ph.labels[c.geometry.slice_indices[0]] == c.label
    inside = np.isfinite(back)
    overlap = ((back > 0.5) & truth).sum() / truth.sum()
    assert inside.sum() > 0 and overlap > 0.9
    u, v = c.geometry.voxel_to_pixel(*c.geometry.pixel_to_voxel(np.array([3.0, 40.0]), np.array([7.0, 100.0])))
    assert np.allclose(u, [3, 40]) and np.allclose(v, [7, 100])


def test_missing_body_falls_back_to_bands_and_tiny_disc_is_skipped():
    ph = make_phantom(noise_sigma=0.0)
    labels = ph.labels.copy()
    labels[np.isin(labels, [VERTEBRA_IDS["L3"], VERTEBRA_IDS["L4"]])] = 0
    k = ph.scan.mid_slice
    tiny = np.argwhere(labels[k] == disc_id("L1/L2"))
    labels[labels == disc_id("L1/L2")] = 0
    labels[k, tiny[0][0], tiny[0][1]] = disc_id("L1/L2")
    crops = extract_disc_crops(ph.scan, levels_from_labels(ph.scan, labels))
    assert "L1/L2" in dict(crops.skipped)
    c = crops["L3/L4"]
    assert c.normalisation == "bands" and c.warnings
    body = np.isin(ph.labels[k], [VERTEBRA_IDS["L3"], VERTEBRA_IDS["L4"]])
    assert abs(c.intensity_scale * np.median(ph.scan.array[k][body]) - 0.5) < 0.05


def test_crop_beyond_the_image_edge_is_zero_filled_and_warned():
    ph = make_phantom(noise_sigma=0.0, shape_rc=(300, 110))
    labels = ph.labels.copy()
    k = ph.scan.mid_slice
    crops = extract_disc_crops(ph.scan, levels_from_labels(ph.scan, labels))
    inside = crops["L3/L4"]
    assert inside.outside_fraction < 0.25
    # shift the label map so a disc sits at the top edge of the image
    shifted = np.zeros_like(labels)
    top = np.argwhere(labels[k] == disc_id("T12/L1"))[:, 0].min()
    shifted[:, : labels.shape[1] - top] = labels[:, top:]
    edge = extract_disc_crops(ph.scan, levels_from_labels(ph.scan, shifted))["T12/L1"]
    assert edge.outside_fraction > 0.25 and any("outside the image" in w for w in edge.warnings)


def test_bad_spec_raises():
    ph = make_phantom(noise_sigma=0.0, n_slices=3)
    levels = levels_from_labels(ph.scan, ph.labels)
    with pytest.raises(ValueError):
        extract_disc_crops(ph.scan, levels, n_slices=2)
    with pytest.raises(ValueError):
        extract_disc_crops(ph.scan, levels, size_mm=(0.0, 10.0))


@pytest.mark.shared
def test_real_disc_masks_give_horizontal_centred_crops(shared_data):
    from lumbarkit import load_scan
    from lumbarkit.io.volume import read_label_volume

    cases = sorted((shared_data / "volumes").glob("ivd_*_image.nii.gz"))
    assert cases
    for path in cases:
        scan = load_scan(path)
        labels = read_label_volume(path.with_name(path.name.replace("_image", "_label")))
        crops = extract_disc_crops(scan, levels_from_labels(scan, labels), n_slices=3)
        assert crops.names == ["L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1"], path.name
        for c in crops.crops:
            check_horizontal_and_centred(c, angle_tol=6.0, centre_tol_px=2.0)
            assert c.normalisation == "bands"  # ivd labels discs only
            # the reference is the bone above and below the disc: the upper body's median lands near 0.5
            assert 0.3 < float(np.median(c.image[1][:12, 40:88])) < 0.75, (path.name, c.name)
