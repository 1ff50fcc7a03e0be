"""Is this plausibly a sagittal spine MRI? Checks made on the scan's geometry and values before any analysis.

Ranges: a lumbar sagittal field of view is 200-450 mm high in practice; the 457 real scans in
``../shared/data`` span 112 x 147 mm (a cropped SPIDER slice) to 661 x 730 mm (SPIDER 207;
``python benchmarks/measure_ranges.py``); anything
under 60 mm or over 800 mm along a side is a wrong pixel spacing (a PNG given 10x its spacing is
metres wide) or not a spine.
A sagittal acquisition has its thickest spacing left-right; when an in-plane axis of the canonical
(sagittal) grid is both 2 mm or coarser and 1.5 times the left-right spacing, the series was acquired
axially or coronally and its sagittal reformat cannot be analysed.
"""

from __future__ import annotations

import numpy as np

from lumbarkit.errors import InputError
from lumbarkit.levels import DISC_OFFSET, VERTEBRA_IDS
from lumbarkit.scan import Scan

FOV_MM = (60.0, 800.0)  # each in-plane side of a sagittal slice
THICK_MM, THICK_RATIO = 2.0, 1.5


def check_scan(scan: Scan) -> None:
    """InputError (one line) for an empty image, a field of view out of human range, or a non-sagittal acquisition."""
    a = scan.array
    if a.size == 0 or float(a.max()) == float(a.min()):
        raise InputError("the image holds no signal (every voxel has the same value)")
    _, row_mm, col_mm = scan.spacing_mm
    height, width = scan.shape[1] * row_mm, scan.shape[2] * col_mm
    lo, hi = FOV_MM
    if not (lo <= height <= hi and lo <= width <= hi):
        raise InputError(f"the sagittal field of view is {height:.0f} x {width:.0f} mm, outside a spine's "
                         f"{lo:.0f}-{hi:.0f} mm: is the pixel spacing right (--spacing for a 2D image)?")
    if not scan.is_single_slice:
        lr = float(scan.spacing_mm[0])
        for axis, mm in (("superior-inferior", row_mm), ("anterior-posterior", col_mm)):
            if mm >= THICK_MM and mm > THICK_RATIO * lr:
                plane = "axial" if axis == "superior-inferior" else "coronal"
                raise InputError(f"the series looks {plane}: {mm:.1f} mm between voxels {axis} against {lr:.1f} mm "
                                 "left-right; lumbarkit needs sagittal slices")


THORACOLUMBAR = set(range(VERTEBRA_IDS["T1"], VERTEBRA_IDS["S1"] + 1))


def check_label_convention(ids) -> None:
    """InputError unless the label map uses lumbarkit's VerSe ids: at least one thoracolumbar vertebra (T1..S1)
    or disc (100 + vertebra). SPIDER-style semantic masks (1 vertebra, 2 disc, 3 canal) would read as C1-C3."""
    ids = {int(v) for v in np.asarray(list(ids)).ravel() if int(v) != 0}
    spine = {i for i in ids if i in THORACOLUMBAR or (i - DISC_OFFSET) in THORACOLUMBAR}
    if not spine:
        shown = ", ".join(str(i) for i in sorted(ids)[:8]) or "none"
        raise InputError(f"the label map holds no thoracolumbar VerSe ids (ids present: {shown}); lumbarkit expects "
                         "T10=17 ... L5=24, S1=26, discs 100 + the vertebra above, canal 100 (a semantic mask such as "
                         "SPIDER's 1/2/3 must be converted first)")
