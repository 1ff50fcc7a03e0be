"""Write label maps on the input's own voxel grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lumbarkit.errors import InputError
from lumbarkit.scan import Scan

LABEL_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".png")  # a label map is written as one of these


def label_output_path(out: Path, scan: Scan) -> Path:
    """``out`` itself when it names a file, else ``out/segmentation.<nii.gz|png>``."""
    name = out.name.lower()
    if name.endswith(LABEL_SUFFIXES):
        return out
    return out / ("segmentation.png" if scan.metadata.source_format == "image" else "segmentation.nii.gz")


def write_label_map(scan: Scan, labels: np.ndarray, out: Path) -> Path:
    """Write a canonical-grid label map on the input's own grid (same shape and affine)."""
    path = label_output_path(out, scan)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name.lower()
    if name.endswith(".png"):
        if not scan.is_single_slice:
            raise InputError("a PNG label map needs a single-slice input; use .nii.gz or .mha for volumes")
        import imageio.v3 as iio

        iio.imwrite(path, labels[0].astype(np.uint8))
        return path
    data, affine = scan.to_source_grid(labels.astype(np.int16))
    if name.endswith((".nii", ".nii.gz")):
        from lumbarkit.io.volume import write_nifti

        return write_nifti(data, affine, path)
    from lumbarkit.io.volume import write_itk

    return write_itk(data, affine, path)
