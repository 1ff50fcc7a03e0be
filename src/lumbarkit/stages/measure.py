"""Stage 4: vertebral body, disc, alignment and canal measurements in millimetres.

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
``100 * (1 - min(Ha, Hm, Hp) / max(Hp, mean Hp of the adjacent measured bodies))`` (S1 is
neither graded nor used as a reference) and its Genant grade. Slip: offset
``(SP_lower - IP_upper) . e`` along the lower body's superior endplate ``e`` (SA -> SP), as a
percentage of that endplate's length, positive = anterolisthesis; Meyerding grade of its size
(0 below ``SLIP_NONE_PERCENT``). Lordosis: S1 superior minus L1 superior endplate angle (L5
inferior endplate when S1 is not measured, said so in ``lordosis_method``). Canal AP diameter:
extent of the canal label (100) along the body's mid-line through the middle of Hm, and along
the disc's mid-line through the middle of the disc's middle chord; flagged below 10 mm
(absolute) and 13 mm (relative stenosis).

A value that cannot be trusted (body touching the image border, fused with a neighbour, split,
too small, not fitted) is ``None`` with a ``missing_reason``, never a number.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Iterable, Iterator

import numpy as np
from scipy import ndimage

from lumbarkit.errors import InputError
from lumbarkit.levels import CANAL_ID, DISC_OFFSET, VERTEBRA_NAMES, disc_name, vertebra_id
from lumbarkit.scan import Scan

log = logging.getLogger(__name__)

Point3 = tuple[float, float, float]

CHORD_FRACTIONS = (0.1, 0.5, 0.9)  # anterior, middle, posterior height chords along the mid-line
EDGE_FRACTIONS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.7, 0.75, 0.8, 0.85, 0.9)  # chords whose ends fit the endplate lines
WALL_FRACTIONS = (0.2, 0.35, 0.5, 0.65, 0.8)  # where along the anterior/posterior chord the wall points are taken
SMOOTHING_SIGMA_PX = 0.7  # Gaussian smoothing of a mask before its 0.5 edge is located (pixels)
MIN_AREA_MM2 = 40.0  # a body or disc smaller than this on its slice is not measured
MIN_PIXELS = 12
SPLIT_FRACTION = 0.25  # a second piece this large (vs the largest) makes a mask "split"
FUSION_CONTACT_FRACTION = 0.3  # bodies touching over this fraction of the depth are "fused"
SLIP_NONE_PERCENT = 8.0  # |slip| below this (~3 mm on a 35 mm body) is no listhesis: Meyerding grade 0
GENANT_THRESHOLDS = (20.0, 25.0, 40.0)  # height loss % where grades 1, 2, 3 start
CANAL_ABSOLUTE_MM = 10.0  # AP diameter below: absolute central stenosis
CANAL_RELATIVE_MM = 13.0  # below: relative central stenosis

CSV_COLUMNS = (
    "vertebra", "label", "slice_index",
    "height_anterior_mm", "height_middle_mm", "height_posterior_mm", "depth_ap_mm",
    "superior_endplate_deg", "inferior_endplate_deg", "wedge_ratio", "biconcavity_ratio",
    "height_loss_percent", "genant_grade", "slip_percent", "slip_mm", "meyerding_grade",
    "canal_ap_mm", "canal_stenosis", "disc", "disc_slice_index", "disc_source",
    "disc_height_anterior_mm", "disc_height_middle_mm", "disc_height_posterior_mm",
    "ivd_distance_anterior_mm", "ivd_distance_posterior_mm", "disc_height_index",
    "disc_canal_ap_mm", "disc_canal_stenosis", "centroid_r_mm", "centroid_a_mm", "centroid_s_mm",
    "missing_reason", "notes",
)


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class MeasuredLine:
    """A measured segment: RAS mm endpoints on one canonical slice."""

    name: str  # e.g. "L3 Ha", "L4/L5 disc Hm", "L4/L5 slip"
    start_mm: Point3
    end_mm: Point3
    length_mm: float
    slice_index: int


@dataclass(frozen=True)
class Measure:
    """One value with its unit ("mm", "deg", "%", "ratio", "grade"), slice and measured lines.

    ``value`` is ``None`` when it could not be measured; ``missing_reason`` says why.
    """

    name: str
    value: float | None
    unit: str
    slice_index: int | None = None
    lines: tuple[MeasuredLine, ...] = ()
    missing_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None


def _missing(name: str, unit: str, reason: str, slice_index: int | None = None) -> Measure:
    return Measure(name, None, unit, slice_index, (), reason)


@dataclass(frozen=True)
class VertebraMeasurements:
    """One vertebral body on its mid-sagittal slice. Heights/depth mm, angles deg, loss %."""

    name: str
    label: int
    slice_index: int | None
    centroid_mm: Point3 | None  # 3D centroid of the whole label, RAS
    corners_mm: tuple[Point3, Point3, Point3, Point3] | None  # SA, SP, IP, IA on slice_index
    height_anterior: Measure
    height_middle: Measure
    height_posterior: Measure
    depth_ap: Measure
    superior_endplate_angle: Measure
    inferior_endplate_angle: Measure
    wedge_ratio: Measure
    biconcavity: Measure
    height_loss: Measure
    genant_grade: Measure
    canal_ap: Measure
    canal_stenosis: str | None = None  # "absolute", "relative", "none"; None if not measured
    missing_reason: str | None = None  # why the body as a whole is not measured
    notes: tuple[str, ...] = ()

    def measures(self) -> tuple[Measure, ...]:
        return (
            self.height_anterior, self.height_middle, self.height_posterior, self.depth_ap,
            self.superior_endplate_angle, self.inferior_endplate_angle, self.wedge_ratio,
            self.biconcavity, self.height_loss, self.genant_grade, self.canal_ap,
        )


@dataclass(frozen=True)
class DiscMeasurements:
    """The disc (motion segment) between two bodies, measured on one slice."""

    name: str  # "L4/L5"
    upper: str
    lower: str
    label: int
    slice_index: int | None
    source: str  # "disc mask" or "vertebral bodies" (gap between them); "" when not measured
    height_anterior: Measure
    height_middle: Measure
    height_posterior: Measure
    ivd_distance_anterior: Measure
    ivd_distance_posterior: Measure
    disc_height_index: Measure
    slip_mm: Measure
    slip_percent: Measure
    meyerding_grade: Measure
    canal_ap: Measure
    canal_stenosis: str | None = None
    missing_reason: str | None = None

    def measures(self) -> tuple[Measure, ...]:
        return (
            self.height_anterior, self.height_middle, self.height_posterior, self.ivd_distance_anterior,
            self.ivd_distance_posterior, self.disc_height_index, self.slip_mm, self.slip_percent,
            self.meyerding_grade, self.canal_ap,
        )


@dataclass(frozen=True)
class SpineMeasurements:
    """All measurements of one scan: bodies top to bottom, discs, lumbar lordosis."""

    vertebrae: tuple[VertebraMeasurements, ...]
    discs: tuple[DiscMeasurements, ...]
    lordosis: Measure
    lordosis_method: str | None = None  # "L1-S1" or "L1-L5 (S1 not measured)"

    @property
    def lordosis_deg(self) -> float | None:
        return self.lordosis.value

    def vertebra(self, name: str) -> VertebraMeasurements | None:
        return next((v for v in self.vertebrae if v.name == name), None)

    def disc(self, name: str) -> DiscMeasurements | None:
        return next((d for d in self.discs if d.name == name), None)

    def lines(self) -> Iterator[tuple[str, MeasuredLine]]:
        """Every measured line with the name of the measure it belongs to."""
        groups: list[Iterable[Measure]] = [v.measures() for v in self.vertebrae]
        groups += [d.measures() for d in self.discs]
        groups.append([self.lordosis])
        for group in groups:
            for m in group:
                for line in m.lines:
                    yield m.name, line

    def to_rows(self) -> list[dict]:
        """One row per vertebra (and per disc whose upper body is not labelled), CSV_COLUMNS keys."""
        return _rows(self)

    def to_dict(self) -> dict:
        """Plain-JSON form (lists, floats, None)."""
        from dataclasses import asdict

        return asdict(self)


Measurements = SpineMeasurements


# ---------------------------------------------------------------- grades


def genant_grade(height_loss_percent: float) -> int:
    """Genant semi-quantitative grade: 0 (<20 %), 1 (20-25 %), 2 (25-40 %), 3 (>40 %)."""
    return int(sum(height_loss_percent >= t for t in GENANT_THRESHOLDS))


def meyerding_grade(slip_percent: float) -> int:
    """Meyerding grade of |slip| %: 0 none (< SLIP_NONE_PERCENT), I <=25, II <=50, III <=75, IV <=100, V >100."""
    s = abs(slip_percent)
    if s < SLIP_NONE_PERCENT:
        return 0
    return 1 + int(sum(s > t for t in (25.0, 50.0, 75.0, 100.0)))


def canal_stenosis(ap_mm: float) -> str:
    """Central canal flag from the AP diameter: "absolute" (<10 mm), "relative" (10-13 mm) or "none"."""
    if ap_mm < CANAL_ABSOLUTE_MM:
        return "absolute"
    return "relative" if ap_mm < CANAL_RELATIVE_MM else "none"


# ---------------------------------------------------------------- slice geometry


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


class _Plane:
    """Isometric 2D mm frame of canonical slices: plane (x, y) <-> pixel (i, j) <-> RAS."""

    def __init__(self, affine: np.ndarray):
        a_k, a_i, a_j = (affine[:3, c] for c in range(3))
        self._a_k, self._t = a_k, affine[:3, 3]
        self.e1 = _unit(a_i)
        self.e2 = _unit(a_j - (a_j @ self.e1) * self.e1)
        self.to_plane = np.array([[np.linalg.norm(a_i), a_j @ self.e1], [0.0, a_j @ self.e2]])
        self.to_pixel = np.linalg.inv(self.to_plane)
        self.pixel_mm = float(min(np.linalg.norm(a_i), np.linalg.norm(a_j)))
        # patient superior and posterior as seen within the slice plane
        sup = np.array([self.e1[2], self.e2[2]])
        self.superior = _unit(sup)
        post = np.array([-self.e1[1], -self.e2[1]])
        self.posterior = _unit(post - (post @ self.superior) * self.superior)

    def pixels_to_plane(self, ij: np.ndarray) -> np.ndarray:
        return np.asarray(ij, dtype=float) @ self.to_plane.T

    def plane_to_pixels(self, xy: np.ndarray) -> np.ndarray:
        return np.asarray(xy, dtype=float) @ self.to_pixel.T

    def ras(self, xy: np.ndarray, k: int) -> Point3:
        p = self._t + k * self._a_k + xy[0] * self.e1 + xy[1] * self.e2
        return (float(p[0]), float(p[1]), float(p[2]))

    def ras_to_plane(self, ras_delta: np.ndarray) -> np.ndarray:
        """In-plane components of a RAS displacement."""
        return np.array([ras_delta @ self.e1, ras_delta @ self.e2])

    def frame(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``u`` oriented anterior->posterior and its perpendicular oriented superior->inferior."""
        u = _unit(u)
        if u @ self.posterior < 0:
            u = -u
        v = np.array([-u[1], u[0]])
        if v @ self.superior > 0:
            v = -v
        return u, v

    def angle_deg(self, direction: np.ndarray) -> float:
        """Angle of an anterior->posterior direction from the posterior axis, + when posterior end is superior."""
        return math.degrees(math.atan2(direction @ self.superior, direction @ self.posterior))


class _Sampler:
    """Locates the edges of one 2D mask along lines given in plane mm."""

    def __init__(self, mask: np.ndarray, plane: _Plane, sigma_px: float = SMOOTHING_SIGMA_PX):
        self.plane = plane
        rows, cols = np.nonzero(mask)
        pad = int(math.ceil(3 * sigma_px)) + 2
        self.offset = np.array([max(rows.min() - pad, 0), max(cols.min() - pad, 0)])
        crop = mask[self.offset[0] : rows.max() + pad + 1, self.offset[1] : cols.max() + pad + 1].astype(np.float32)
        self.values = ndimage.gaussian_filter(crop, sigma_px, mode="constant") if sigma_px > 0 else crop
        self.step = plane.pixel_mm / 4.0

    def profile(self, point: np.ndarray, direction: np.ndarray, half: float) -> tuple[np.ndarray, np.ndarray]:
        t = np.arange(-half, half + self.step / 2, self.step)
        ij = self.plane.plane_to_pixels(point + t[:, None] * direction) - self.offset
        return t, ndimage.map_coordinates(self.values, ij.T, order=1, mode="constant", cval=0.0)

    def extent(self, point: np.ndarray, direction: np.ndarray, half: float, need: str = "both") -> tuple[float, float] | None:
        """Parameters ``t`` of the first and last 0.5-crossings along ``point + t * direction``.

        ``need="first"`` (``"last"``) accepts a line that is still inside at the far (near) end of
        ``[-half, half]``; that end's value is then ``nan``.
        """
        t, f = self.profile(point, direction, half)
        inside = np.flatnonzero(f >= 0.5)
        if inside.size == 0:
            return None
        i0, i1 = inside[0], inside[-1]
        if (i0 == 0 and need != "last") or (i1 == len(t) - 1 and need != "first") or (i0 == 0 and i1 == len(t) - 1):
            return None
        t0 = t[i0 - 1] + (0.5 - f[i0 - 1]) / (f[i0] - f[i0 - 1]) * self.step if i0 > 0 else math.nan
        t1 = t[i1] + (f[i1] - 0.5) / (f[i1] - f[i1 + 1]) * self.step if i1 < len(t) - 1 else math.nan
        return float(t0), float(t1)


def _intersect(p: np.ndarray, d: np.ndarray, q: np.ndarray, e: np.ndarray) -> np.ndarray | None:
    m = np.column_stack([d, -e])
    if abs(np.linalg.det(m)) < 1e-6:
        return None
    s, _ = np.linalg.solve(m, q - p)
    return p + s * d


Line2 = tuple[np.ndarray, np.ndarray]  # (point, unit direction) in plane mm


def _fit_line(points: list[np.ndarray]) -> Line2 | None:
    """Least-squares (orthogonal) line through plane points."""
    from skimage.measure import LineModelND

    model = LineModelND.from_estimate(np.asarray(points, dtype=float))
    if not model:
        return None
    return np.asarray(model.origin, dtype=float), _unit(np.asarray(model.direction, dtype=float))


def _on_line(line: Line2, base: np.ndarray, d: np.ndarray) -> float | None:
    """Parameter ``t`` where ``base + t d`` meets ``line``."""
    hit = _intersect(base, d, line[0], line[1])
    return None if hit is None else float((hit - base) @ d)


@dataclass(frozen=True)
class _Quad:
    """A body or disc fitted on one slice (plane mm): mid-line, chords, edge lines, corners."""

    u: np.ndarray
    v: np.ndarray
    depth: tuple[np.ndarray, np.ndarray]  # anterior, posterior ends of the mid-line extent
    chords: tuple[tuple[np.ndarray, np.ndarray], ...]  # (superior, inferior) end per CHORD_FRACTIONS
    superior: Line2  # endplate lines fitted to the rims (EDGE_FRACTIONS chords)
    inferior: Line2
    corners: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # SA, SP, IP, IA

    @property
    def heights(self) -> tuple[float, ...]:
        return tuple(float(np.linalg.norm(b - a)) for a, b in self.chords)

    @property
    def depth_mm(self) -> float:
        return float(np.linalg.norm(self.depth[1] - self.depth[0]))

    @property
    def centre(self) -> np.ndarray:
        return (self.chords[1][0] + self.chords[1][1]) / 2

    def endplate_segment(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """The fitted endplate line between the anterior and posterior chords."""
        line = self.superior if which == "superior" else self.inferior
        ends = []
        for top, bottom in (self.chords[0], self.chords[-1]):
            t = _on_line(line, top, self.v)
            ends.append(top + (t if t is not None else 0.0) * self.v)
        return ends[0], ends[1]


def _quad_along(s: _Sampler, c: np.ndarray, u: np.ndarray, v: np.ndarray, half: float) -> _Quad | None:
    ext = s.extent(c, u, half)
    if ext is None:
        return None
    a_pt, p_pt = c + ext[0] * u, c + ext[1] * u
    chords = {}
    for f in sorted(set(CHORD_FRACTIONS) | set(EDGE_FRACTIONS)):
        base = a_pt + f * (p_pt - a_pt)
        e = s.extent(base, v, half)
        if e is None:
            return None
        chords[f] = (base + e[0] * v, base + e[1] * v)
    sup = _fit_line([chords[f][0] for f in EDGE_FRACTIONS])
    inf = _fit_line([chords[f][1] for f in EDGE_FRACTIONS])
    walls = []
    for f, end in ((CHORD_FRACTIONS[0], 0), (CHORD_FRACTIONS[-1], 1)):
        top, bottom = chords[f]
        pts = []
        for g in WALL_FRACTIONS:
            q = top + g * (bottom - top)
            q = q + ((c - q) @ u) * u  # same AP line, re-centred on the mid-line's centre
            e = s.extent(q, u, half)
            if e is None:
                return None
            pts.append(q + e[end] * u)
        wall = _fit_line(pts) if np.linalg.norm(pts[-1] - pts[0]) > 2 * s.plane.pixel_mm else (pts[0], v)
        walls.append(wall)
    if sup is None or inf is None or any(w is None for w in walls):
        return None
    pairs = ((sup, walls[0]), (sup, walls[1]), (inf, walls[1]), (inf, walls[0]))
    corners = [_intersect(a[0], a[1], b[0], b[1]) for a, b in pairs]
    if any(k is None or np.linalg.norm(k - c) > half for k in corners):
        return None
    measured = tuple(chords[f] for f in CHORD_FRACTIONS)
    return _Quad(u, v, (a_pt, p_pt), measured, sup, inf, tuple(corners))  # type: ignore[arg-type]


def _fit_quad(s: _Sampler, points: np.ndarray, u0: np.ndarray, max_iter: int = 25) -> _Quad | None:
    """Iterate the mid-line through the wall midpoints (module doc, steps 1-4)."""
    plane = s.plane
    c = points.mean(axis=0)
    half = float(np.linalg.norm(points - c, axis=1).max()) + 6 * plane.pixel_mm
    u, v = plane.frame(u0)
    quad = None
    for _ in range(max_iter):
        quad = _quad_along(s, c, u, v, half)
        if quad is None:
            return None
        sa, sp, ip, ia = quad.corners
        a, p = (sa + ia) / 2, (sp + ip) / 2
        if np.linalg.norm(p - a) < 2 * plane.pixel_mm:
            return None
        nu, nv = plane.frame(p - a)
        nc = (a + p) / 2
        moved = np.linalg.norm(nc - c) + half * np.linalg.norm(nu - u)
        u, v, c = nu, nv, nc
        if moved < 1e-3:
            break
    else:
        log.debug("quadrilateral fit did not settle after %d iterations", max_iter)
    quad = _quad_along(s, c, u, v, half)
    if quad is None or math.degrees(math.acos(np.clip(abs(quad.u @ plane.frame(u0)[0]), -1, 1))) > 45:
        return None
    return quad


# ---------------------------------------------------------------- label map access


class _Labels:
    """A label map with its slice geometry: per-label boxes, centroids and per-slice masks."""

    def __init__(self, scan: Scan, labels: np.ndarray):
        self.scan, self.labels = scan, labels
        self.plane = _Plane(scan.affine)
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
        """Largest connected piece of ``label`` on slice ``k`` (holes filled) or a reason."""
        raw = self.raw(label, k)
        n_px = int(raw.sum())
        if n_px == 0:
            return None, f"not present on slice {k}"
        comps, n = ndimage.label(raw)
        sizes = np.bincount(comps.ravel())[1:]
        order = np.argsort(sizes)[::-1]
        if n > 1 and sizes[order[1]] >= SPLIT_FRACTION * sizes[order[0]]:
            return None, f"label split into {int((sizes >= SPLIT_FRACTION * sizes[order[0]]).sum())} separate parts on slice {k}"
        mask = ndimage.binary_fill_holes(comps == order[0] + 1)
        area = float(mask.sum()) * abs(np.linalg.det(self.plane.to_plane))
        if mask.sum() < MIN_PIXELS or area < MIN_AREA_MM2:
            return None, f"too small to measure ({area:.0f} mm2 on slice {k})"
        rows, cols = np.nonzero(mask)
        h, w = mask.shape
        if rows.min() == 0 or cols.min() == 0 or rows.max() == h - 1 or cols.max() == w - 1:
            return None, f"touches the image border on slice {k} (partly outside the field of view)"
        return mask, None

    def points(self, mask: np.ndarray) -> np.ndarray:
        return self.plane.pixels_to_plane(np.argwhere(mask))

    def sampler(self, mask: np.ndarray) -> _Sampler:
        return _Sampler(mask, self.plane)

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


# ---------------------------------------------------------------- bodies


@dataclass(frozen=True)
class _Endplate:
    """A superior endplate: anterior and posterior corners and its line (plane mm)."""

    sa: np.ndarray
    sp: np.ndarray
    line: Line2


@dataclass(frozen=True)
class _Body:
    name: str
    label: int
    k: int
    quad: _Quad | None
    reason: str | None
    notes: tuple[str, ...]
    endplate: _Endplate | None = None  # S1 fallback when its label is not a whole body


def _neighbour_ids(lab: _Labels, label: int) -> list[int]:
    """Anatomically adjacent vertebra ids present in the label map (L5-S1, or L5-L6-S1)."""
    def adjacent(a: int, b: int) -> bool:
        lo, hi = sorted((a, b))
        return hi - lo == 1 or (lo == 24 and hi == 26 and 25 not in lab.vertebrae)

    return [o for o in lab.vertebrae if o != label and adjacent(o, label)]


def _fit_body(lab: _Labels, label: int, k: int, u0: np.ndarray | None = None) -> tuple[_Quad | None, _Sampler | None, str | None]:
    """Fit ``label`` on slice ``k``: (quad, sampler, None), or (None, sampler or None, reason)."""
    mask, reason = lab.piece(label, k)
    if mask is None:
        return None, None, reason
    pts = lab.points(mask)
    sampler = lab.sampler(mask)
    quad = _fit_quad(sampler, pts, lab.initial_direction(label, pts) if u0 is None else u0)
    if quad is None:
        return None, sampler, f"shape could not be fitted on slice {k}"
    return quad, sampler, None


def _facing_endplate(lab: _Labels, sampler: _Sampler, above: _Quad) -> _Endplate | None:
    """Superior endplate of a body from the surface its upper neighbour looks at.

    Rays leave the upper body's inferior endplate line (extended 50 % beyond both corners) along
    its inferior direction; their first hits on the mask are fitted with a RANSAC line, which
    drops hits on the anterior/posterior walls. Used for S1 labels that are not whole bodies.
    """
    from skimage.measure import LineModelND, ransac

    ia, ip = above.corners[3], above.corners[2]
    half = 3 * (above.depth_mm + max(above.heights))
    hits = []
    for f in np.linspace(-0.5, 1.5, 41):
        e = sampler.extent(ia + f * (ip - ia), above.v, half, need="first")
        if e is not None and np.isfinite(e[0]):
            hits.append(ia + f * (ip - ia) + e[0] * above.v)
    if len(hits) < 6:
        return None
    model, inliers = ransac(np.array(hits), LineModelND, min_samples=2, residual_threshold=max(1.0, 1.5 * lab.plane.pixel_mm),
                            max_trials=200, rng=0)
    if model is None or inliers is None or inliers.sum() < 6:
        return None
    origin, d = np.asarray(model.origin, dtype=float), _unit(np.asarray(model.direction, dtype=float))
    d = lab.plane.frame(d)[0]
    if abs(d @ above.u) < math.cos(math.radians(45)):
        return None
    proj = (np.array(hits)[inliers] - origin) @ d
    return _Endplate(origin + proj.min() * d, origin + proj.max() * d, (origin, d))


def _fusion(lab: _Labels, label: int, k: int, quad: _Quad) -> str | None:
    mask = lab.raw(label, k)
    grown = ndimage.binary_dilation(mask)
    for other in _neighbour_ids(lab, label):
        contact = float((grown & lab.raw(other, k)).sum()) * lab.plane.pixel_mm
        if contact > FUSION_CONTACT_FRACTION * quad.depth_mm:
            return f"fused with {VERTEBRA_NAMES[other]} (bodies touch over {contact:.0f} mm on slice {k}, no disc space)"
    return None


def _quad_on(lab: _Labels, body: _Body, k: int) -> _Quad | None:
    """A measured body refitted on slice ``k`` (its own fit when ``k`` is its slice)."""
    if body.quad is None:
        return None
    return body.quad if k == body.k else _fit_body(lab, body.label, k, body.quad.u)[0]


def _body(lab: _Labels, label: int, above: _Body | None) -> _Body:
    name = VERTEBRA_NAMES[label]
    k = lab.mid_slice(label)
    notes: list[str] = []
    box = lab.boxes[label]
    if lab.labels.shape[0] > 1 and (box[0].start == 0 or box[0].stop == lab.labels.shape[0]):
        notes.append("reaches the first/last sagittal slice: mid-sagittal slice estimated from the visible part")
    quad, sampler, reason = _fit_body(lab, label, k)
    fused = None if quad is None else _fusion(lab, label, k, quad)
    if fused:
        quad, reason = None, fused
    endplate = None
    if quad is None and not fused and name == "S1" and sampler is not None and above is not None:
        above_q = _quad_on(lab, above, k) or above.quad
        endplate = _facing_endplate(lab, sampler, above_q) if above_q is not None else None
        if endplate is not None:
            reason = f"{reason}: only the superior endplate (facing {above.name}) is measured"
    if reason:
        log.info("%s: %s", name, reason)
    return _Body(name, label, k, quad, reason, tuple(notes), endplate)


def _canal(lab: _Labels, k: int, centre: np.ndarray, u: np.ndarray, reach: float, who: str) -> tuple[Measure, str | None]:
    if not lab.has_canal:
        return _missing("canal_ap", "mm", "no canal label (100)", k), None
    raw = lab.raw(CANAL_ID, k)
    if not raw.any():
        return _missing("canal_ap", "mm", f"no canal on slice {k}", k), None
    ext = _Sampler(raw, lab.plane).extent(centre, u, reach)
    if ext is None or ext[1] <= 0:
        return _missing("canal_ap", "mm", f"the mid-line does not cross the canal on slice {k}", k), None
    a, b = centre + max(ext[0], 0.0) * u, centre + ext[1] * u
    line = lab.line(f"{who} canal AP", a, b, k)
    return Measure("canal_ap", line.length_mm, "mm", k, (line,)), canal_stenosis(line.length_mm)


def _vertebra_result(lab: _Labels, body: _Body) -> VertebraMeasurements:
    centroid = tuple(float(v) for v in lab.centroid_mm(body.label))
    k, q, n = body.k, body.quad, body.name
    if q is None:
        reason = body.reason or "not measured"
        miss = {f: _missing(f, u, reason, k) for f, u in _BODY_FIELDS}
        if body.endplate is None:
            return VertebraMeasurements(n, body.label, k, centroid, None, **miss, missing_reason=reason, notes=body.notes)  # type: ignore[arg-type]
        ep = body.endplate
        line = lab.line(f"{n} superior endplate", ep.sa, ep.sp, k)
        miss["superior_endplate_angle"] = Measure("superior_endplate_angle", lab.plane.angle_deg(ep.line[1]), "deg", k, (line,))
        return VertebraMeasurements(n, body.label, k, centroid, None, **miss, notes=body.notes)  # type: ignore[arg-type]
    lines = [lab.line(f"{n} {h}", a, b, k) for h, (a, b) in zip(("Ha", "Hm", "Hp"), q.chords)]
    ha, hm, hp = (line.length_mm for line in lines)
    depth = lab.line(f"{n} AP depth", q.depth[0], q.depth[1], k)
    sup = lab.line(f"{n} superior endplate", *q.endplate_segment("superior"), k)
    inf = lab.line(f"{n} inferior endplate", *q.endplate_segment("inferior"), k)
    canal, flag = _canal(lab, k, q.centre, q.u, q.depth_mm + 60.0, n)
    return VertebraMeasurements(
        n, body.label, k, centroid, tuple(lab.plane.ras(c, k) for c in q.corners),  # type: ignore[arg-type]
        height_anterior=Measure("height_anterior", ha, "mm", k, (lines[0],)),
        height_middle=Measure("height_middle", hm, "mm", k, (lines[1],)),
        height_posterior=Measure("height_posterior", hp, "mm", k, (lines[2],)),
        depth_ap=Measure("depth_ap", depth.length_mm, "mm", k, (depth,)),
        superior_endplate_angle=Measure("superior_endplate_angle", lab.plane.angle_deg(q.superior[1] * np.sign(q.superior[1] @ q.u)), "deg", k, (sup,)),
        inferior_endplate_angle=Measure("inferior_endplate_angle", lab.plane.angle_deg(q.inferior[1] * np.sign(q.inferior[1] @ q.u)), "deg", k, (inf,)),
        wedge_ratio=Measure("wedge_ratio", ha / hp, "ratio", k),
        biconcavity=Measure("biconcavity", hm / hp, "ratio", k),
        height_loss=_missing("height_loss", "%", "pending"),
        genant_grade=_missing("genant_grade", "grade", "pending"),
        canal_ap=canal, canal_stenosis=flag, notes=body.notes,
    )


_BODY_FIELDS = (
    ("height_anterior", "mm"), ("height_middle", "mm"), ("height_posterior", "mm"), ("depth_ap", "mm"),
    ("superior_endplate_angle", "deg"), ("inferior_endplate_angle", "deg"), ("wedge_ratio", "ratio"),
    ("biconcavity", "ratio"), ("height_loss", "%"), ("genant_grade", "grade"), ("canal_ap", "mm"),
)


def _grade_bodies(vertebrae: list[VertebraMeasurements], lab: _Labels) -> list[VertebraMeasurements]:
    """Height loss against max(own Hp, mean Hp of measured adjacent bodies) and the Genant grade."""
    by_label = {v.label: v for v in vertebrae}
    out = []
    for v in vertebrae:
        if v.missing_reason or not v.height_posterior.ok:
            out.append(v)
            continue
        if v.name == "S1":
            out.append(replace(v, height_loss=_missing("height_loss", "%", "not graded for S1", v.slice_index),
                               genant_grade=_missing("genant_grade", "grade", "not graded for S1", v.slice_index)))
            continue
        refs = [by_label[o].height_posterior.value for o in _neighbour_ids(lab, v.label)
                if o in by_label and by_label[o].name != "S1" and by_label[o].height_posterior.ok]
        hp = float(v.height_posterior.value)  # type: ignore[arg-type]
        ref = max([hp] + ([float(np.mean(refs))] if refs else []))
        lowest = min(float(v.height_anterior.value), float(v.height_middle.value), hp)  # type: ignore[arg-type]
        loss = max(0.0, 100.0 * (1.0 - lowest / ref))
        k = v.slice_index
        out.append(replace(v, height_loss=Measure("height_loss", loss, "%", k),
                           genant_grade=Measure("genant_grade", genant_grade(loss), "grade", k)))
    return out


# ---------------------------------------------------------------- discs and segments


_DISC_FIELDS = (
    ("height_anterior", "mm"), ("height_middle", "mm"), ("height_posterior", "mm"), ("ivd_distance_anterior", "mm"),
    ("ivd_distance_posterior", "mm"), ("disc_height_index", "ratio"), ("slip_mm", "mm"), ("slip_percent", "%"),
    ("meyerding_grade", "grade"), ("canal_ap", "mm"),
)


@dataclass(frozen=True)
class _DiscFrame:
    """The disc quadrilateral IA, IP (body above) / SA, SP (body below) on one slice, plane mm."""

    a: np.ndarray  # midpoint of the anterior edge
    p: np.ndarray  # midpoint of the posterior edge
    u: np.ndarray
    v: np.ndarray
    upper: tuple[np.ndarray, np.ndarray]  # IA, IP of the body above (its inferior endplate)
    lower: tuple[np.ndarray, np.ndarray]  # SA, SP of the body below (its superior endplate)
    half: float

    def bases(self) -> list[np.ndarray]:
        return [self.a + f * (self.p - self.a) for f in CHORD_FRACTIONS]

    def endplate_hit(self, base: np.ndarray, which: str) -> tuple[float | None, bool]:
        """Where the chord through ``base`` meets an endplate line, and whether that is between its corners."""
        a, b = self.upper if which == "upper" else self.lower
        t = _on_line((a, _unit(b - a)), base, self.v)
        if t is None:
            return None, False
        x = base + t * self.v
        return t, bool(0.0 <= (x - a) @ (b - a) <= (b - a) @ (b - a))


def _disc_frame(lab: _Labels, up_q: _Quad, lo: _Endplate) -> _DiscFrame:
    a = (up_q.corners[3] + lo.sa) / 2
    p = (up_q.corners[2] + lo.sp) / 2
    u, v = lab.plane.frame(p - a)
    half = 2 * (up_q.depth_mm + max(up_q.heights))
    return _DiscFrame(a, p, u, v, (up_q.corners[3], up_q.corners[2]), (lo.sa, lo.sp), half)


def _end(mask_t: float | None, hit: tuple[float | None, bool]) -> float | None:
    """A chord end: the mask edge where the chord crosses the endplate between its corners, else the
    endplate line (the chord left through the disc's anterior/posterior edge, e.g. with a slip)."""
    t_line, inside = hit
    if mask_t is not None and not np.isfinite(mask_t):
        mask_t = None
    return mask_t if (inside or t_line is None) and mask_t is not None else t_line


def _gap_chord(fr: _DiscFrame, base: np.ndarray, up_s: _Sampler, lo_s: _Sampler):
    """Gap between the two body masks along a chord."""
    e_up = up_s.extent(base, fr.v, fr.half, need="last")
    e_lo = lo_s.extent(base, fr.v, fr.half, need="first")
    t0 = _end(e_up[1] if e_up is not None else None, fr.endplate_hit(base, "upper"))
    t1 = _end(e_lo[0] if e_lo is not None else None, fr.endplate_hit(base, "lower"))
    if t0 is None or t1 is None or t1 <= t0:
        return None
    return base + t0 * fr.v, base + t1 * fr.v


def _disc_chord(fr: _DiscFrame, base: np.ndarray, disc_s: _Sampler):
    """Disc mask extent along a chord."""
    ext = disc_s.extent(base, fr.v, fr.half)
    if ext is None:
        return None
    t0 = _end(ext[0], fr.endplate_hit(base, "upper"))
    t1 = _end(ext[1], fr.endplate_hit(base, "lower"))
    if t0 is None or t1 is None or t1 <= t0:
        return None
    return base + t0 * fr.v, base + t1 * fr.v


def _chord_measures(lab: _Labels, names: tuple[str, ...], fields: tuple[str, ...], chords, k: int, what: str) -> dict[str, Measure]:
    out = {}
    for f, h, g in zip(fields, names, chords):
        if g is None:
            out[f] = _missing(f, "mm", "the chord does not meet the disc or both bodies", k)
        else:
            line = lab.line(f"{what} {h}", g[0], g[1], k)
            out[f] = Measure(f, line.length_mm, "mm", k, (line,))
    return out


def _slip(lab: _Labels, up_q: _Quad, lo: _Endplate, k: int, name: str) -> dict[str, Measure]:
    """Offset of the upper body's IP corner along the lower body's superior endplate (SA -> SP)."""
    length = float(np.linalg.norm(lo.sp - lo.sa))
    e = (lo.sp - lo.sa) / length
    offset = float((lo.sp - up_q.corners[2]) @ e)
    pct = 100.0 * offset / length
    line = lab.line(f"{name} slip", lo.sp, lo.sp - offset * e, k)
    return {
        "slip_mm": Measure("slip_mm", offset, "mm", k, (line,)),
        "slip_percent": Measure("slip_percent", pct, "%", k, (line,)),
        "meyerding_grade": Measure("meyerding_grade", meyerding_grade(pct), "grade", k),
    }


def _segment_slice(lab: _Labels, did: int, upper: _Body | None, lower: _Body | None) -> int | None:
    if did in lab.discs:
        return lab.mid_slice(did)
    if upper is not None and lower is not None:
        return int(round((upper.k + lower.k) / 2))
    return None


def _segment_bodies(lab: _Labels, upper: _Body | None, lower: _Body | None, names: tuple[str, str], k: int):
    """Both bodies on slice ``k``: (upper quad, its sampler, lower endplate, its sampler, reason)."""
    bad = [(b, nm) for b, nm in zip((upper, lower), names) if b is None or (b.quad is None and b.endplate is None)]
    if bad or upper is None or lower is None or upper.quad is None:
        bad = bad or [(upper, names[0])]
        return None, None, None, None, "; ".join(f"{nm} not measured ({b.reason})" if b is not None else f"{nm} not labelled" for b, nm in bad)
    up_q, up_s, r1 = _fit_body(lab, upper.label, k, upper.quad.u)
    if up_q is None:
        return None, None, None, None, f"{upper.name} not measurable on slice {k}: {r1}"
    lo_q, lo_s, r2 = _fit_body(lab, lower.label, k, lower.quad.u if lower.quad is not None else None)
    if lo_q is not None:
        lo_ep = _Endplate(lo_q.corners[0], lo_q.corners[1], lo_q.superior)
    elif lower.name == "S1" and lo_s is not None:
        lo_ep = _facing_endplate(lab, lo_s, up_q)
    else:
        lo_ep = None
    if lo_ep is None:
        return None, None, None, None, f"{lower.name} not measurable on slice {k}: {r2}"
    return up_q, up_s, lo_ep, lo_s, None


def _segment(lab: _Labels, upper: _Body | None, lower: _Body | None, up_name: str, lo_name: str,
             body_results: dict[str, VertebraMeasurements]) -> DiscMeasurements:
    name = f"{up_name}/{lo_name}"
    did = DISC_OFFSET + vertebra_id(up_name)
    k = _segment_slice(lab, did, upper, lower)
    if k is None:
        reason = "neither a disc label nor both adjacent bodies"
        return DiscMeasurements(name, up_name, lo_name, did, None, "", **{f: _missing(f, u, reason) for f, u in _DISC_FIELDS},  # type: ignore[arg-type]
                                missing_reason=reason)
    m: dict[str, Measure] = {}
    up_q, up_s, lo_ep, lo_s, body_reason = _segment_bodies(lab, upper, lower, (up_name, lo_name), k)
    fr = None
    if up_q is not None and lo_ep is not None:
        fr = _disc_frame(lab, up_q, lo_ep)
        gaps = [_gap_chord(fr, b, up_s, lo_s) for b in fr.bases()]  # type: ignore[arg-type]
        m.update(_chord_measures(lab, ("anterior", "posterior"), ("ivd_distance_anterior", "ivd_distance_posterior"),
                                 (gaps[0], gaps[2]), k, f"{name} IVD"))
        m.update(_slip(lab, up_q, lo_ep, k, name))
    source, disc_reason, centre, u_mid = "", None, None, None
    heights = ("height_anterior", "height_middle", "height_posterior")
    chords: list = []
    if did in lab.discs:
        mask, disc_reason = lab.piece(did, k)
        if mask is not None:
            disc_s = lab.sampler(mask)
            if fr is not None:
                chords = [_disc_chord(fr, b, disc_s) for b in fr.bases()]
            else:
                dq = _fit_quad(disc_s, lab.points(mask), lab.initial_direction(did, lab.points(mask)))
                chords = list(dq.chords) if dq is not None else []
                disc_reason = None if dq is not None else f"disc shape could not be fitted on slice {k}"
                u_mid = dq.u if dq is not None else None
            if chords:
                source = "disc mask"
    elif fr is not None:
        source = "vertebral bodies"
        chords = [_gap_chord(fr, b, up_s, lo_s) for b in fr.bases()]  # type: ignore[arg-type]
    if chords:
        m.update(_chord_measures(lab, ("Ha", "Hm", "Hp"), heights, chords, k, f"{name} disc"))
        if chords[1] is not None:
            centre = (chords[1][0] + chords[1][1]) / 2
    if fr is not None:
        u_mid = fr.u
    hs = [m.get(f) for f in heights]
    body_hm = [body_results.get(up_name), body_results.get(lo_name)]
    if all(h is not None and h.ok for h in hs) and all(b is not None and b.height_middle.ok for b in body_hm):
        dhi = float(np.mean([h.value for h in hs])) / float(np.mean([b.height_middle.value for b in body_hm]))  # type: ignore[union-attr,misc]
        m["disc_height_index"] = Measure("disc_height_index", dhi, "ratio", k)
    flag = None
    if centre is not None and u_mid is not None:
        m["canal_ap"], flag = _canal(lab, k, centre, u_mid, 100.0, name)
    for f, unit in _DISC_FIELDS:
        if f not in m:
            if f in heights:
                why = disc_reason or body_reason or "not measurable"
            elif f == "disc_height_index":
                why = "needs the three disc heights and both bodies' Hm"
            elif f == "canal_ap":
                why = "disc not measured"
            else:
                why = body_reason or "not measurable"
            m[f] = _missing(f, unit, why, k)
    missing = None if any(x.ok for x in m.values()) else (disc_reason or body_reason or "not measurable")
    return DiscMeasurements(name, up_name, lo_name, did, k, source, **m, canal_stenosis=flag, missing_reason=missing)  # type: ignore[arg-type]


def _pairs(lab: _Labels) -> list[tuple[str, str]]:
    """(upper, lower) names of every segment with both bodies or a disc label."""
    out = set()
    for i in lab.vertebrae:
        for j in _neighbour_ids(lab, i):
            if j > i:
                out.add((VERTEBRA_NAMES[i], VERTEBRA_NAMES[j]))
    for d in lab.discs:
        upper = VERTEBRA_NAMES[d - DISC_OFFSET]
        lower = disc_name(upper).split("/")[1]
        if lower == "S1" and upper == "L5" and 25 in lab.vertebrae:
            continue
        out.add((upper, lower))
    return sorted(out, key=lambda p: vertebra_id(p[0]))


def _lordosis(vertebrae: dict[str, VertebraMeasurements]) -> tuple[Measure, str | None]:
    l1 = vertebrae.get("L1")
    if l1 is None or not l1.superior_endplate_angle.ok:
        return _missing("lordosis", "deg", "L1 superior endplate not measured"), None
    top = l1.superior_endplate_angle
    s1 = vertebrae.get("S1")
    if s1 is not None and s1.superior_endplate_angle.ok:
        bottom, method = s1.superior_endplate_angle, "L1-S1"
    else:
        l5 = vertebrae.get("L5")
        if l5 is None or not l5.inferior_endplate_angle.ok:
            return _missing("lordosis", "deg", "neither the S1 superior nor the L5 inferior endplate is measured"), None
        bottom, method = l5.inferior_endplate_angle, "L1-L5 (S1 not measured)"
    value = float(bottom.value) - float(top.value)  # type: ignore[arg-type]
    return Measure("lordosis", value, "deg", top.slice_index, top.lines + bottom.lines), method


# ---------------------------------------------------------------- public entry point


def _check(scan: Scan, labels: np.ndarray) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim == 2 and scan.shape[0] == 1:
        arr = arr[None]
    if arr.shape != scan.shape:
        raise InputError(f"label map shape {arr.shape} differs from the scan's {scan.shape}: labels must be on the scan's grid")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise InputError("the label map holds non-integer values: expected integer VerSe label ids")
    elif arr.dtype.kind not in "iub":
        raise InputError(f"the label map has dtype {arr.dtype}: expected integer VerSe label ids")
    if arr.size and (arr.min() < 0 or arr.max() > 10_000):
        raise InputError("the label map holds negative or huge values: expected VerSe label ids")
    return arr.astype(np.int32, copy=False)


def measure(scan: Scan, labels: np.ndarray) -> SpineMeasurements:
    """Measure bodies, discs, slips, lordosis and canal from a VerSe label map.

    Parameters
    ----------
    scan : the scan; only its grid and affine are used.
    labels : integer VerSe ids on the scan's canonical grid, shape ``scan.shape`` (a 2D array is
        accepted for a one-slice scan): vertebrae 1-26, discs 100 + upper vertebra, canal 100.

    Returns
    -------
    SpineMeasurements : vertebrae top to bottom, discs, lordosis; missing values carry a reason.

    Raises
    ------
    InputError : the label map is not on the scan's grid or holds no VerSe vertebra or disc ids.
    """
    lab = _Labels(scan, _check(scan, labels))
    if not lab.vertebrae and not lab.discs:
        raise InputError("the label map holds no vertebra or disc labels (VerSe ids 1-26, discs 101-126)")
    bodies: dict[str, _Body] = {}
    for i in lab.vertebrae:  # top to bottom: S1's fallback needs the body above
        above = [bodies[VERTEBRA_NAMES[o]] for o in _neighbour_ids(lab, i) if o < i]
        bodies[VERTEBRA_NAMES[i]] = _body(lab, i, above[0] if above else None)
    vertebrae = _grade_bodies([_vertebra_result(lab, b) for b in bodies.values()], lab)
    by_name = {v.name: v for v in vertebrae}
    discs = tuple(_segment(lab, bodies.get(u), bodies.get(lo), u, lo, by_name) for u, lo in _pairs(lab))
    lordosis, method = _lordosis(by_name)
    log.info("measured %d bodies and %d discs", sum(v.missing_reason is None for v in vertebrae), len(discs))
    return SpineMeasurements(tuple(vertebrae), discs, lordosis, method)


# ---------------------------------------------------------------- table rows


def _fmt(m: Measure | None, digits: int = 2):
    if m is None or m.value is None:
        return ""
    return int(m.value) if m.unit == "grade" else round(float(m.value), digits)


def _reasons(prefix: str, measures: Iterable[Measure]) -> list[str]:
    """``"<prefix> a, b: reason"`` per distinct reason (``"<prefix> all but c: ..."`` when shorter)."""
    measures = list(measures)
    seen: dict[str, list[str]] = {}
    for m in measures:
        if m.missing_reason:
            seen.setdefault(m.missing_reason, []).append(m.name)
    out = []
    for reason, names in seen.items():
        others = [m.name for m in measures if m.name not in names]
        what = ", ".join(names) if len(names) <= len(others) + 1 else ("all but " + ", ".join(others) if others else "all")
        out.append(f"{prefix} {what}: {reason}")
    return out


def _rows(sm: SpineMeasurements) -> list[dict]:
    discs_by_upper = {d.upper: d for d in sm.discs}
    names = [v.name for v in sm.vertebrae] + [d.upper for d in sm.discs if sm.vertebra(d.upper) is None]
    rows = []
    for name in sorted(set(names), key=vertebra_id):
        v, d = sm.vertebra(name), discs_by_upper.get(name)
        row = {c: "" for c in CSV_COLUMNS}
        row["vertebra"] = name
        reasons: list[str] = []
        if v is None:
            reasons.append("body: not labelled")
        else:
            row.update(
                label=v.label, slice_index=v.slice_index if v.slice_index is not None else "",
                height_anterior_mm=_fmt(v.height_anterior), height_middle_mm=_fmt(v.height_middle),
                height_posterior_mm=_fmt(v.height_posterior), depth_ap_mm=_fmt(v.depth_ap),
                superior_endplate_deg=_fmt(v.superior_endplate_angle), inferior_endplate_deg=_fmt(v.inferior_endplate_angle),
                wedge_ratio=_fmt(v.wedge_ratio, 3), biconcavity_ratio=_fmt(v.biconcavity, 3),
                height_loss_percent=_fmt(v.height_loss, 1), genant_grade=_fmt(v.genant_grade),
                canal_ap_mm=_fmt(v.canal_ap), canal_stenosis=v.canal_stenosis or "", notes="; ".join(v.notes),
            )
            if v.centroid_mm is not None:
                row.update(centroid_r_mm=round(v.centroid_mm[0], 2), centroid_a_mm=round(v.centroid_mm[1], 2),
                           centroid_s_mm=round(v.centroid_mm[2], 2))
            if v.missing_reason:
                reasons.append(f"body: {v.missing_reason}")
            else:
                reasons += _reasons("body", [m for m in v.measures() if not (m.name == "canal_ap" and "no canal label" in (m.missing_reason or ""))])
        if d is not None:
            row.update(
                disc=d.name, disc_slice_index=d.slice_index if d.slice_index is not None else "", disc_source=d.source,
                slip_percent=_fmt(d.slip_percent, 1), slip_mm=_fmt(d.slip_mm), meyerding_grade=_fmt(d.meyerding_grade),
                disc_height_anterior_mm=_fmt(d.height_anterior), disc_height_middle_mm=_fmt(d.height_middle),
                disc_height_posterior_mm=_fmt(d.height_posterior), ivd_distance_anterior_mm=_fmt(d.ivd_distance_anterior),
                ivd_distance_posterior_mm=_fmt(d.ivd_distance_posterior), disc_height_index=_fmt(d.disc_height_index, 3),
                disc_canal_ap_mm=_fmt(d.canal_ap), disc_canal_stenosis=d.canal_stenosis or "",
            )
            if d.missing_reason:
                reasons.append(f"disc {d.name}: {d.missing_reason}")
            else:
                reasons += _reasons(f"disc {d.name}", [m for m in d.measures() if not (m.name == "canal_ap" and "no canal label" in (m.missing_reason or ""))])
        row["missing_reason"] = "; ".join(reasons)
        rows.append(row)
    return rows


__all__ = [
    "MeasuredLine", "Measure", "VertebraMeasurements", "DiscMeasurements", "SpineMeasurements", "Measurements",
    "measure", "genant_grade", "meyerding_grade", "canal_stenosis", "CSV_COLUMNS",
]
