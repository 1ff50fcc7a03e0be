"""Label map access for measurements: per-label boxes, centroids, slice masks and neighbours.

Part of :mod:`lumbarkit.stages.s3_measure`.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from lumbarkit.levels import CANAL_ID, DISC_OFFSET, VERTEBRA_NAMES
from lumbarkit.results.measurements import MeasuredLine
from lumbarkit.scan import Scan
from lumbarkit.stages.s3_measure.geometry import Plane, Sampler

# One logger for the whole stage, named after the public module (log output unchanged).
log = logging.getLogger("lumbarkit.stages.s3_measure")

MIN_AREA_MM2 = 40.0  # a body or disc smaller than this on its slice is not measured
MIN_PIXELS = 12
SPLIT_FRACTION = 0.25  # a second piece this large (vs the largest) makes a mask "split"


class Labels:
    """A label map with its slice geometry: per-label boxes, centroids and per-slice masks."""

    def __init__(self, scan: Scan, labels: np.ndarray):
        self.scan, self.labels = scan, labels
        self.plane = Plane(scan.affine)
        ids = [int(v) for v in np.unique(labels) if v != 0]
        self.vertebrae = sorted(i for i in ids if i in VERTEBRA_NAMES)
        self.discs = sorted(i for i in ids if i - DISC_OFFSET in VERTEBRA_NAMES)
        self.has_canal = CANAL_ID in ids
        ignored = sorted(set(ids) - set(self.vertebrae) - set(self.discs) - {CANAL_ID})
        if ignored:
            log.info("ignoring label ids that are not VerSe vertebrae, discs or canal: %s", ignored)
        boxes = ndimage.find_objects(labels)
        self.boxes = {i: boxes[i - 1] for i in ids if i - 1 < len(boxes) and boxes[i - 1] is not None}
        self._centroids: dict[int, np.ndarray] = {}
        self.memo: dict[tuple, object] = {}  # results of pure fits on this label map, by their arguments

    def centroid_index(self, label: int) -> np.ndarray:
        """3D centroid (k, i, j) in voxel index."""
        if label not in self._centroids:
            box = self.boxes[label]
            com = ndimage.center_of_mass(self.labels[box] == label)
            self._centroids[label] = np.array([b.start + c for b, c in zip(box, com)])
        return self._centroids[label]

    def centroid_mm(self, label: int) -> np.ndarray:
        return self.scan.voxel_to_mm(self.centroid_index(label))

    def mid_slice(self, label: int) -> int:
        """Slice through the centroid; the largest slice if that one is empty."""
        k = int(round(float(self.centroid_index(label)[0])))
        if not np.any(self.labels[k] == label):
            box = self.boxes[label]
            areas = (self.labels[box] == label).sum(axis=(1, 2))
            k = box[0].start + int(np.argmax(areas))
        return k

    def raw(self, label: int, k: int) -> np.ndarray:
        return self.labels[k] == label

    def piece(self, label: int, k: int) -> tuple[np.ndarray | None, str | None]:
        """Largest connected piece of ``label`` on slice ``k`` (holes filled) or a reason.

        Components and holes are found in the label's box grown by one pixel (a ring of background around the
        label joins the image border outside it, so the result is the whole slice's, at a fraction of the cost)."""
        h, w = self.labels.shape[1:]
        box = self.boxes.get(label)
        rs, cs = (slice(0, h), slice(0, w)) if box is None else (
            slice(max(box[1].start - 1, 0), min(box[1].stop + 1, h)), slice(max(box[2].start - 1, 0), min(box[2].stop + 1, w)))
        raw = self.labels[k, rs, cs] == label
        n_px = int(raw.sum())
        if n_px == 0:
            return None, f"not present on slice {k}"
        comps, n = ndimage.label(raw)
        sizes = np.bincount(comps.ravel())[1:]
        order = np.argsort(sizes)[::-1]
        if n > 1 and sizes[order[1]] >= SPLIT_FRACTION * sizes[order[0]]:
            return None, f"label split into {int((sizes >= SPLIT_FRACTION * sizes[order[0]]).sum())} separate parts on slice {k}"
        mask = np.zeros((h, w), dtype=bool)
        mask[rs, cs] = ndimage.binary_fill_holes(comps == order[0] + 1)
        area = float(mask.sum()) * abs(np.linalg.det(self.plane.to_plane))
        if mask.sum() < MIN_PIXELS or area < MIN_AREA_MM2:
            return None, f"too small to measure ({area:.0f} mm2 on slice {k})"
        rows, cols = np.nonzero(mask)
        if rows.min() == 0 or cols.min() == 0 or rows.max() == h - 1 or cols.max() == w - 1:
            return None, f"touches the image border on slice {k} (partly outside the field of view)"
        return mask, None

    def points(self, mask: np.ndarray) -> np.ndarray:
        return self.plane.pixels_to_plane(np.argwhere(mask))

    def sampler(self, mask: np.ndarray) -> Sampler:
        return Sampler(mask, self.plane)

    def line(self, name: str, a: np.ndarray, b: np.ndarray, k: int) -> MeasuredLine:
        return MeasuredLine(name, self.plane.ras(a, k), self.plane.ras(b, k), float(np.linalg.norm(b - a)), int(k))

    def initial_direction(self, label: int, points: np.ndarray) -> np.ndarray:
        """AP direction guess: perpendicular to the neighbours' centroid line, else the principal axis."""
        idx = self.vertebrae.index(label) if label in self.vertebrae else -1
        if idx >= 0 and len(self.vertebrae) > 1:
            above = self.vertebrae[idx - 1] if idx > 0 else label
            below = self.vertebrae[idx + 1] if idx + 1 < len(self.vertebrae) else label
            axis = self.plane.ras_to_plane(self.centroid_mm(below) - self.centroid_mm(above))
            if np.linalg.norm(axis) > 1e-6:
                return np.array([-axis[1], axis[0]])
        _, vecs = np.linalg.eigh(np.cov((points - points.mean(axis=0)).T))
        return max(vecs.T, key=lambda e: abs(e @ self.plane.posterior))


def neighbour_ids(lab: Labels, label: int) -> list[int]:
    """Anatomically adjacent vertebra ids present in the label map (L5-S1, or L5-L6-S1)."""
    def adjacent(a: int, b: int) -> bool:
        lo, hi = sorted((a, b))
        return hi - lo == 1 or (lo == 24 and hi == 26 and 25 not in lab.vertebrae)

    return [o for o in lab.vertebrae if o != label and adjacent(o, label)]
