"""What is not a sagittal spine MRI is refused in one line before any analysis; every real scan passes."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from lumbarkit.errors import InputError
from lumbarkit.io import load_scan
from lumbarkit.io.checks import check_label_convention, check_scan
from lumbarkit.phantom import make_phantom
from lumbarkit.pipeline import Pipeline
from lumbarkit.scan import Scan


def _scan(shape, spacing, value=None) -> Scan:
    """A scan already in canonical order: (slice left, row inferior, col posterior), ``spacing`` in that order."""
    rng = np.random.default_rng(0)
    array = np.full(shape, value, np.float32) if value is not None else rng.random(shape).astype(np.float32)
    affine = np.eye(4)
    affine[:3, :3] = [[-spacing[0], 0, 0], [0, 0, -spacing[2]], [0, -spacing[1], 0]]
    scan = Scan.from_array(array, affine)
    assert scan.spacing_mm == pytest.approx(spacing) and scan.shape == shape
    return scan


def test_an_image_without_signal_is_refused():
    with pytest.raises(InputError, match="no signal"):
        check_scan(_scan((5, 300, 300), (3.0, 1.0, 1.0), value=0.0))


def test_a_ten_times_too_large_pixel_spacing_is_refused():
    ph = make_phantom(n_slices=1, shape_rc=(400, 320), noise_sigma=5.0)
    check_scan(ph.scan)  # 320 x 256 mm: fine
    wrong = Scan.from_array(ph.scan.array, np.diag([1.0, 8.0, 8.0, 1.0]))  # 3.2 x 2.6 m
    with pytest.raises(InputError, match="field of view"):
        check_scan(wrong)
    with pytest.raises(InputError, match="field of view"):
        Pipeline().run(wrong, until="segment")


@pytest.mark.parametrize("spacing, plane", [((0.7, 4.0, 0.7), "axial"), ((0.7, 0.7, 4.0), "coronal")])
def test_axial_and_coronal_acquisitions_are_refused(spacing, plane):
    """A canonical (sagittal) grid whose thick axis is superior-inferior or anterior-posterior was not acquired sagittally."""
    with pytest.raises(InputError, match=plane):
        check_scan(_scan((300, 80, 300) if plane == "axial" else (300, 300, 80), spacing))
    check_scan(_scan((30, 300, 300), (1.0, 1.0, 1.0)))  # an isotropic 3D volume may be resliced


def test_semantic_masks_are_not_taken_for_verse_ids():
    with pytest.raises(InputError, match="thoracolumbar VerSe ids"):
        check_label_convention([0, 1, 2, 3])  # SPIDER: vertebra, disc, canal (would read as C1-C3)
    check_label_convention([0, 22, 23, 122, 100])  # L3, L4, L3/L4, canal


def test_options_that_do_not_apply_are_errors(tmp_path):
    from lumbarkit.phantom import write_phantom

    image = write_phantom(make_phantom(n_slices=3, noise_sigma=0.0), tmp_path, fmt="nifti")["image"]
    with pytest.raises(InputError, match="--spacing is for a 2D image"):
        load_scan(image, spacing_mm=(0.5, 0.5))
    with pytest.raises(InputError, match="--series chooses a series"):
        load_scan(image, series="T2")


@pytest.mark.shared
def test_every_real_scan_passes(shared_data):
    with open(shared_data / "volumes" / "index.csv") as fh:
        volumes = [shared_data / "volumes" / f"{r['case']}_image.nii.gz" for r in csv.DictReader(fh)]
    with open(shared_data / "spider_space" / "index.csv") as fh:
        volumes += [shared_data / "spider_space" / f"{r['series']}_image.nii.gz" for r in csv.DictReader(fh)]
    for path in volumes:
        check_scan(load_scan(path))
    from lumbarkit.training.grade.data import read_series

    for r in read_series(shared_data / "spider"):
        check_scan(load_scan(shared_data / "spider" / "images" / f"{r['series']}.png", spacing_mm=r["spacing_mm"]))
