"""Stage 3 (measure): vertebral body, disc, alignment and canal measurements in millimetres.

``measure(scan, labels)`` takes a VerSe label map on the scan's canonical grid and returns an
immutable :class:`SpineMeasurements`. All geometry runs in millimetres through ``scan.affine``
(oblique, flipped and anisotropic grids measure the same anatomy the same way); every value
carries its unit, its slice and the RAS endpoints of the lines it was measured along.

Method
------
*Slice.* A body is measured on its mid-sagittal slice: the slice through its 3D centroid
(the only slice of a 2D image). Everything between two bodies (disc heights, inter-vertebral
distances, slip) is measured on one slice: the disc label's centroid slice, else the slice
midway between the two bodies' slices (both bodies are refitted there).

*Body quadrilateral* (after Schneider et al. 2023, in the spirit of 6-point morphometry). On the
slice's largest connected piece of the mask (holes filled; an edge is where the mask, lightly
smoothed with a Gaussian of ``SMOOTHING_SIGMA_PX`` and interpolated bilinearly, crosses 0.5, so
it falls between the inside and outside pixel centres):

1. mid-line: a line through the body along its AP direction (start: perpendicular to the line
   joining the neighbouring bodies' centroids, or the principal axis nearest the AP axis);
2. heights: chords perpendicular to the mid-line at 10 %, 50 % and 90 % of its extent; each
   chord's length is the distance between the farthest mask edges along it (Ha, Hm, Hp);
3. endplate lines: least-squares lines through the superior (inferior) ends of chords at
   10-30 % and 70-90 % (the rims; a central concavity does not tilt them); wall lines through
   the anterior (posterior) edge points of AP lines at 20-80 % of the anterior (posterior)
   chord; their intersections are the corners SA, SP, IP, IA;
4. the mid-line is replaced by the line through the wall midpoints (SA+IA)/2, (SP+IP)/2 and
   steps 2-4 repeat until it stops moving.

AP depth is the mask extent along the final mid-line; endplate angles are the directions of the
endplate lines (anterior -> posterior) in degrees from the patient's posterior axis within the
slice plane, positive when the posterior end is superior. An S1 label that is not a whole body
(cut by the annotation, or the whole sacrum) keeps only its superior endplate, found from the
surface the body above looks at (RANSAC line through the first hits of rays cast from that
body's inferior endplate).

*Discs.* With both bodies, the disc is the quadrilateral IA, IP (body above), SP, SA (body
below); chords perpendicular to its mid-line at 10/50/90 % give the disc heights: the disc label's
extent along them, or without a disc label the gap between the two body masks. Where a chord
leaves the disc through its anterior/posterior edge (a slip), the endplate line stands in for
the mask edge. The anterior/posterior inter-vertebral distances are the body gaps at 10 % / 90 %.
A disc label without its bodies is fitted like a body. Disc height index = mean disc height /
mean Hm of the two bodies.

*Derived.* wedge ratio Ha/Hp, biconcavity Hm/Hp, height loss
``100 * max(1 - min(Ha, Hm) / Hp, 1 - max(Ha, Hm, Hp) / mean Hp of the adjacent graded bodies)``
(L5 and S1 are neither graded nor used as a reference) and its Genant grade. Slip: offset
``(SP_lower - IP_upper) . e`` along the lower body's superior endplate ``e`` (SA -> SP), as a
percentage of that endplate's length, positive = anterolisthesis; Meyerding grade of its size
(0 below ``SLIP_NONE_PERCENT``). Lordosis: S1 superior minus L1 superior endplate angle (L5
inferior endplate when S1 is not measured, said so in ``lordosis_method``). Canal AP diameter:
extent of the canal label (100) along the body's mid-line through the middle of Hm, and along
the disc's mid-line through the middle of the disc's middle chord; flagged below 10 mm
(absolute) and 13 mm (relative stenosis).

A value that cannot be trusted (body touching the image border, fused with a neighbour, split,
too small, not fitted) is ``None`` with a ``missing_reason``, never a number.

Modules
-------
This module is the public entry point (:func:`measure`) and re-exports the result types; the
code lives in :mod:`~lumbarkit.results.measurements` (records, grades, CSV rows),
:mod:`~lumbarkit.stages.s3_measure.geometry` (slice frame, mask edges, quadrilateral fit),
:mod:`~lumbarkit.stages.s3_measure.labels` (label map access), :mod:`~lumbarkit.stages.s3_measure.bodies`
and :mod:`~lumbarkit.stages.s3_measure.discs` (discs, slip, disc canal, lordosis).
"""

from __future__ import annotations

import logging

import numpy as np

from lumbarkit.errors import InputError
from lumbarkit.levels import VERTEBRA_NAMES
from lumbarkit.results.labelmap import LabelMap
from lumbarkit.results.measurements import (  # noqa: F401
    CANAL_ABSOLUTE_MM,
    CANAL_RELATIVE_MM,
    CSV_COLUMNS,
    GENANT_THRESHOLDS,
    SLIP_NONE_PERCENT,
    DiscMeasurements,
    Measure,
    MeasuredLine,
    Measurements,
    Point3,
    SpineMeasurements,
    VertebraMeasurements,
    canal_stenosis,
    genant_grade,
    meyerding_grade,
)
from lumbarkit.scan import Scan

# Re-exported: the public result types, grades and the method's constants, importable from here as before
# (read-only: rebinding a constant here does not change the submodules).
from lumbarkit.stages.s3_measure.bodies import (
    FUSION_CONTACT_FRACTION,  # noqa: F401
    BodyFit,
    fit_vertebra,
    grade_bodies,
    vertebra_result,
)
from lumbarkit.stages.s3_measure.canal import flag_canals
from lumbarkit.stages.s3_measure.discs import (
    measure_lordosis,
    measure_motion_segment,
    pairs,
)
from lumbarkit.stages.s3_measure.geometry import (  # noqa: F401
    CHORD_FRACTIONS,
    EDGE_FRACTIONS,
    SMOOTHING_SIGMA_PX,
    WALL_FRACTIONS,
)
from lumbarkit.stages.s3_measure.labels import (  # noqa: F401
    MIN_AREA_MM2,
    MIN_PIXELS,
    SPLIT_FRACTION,
    Labels,
    neighbour_ids,
)
from lumbarkit.stages.s3_measure.plausible import check, gate_disc, gate_vertebra

# One logger for the whole stage, named after the public module (log output unchanged).
log = logging.getLogger("lumbarkit.stages.s3_measure")


def measure(scan: Scan, labels: LabelMap | np.ndarray) -> SpineMeasurements:
    """Measure bodies, discs, slips, lordosis and canal from a VerSe label map.

    Parameters
    ----------
    scan : the scan; only its grid and affine are used.
    labels : a :class:`LabelMap`, or integer VerSe ids on the scan's canonical grid, shape ``scan.shape`` (a 2D
        array is accepted for a one-slice scan): vertebrae 1-26, discs 100 + upper vertebra, canal 100.

    Returns
    -------
    SpineMeasurements : vertebrae top to bottom, discs, lordosis; missing values carry a reason.

    Raises
    ------
    InputError : the label map is not on the scan's grid or holds no VerSe vertebra or disc ids.
    """
    lab = Labels(scan, LabelMap.on_grid_of(scan, labels).labels)
    if not lab.vertebrae and not lab.discs:
        raise InputError("the label map holds no vertebra or disc labels (VerSe ids 1-26, discs 101-126)")
    bodies: dict[str, BodyFit] = {}
    for i in lab.vertebrae:  # top to bottom: S1's fallback needs the body above
        above = [bodies[VERTEBRA_NAMES[o]] for o in neighbour_ids(lab, i) if o < i]
        bodies[VERTEBRA_NAMES[i]] = fit_vertebra(lab, i, above[0] if above else None)
    vertebrae = grade_bodies([gate_vertebra(vertebra_result(lab, b)) for b in bodies.values()], lab)
    by_name = {v.name: v for v in vertebrae}
    discs = tuple(gate_disc(measure_motion_segment(lab, bodies.get(u), bodies.get(lo), u, lo, by_name)) for u, lo in pairs(lab))
    discs = flag_canals(discs, by_name)
    lordosis, method = measure_lordosis(by_name)
    lordosis = check(lordosis)
    log.info("measured %d bodies and %d discs", sum(v.missing_reason is None for v in vertebrae), len(discs))
    return SpineMeasurements(tuple(vertebrae), discs, lordosis, method)


__all__ = [
    "MeasuredLine", "Measure", "VertebraMeasurements", "DiscMeasurements", "SpineMeasurements", "Measurements",
    "measure", "genant_grade", "meyerding_grade", "canal_stenosis", "CSV_COLUMNS",
]
