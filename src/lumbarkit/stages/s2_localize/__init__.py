"""Stage 2 (localize): instances and level names from the semantic segmentation.

Levels are found on the mid-sagittal slab (class probabilities averaged over the slices that
hold most canal and disc), where the spine is one chain: disc candidates off the spine or
without bone above and below are dropped, discs are ordered along the spine, and bone (body or
sacrum class) between consecutive disc planes becomes one vertebral body. Names run bottom-up
from S1: the topmost bone interval that is mostly sacrum class, counted from the bottom (discs
below it are sacral remnants and are dropped). When no sacrum is seen the lowest body is called
L5 with a low confidence and a warning. The slab's disc planes then label every slice in 3D.
"""

from __future__ import annotations

import numpy as np

from lumbarkit.results.labelmap import LabelMap
from lumbarkit.results.levels import LevelInstance, Levels
from lumbarkit.scan import Scan
from lumbarkit.stages.s2_localize.chain import bodies_between, find_discs, midline_slices
from lumbarkit.stages.s2_localize.labels import class_map, instances, label_volume
from lumbarkit.levels import LUMBAR_COUNTS
from lumbarkit.stages.s2_localize.naming import anchor, assess, walk_up

__all__ = ["LevelInstance", "Levels", "class_map", "localize", "midline_slices"]


def localize(scan: Scan, probabilities: np.ndarray, lumbar_vertebrae: int | None = None) -> Levels:
    """Name vertebral bodies and discs from class probabilities ``(slices, classes, rows, cols)``.

    ``lumbar_vertebrae`` (4, 5 or 6) is the lumbar count when the user knows it (transitional anatomy);
    None assumes the usual five. Returns the instances (top to bottom), a VerSe-id label map (bodies, S1
    with the rest of the sacrum, discs, canal) on the scan grid, and how far the names can be trusted.
    """
    if lumbar_vertebrae is not None and lumbar_vertebrae not in LUMBAR_COUNTS:
        raise ValueError(f"lumbar_vertebrae must be one of {LUMBAR_COUNTS}, not {lumbar_vertebrae}")
    lumbar = lumbar_vertebrae or 5
    pix = np.array(scan.spacing_mm[1:])
    slab = midline_slices(probabilities)
    p2 = probabilities[list(slab)].mean(axis=0)
    c2 = p2.argmax(axis=0)
    warnings: list[str] = []
    discs, sacrum_inferred = find_discs(p2, c2, pix)
    bodies, sacrum_share = bodies_between(p2, c2, discs, pix)
    first, first_name, first_conf, discs, bodies, sacrum_found, kind = anchor(bodies, discs, sacrum_inferred, sacrum_share,
                                                                              pix, warnings, lumbar)
    names = walk_up(discs, first, first_name, first_conf, warnings, lumbar)
    naming = assess(discs, names, kind, warnings, lumbar, lumbar_vertebrae is not None)
    labels = label_volume(scan, probabilities, discs, bodies, names, pix, lumbar)
    found = instances(scan, labels, discs, names, lumbar)
    seg = LabelMap(labels=labels, affine=scan.affine, confidences={i.name: i.confidence for i in found})
    return Levels(tuple(found), seg, sacrum_found, tuple(warnings), slab, naming)
