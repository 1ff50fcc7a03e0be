"""A scan over the size limit is refused from its header, at once and in one line, before pixels are read."""

from __future__ import annotations

import resource
import time

import nibabel as nib
import numpy as np
import pytest

from lumbarkit.errors import InputError
from lumbarkit.io import load_scan
from lumbarkit.io import limits


def _sparse_nifti(path, shape) -> None:
    """An uncompressed NIfTI whose header says ``shape`` (uint8), written as a sparse file (no real disk use)."""
    hdr = nib.Nifti1Image(np.zeros((1, 1, 1), np.uint8), np.eye(4)).header.copy()
    hdr.set_data_shape(shape)
    hdr["vox_offset"] = 352
    with open(path, "wb") as fh:
        fh.write(hdr.binaryblock + b"\0" * 4)
        fh.seek(352 + int(np.prod(shape)) - 1)
        fh.write(b"\0")


def test_a_2000x2000x200_volume_is_refused_from_its_header(tmp_path):
    path = tmp_path / "huge.nii"
    _sparse_nifti(path, (2000, 2000, 200))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="800 million voxels") as exc:
        load_scan(path)
    assert time.perf_counter() - t0 < 5 and "\n" not in str(exc.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: no 800 MB read


def test_the_limit_holds_for_dicom_series_too(tmp_path, monkeypatch):
    from lumbarkit.phantom import make_phantom, write_phantom

    files = write_phantom(make_phantom(n_slices=5, noise_sigma=0.0), tmp_path, fmt="dicom")
    monkeypatch.setattr(limits, "MAX_VOXELS", 1000)
    with pytest.raises(InputError, match="million voxels"):
        load_scan(files["image"])


def test_a_512x512x150_volume_is_within_the_limit():
    limits.check_voxels((150, 512, 512), "a 3D series")  # 39 M voxels
    limits.check_voxels((200, 640, 640), "a 3D T2 SPACE")  # 82 M voxels
