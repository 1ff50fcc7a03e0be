"""A synthetic sagittal lumbar-spine MRI phantom with exactly known geometry.

Geometry
--------
Everything is drawn in the patient's mid-sagittal plane, in millimetres, with plane
coordinates ``(a, b)``: ``a`` towards posterior, ``b`` towards inferior (RAS ``y = -a``,
``z = -b``, ``x = 0`` on the central slice). Each vertebral body (and S1, as a body-like
block) is a quadrilateral with corners, in this order,

    SA superior-anterior, SP superior-posterior, IP inferior-posterior, IA inferior-anterior.

In its own frame a body is a symmetric trapezoid: AP depth ``D``, posterior edge height
``Hp = body_height_mm``, anterior edge height ``wedge * Hp``. Bodies are stacked bottom-up
(S1 first): the posterior-inferior corner of a vertebra sits on the normal through the
posterior-superior corner of the vertebra below, translated ``slip_mm`` anteriorly along that
body's superior endplate; the normal distance is solved so that the disc's middle height is
exactly ``disc_height_mm``. The lowest body's centroid is fixed at RAS (0, 0, -110) mm and
``tilt_deg`` turns the whole spine about it, so a slip moves only the vertebrae above it. A
disc is the quadrilateral between the inferior endplate of the vertebra above and the
superior endplate of the vertebra below. The canal (label 100) is a
band ``CANAL_GAP_MM`` behind the posterior walls, ``CANAL_DEPTH_MM`` deep, from S1's
inferior-posterior corner up past the top of the image; its centre holds the conus and
nerve roots (``canal`` intensity) in CSF (``csf`` intensity).

Ground truth (:class:`PhantomTruth`) is computed from these polygons, never from pixels:

* heights (bodies and discs alike): let ``A``/``P`` be the midpoints of the anterior/posterior
  edges (``(SA+IA)/2``, ``(SP+IP)/2``); on the mid-line ``A -> P`` take the points at 10 %, 50 %
  and 90 % of its length; the anterior/middle/posterior height is the length of the chord
  through that point, perpendicular to the mid-line, between the superior and inferior edge
  lines (Schneider-style heights 10 % inward from the anterior/posterior edges);
* AP depth: ``|P - A|``;
* endplate angle: direction of the endplate from its anterior to its posterior corner, in the
  patient's sagittal plane, degrees from the patient's posterior axis, positive when the
  posterior end is superior (S1's superior endplate of a lordotic spine is positive);
* lordosis: S1 superior endplate angle minus L1 superior endplate angle (positive = lordosis);
* slip: ``(SP_below - IP_upper) . e`` with ``e`` the unit vector along the lower body's superior
  endplate (anterior -> posterior), positive = upper body displaced anteriorly; percent = that
  offset / length of the lower body's superior endplate * 100 (Meyerding);
* centroid: area centroid of the polygon, RAS mm, on the central slice (x = 0).

All truth is in patient (RAS) space, so it does not change with ``in_plane_rotation_deg``
(an oblique acquisition: the image grid, not the anatomy, is rotated).

Unlabelled anatomy
------------------
So that the image looks like a sagittal MRI (and a segmentation network trained on real scans
reads it), the image shows more than the labelled structures; none of it enters the label map
or the truth, and none of it moves a labelled structure:

* ``EXTRA_ABOVE`` vertebrae (with their discs) continue the chain above the top labelled body,
  at that body's angle, and the chain is completed down to S1 when the lowest labelled body is
  not S1 (so the sacrum is always there);
* below S1 the rest of the sacrum (``SACRAL_SEGMENTS``: S2-S5, each smaller, the sacrum concave
  in front), fused with S1 into one bone with a faint S1/S2 remnant disc (``REMNANT``), its
  marrow a little darker (``SACRAL_MARROW``); a narrowing sacral canal (fat, a root) and the
  posterior sacral wall behind it (no coccyx);
* bodies have a dark cortical rim (``cortex``, ``CORTEX_MM``) around textured marrow; discs a
  bright nucleus (``disc``, with an intranuclear cleft) fading into a dark annulus
  (``annulus``); dark posterior and anterior longitudinal ligaments; the cord ends at L1
  (conus) and the cauda equina runs below it, lying posteriorly in the CSF;
* on the canal slices (``|x| <= CANAL_HALF_WIDTH_MM``) the dura, epidural fat, laminae and
  spinous processes (with fat between them) behind the canal; on the other body slices
  pedicles and articular pillars with fat and a nerve root in each foramen (posterior elements:
  ``PE_MARROW``);
* soft tissue laid out along the spine: paraspinal muscle (``background``), subcutaneous fat
  (``fat``) under the skin of the back (``SKIN_MM``), air (``air``) behind it; in front
  prevertebral fat, the aorta (flow void, down to L4), bowel loops (fluid, content, gas) in
  mesenteric fat above S1 and the bladder and rectum in the pelvis; the slices beyond the
  bodies show this soft tissue only;
* a smooth multiplicative bias field (receive coil behind the back, slow random variation).
  Each labelled body's marrow gain is then set so that its median signal over its label on the
  central slice is exactly ``body`` before noise (``SACRAL_MARROW * body`` for S1); the
  unlabelled vertebrae and the rest of the sacrum share the gain of the nearest labelled body.

Textures, bowel loops and the bias field are drawn from ``seed`` as well as the noise; the
label map and the truth do not depend on it.

S1's superior endplate angle is set by the geometry alone: ``lordosis_deg / 2 + tilt_deg``. A
segmentation network trained on real scans recognises the sacrum largely by that slope: the
packaged model classes S1 as sacrum at a realistic sacral slope (35-45 degrees, e.g.
``lordosis_deg=50, tilt_deg=15``), but takes a flat S1 (0 degrees for the default straight
spine, 15 for ``lordosis_deg=30``) for a vertebral body; level naming then relies on
localisation's fallback (the bone below the lowest disc is S1).

Rasterisation
-------------
Label voxel ``(k, i, j)`` holds a structure when its centre, the point the affine maps the
index to, lies inside the structure's polygon (``skimage.draw.polygon``) and, across slices,
when ``|x| <= half width`` (bodies and discs ``BODY_HALF_WIDTH_MM``, canal
``CANAL_HALF_WIDTH_MM``). The grid origin is offset by ``GRID_NUDGE_MM`` (recorded exactly in
the affine) so that no pixel centre lies on an edge of round-number geometry; should one
anyway, it goes to the structure painted last (bodies over discs over canal). Counting label
pixels along a line therefore matches a true length within one pixel. Intensities of the
drawn structures are rendered on a ``SUPERSAMPLE`` x supersampled in-plane grid and
block-averaged (partial volume at edges), over soft tissue rendered on the pixel grid; then
Rician noise of ``noise_sigma`` is added.

Field of view
-------------
With ``shape_rc`` the spine (labelled bodies, canal, sacrum S2-S5) is centred in the image,
shifted only as far as needed to keep every labelled body and the canal beside it inside. The
automatic ``shape_rc`` (``None``) reaches ``MARGIN_MM`` above the top labelled body and below
S3 (into the lower sacrum), and in the AP direction from ``ANTERIOR_VIEW_MM`` in front of the
bodies to a little air behind the skin.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from lumbarkit.levels import (
    CANAL_ID,
    disc_id,
    disc_name,
    vertebra_above,
    vertebra_below,
    vertebra_id,
)
from lumbarkit.scan import Scan, ScanMetadata, to_canonical

log = logging.getLogger(__name__)

DEFAULT_VERTEBRAE = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")
DEFAULT_BODY_HEIGHT_MM = {"T10": 22.0, "T11": 22.5, "T12": 23.5, "L1": 25.0, "L2": 26.0, "L3": 27.0, "L4": 27.0, "L5": 26.0, "S1": 28.0}
DEFAULT_BODY_DEPTH_MM = {"T10": 28.0, "T11": 29.0, "T12": 30.0, "L1": 32.0, "L2": 33.0, "L3": 34.0, "L4": 35.0, "L5": 35.0, "S1": 38.0}
DEFAULT_DISC_HEIGHT_MM = {
    "T10/T11": 6.0, "T11/T12": 6.5, "T12/L1": 7.0, "L1/L2": 8.0, "L2/L3": 9.0, "L3/L4": 10.0, "L4/L5": 11.0, "L5/S1": 10.0,
}
# Arbitrary MR signal units (0..~1000), typical contrasts: T2 fluid and fat bright, T1 fluid dark, fat and
# fatty marrow bright. ``disc`` is the nucleus, ``canal`` the cord and nerve roots, ``background`` muscle
# (the soft tissue around the spine), ``cortex`` cortical bone and ligaments.
DEFAULT_INTENSITIES = {
    "T2": {"body": 350.0, "disc": 720.0, "annulus": 200.0, "canal": 300.0, "csf": 900.0, "background": 160.0,
           "fat": 620.0, "cortex": 45.0, "air": 0.0},
    "T1": {"body": 500.0, "disc": 290.0, "annulus": 230.0, "canal": 320.0, "csf": 120.0, "background": 250.0,
           "fat": 800.0, "cortex": 60.0, "air": 0.0},
}
BODY_HALF_WIDTH_MM = 20.0  # lateral half extent of bodies and discs
CANAL_HALF_WIDTH_MM = 8.0  # lateral half extent of the canal
CANAL_GAP_MM = 1.6  # posterior wall -> canal (posterior longitudinal ligament)
CANAL_DEPTH_MM = 15.0  # AP depth of the canal
MARGIN_MM = 20.0  # automatic field of view: margin above the top labelled body and below S3
ANTERIOR_VIEW_MM = 45.0  # automatic field of view: soft tissue shown in front of the bodies
SUPERSAMPLE = 4
GRID_NUDGE_MM = 1e-4
BOTTOM_CENTROID_MM = np.array([0.0, 110.0])  # plane (a, b) of the lowest body's centroid: RAS (0, 0, -110)

EXTRA_ABOVE = 3  # unlabelled vertebrae drawn above the top labelled one
# Below S1: name, AP depth at the superior / inferior endplate and posterior height as fractions of S1's depth and
# height, turn (deg) of the inferior endplate against the superior one, negative = posterior end down (the sacrum is
# concave in front: it runs down and back from S1, then curves down and forward), gap (mm) to the segment above.
SACRAL_SEGMENTS = (
    ("S2", 1.00, 0.76, 0.80, -16.0, 2.0),
    ("S3", 0.76, 0.62, 0.68, -16.0, 1.8),
    ("S4", 0.62, 0.50, 0.58, -14.0, 1.6),
    ("S5", 0.50, 0.40, 0.50, -14.0, 1.5),
)
FUSED = ("S1", "S2", "S3", "S4", "S5")  # drawn as one bone
SACRAL_CANAL_MM = (15.0, 12.0, 9.5, 9.0, 6.5, 6.0, 3.5, 0.5, 0.0)  # sacral canal depth: S1 IP, S2 SP, S2 IP, ... S5 IP
SACRAL_WALL_MM = (7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 5.0, 2.5)  # posterior sacral wall: S1 SP, S1 IP, S2 SP, ... S5 IP
PE_MARROW = 0.65  # marrow signal of posterior elements and the posterior sacrum relative to ``body``
REMNANT = 0.9  # signal of the S1/S2 remnant disc relative to the sacral marrow (a faint line)
SACRAL_MARROW = 0.85  # median signal of S1 relative to ``body`` (real S1 / L3 marrow ratios: about 0.7-1.3)
CORTEX_MM = 1.0  # cortical rim of bodies (posterior elements and the posterior sacral wall: 1.8 mm)
SKIN_MM = {"lumbar": 70.0, "S1": 60.0, "S2": 52.0, "S3": 46.0, "S4": 44.0}  # skin behind the posterior walls
SPINOUS_MM = {"lumbar": (31.0, 15.0, 0.0), "thoracic": (26.0, 11.0, 8.0)}  # length, tip height, tip drop

Point = tuple[float, float, float]


@dataclass(frozen=True)
class VertebraTruth:
    """Ground truth of one vertebral body (or the S1 block), mm and degrees, RAS."""

    name: str
    label: int
    anterior_height_mm: float  # chord 10 % inward from the anterior edge
    middle_height_mm: float  # chord at the middle of the AP mid-line
    posterior_height_mm: float  # chord 10 % inward from the posterior edge
    depth_mm: float  # |P - A|, anterior-edge midpoint to posterior-edge midpoint
    centroid_ras: Point
    superior_endplate_deg: float
    inferior_endplate_deg: float
    corners_ras: tuple[Point, Point, Point, Point]  # SA, SP, IP, IA
    slip_mm: float | None = None  # relative to the vertebra below; None for the lowest
    slip_percent: float | None = None


@dataclass(frozen=True)
class DiscTruth:
    """Ground truth of one disc, mm and degrees, RAS (heights defined as for bodies)."""

    name: str
    label: int
    anterior_height_mm: float
    middle_height_mm: float
    posterior_height_mm: float
    wedge_deg: float  # lower body's superior minus upper body's inferior endplate angle (> 0: taller anteriorly)
    centroid_ras: Point
    corners_ras: tuple[Point, Point, Point, Point]  # upper endplate ant, post; lower endplate post, ant


@dataclass(frozen=True)
class PhantomTruth:
    """Exact geometry of a phantom; see the module docstring for every definition."""

    vertebrae: dict[str, VertebraTruth]
    discs: dict[str, DiscTruth]
    lordosis_deg: float | None  # S1 superior minus L1 superior endplate angle; None if L1 or S1 absent
    tilt_deg: float
    in_plane_rotation_deg: float
    body_slices: tuple[int, ...]  # canonical slice indices holding bodies and discs
    canal_slices: tuple[int, ...]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Phantom:
    """A synthetic scan, its VerSe label map on the same canonical grid, and its truth."""

    scan: Scan
    labels: np.ndarray  # (slices, rows, cols) int32 VerSe ids
    truth: PhantomTruth = field(repr=False)


# ---------------------------------------------------------------- plane geometry helpers


def _rot(theta_deg: float) -> np.ndarray:
    """Rotation whose first column is the posterior axis turned so its angle is ``theta``."""
    t = math.radians(theta_deg)
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, s], [-s, c]])


def _angle(ant: np.ndarray, post: np.ndarray) -> float:
    d = post - ant
    return math.degrees(math.atan2(-d[1], d[0]))


def _chord(q: np.ndarray, n: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> float:
    """Parameter t where ``q + t n`` meets the line through p0, p1."""
    m = np.column_stack([n, -(p1 - p0)])
    t, _ = np.linalg.solve(m, p0 - q)
    return float(t)


def quad_heights(quad: np.ndarray, fractions: Sequence[float] = (0.1, 0.5, 0.9)) -> tuple[float, ...]:
    """Chord heights (mm) of a plane quadrilateral SA, SP, IP, IA at ``fractions`` of its mid-line."""
    sa, sp, ip, ia = quad
    a, p = (sa + ia) / 2, (sp + ip) / 2
    e = (p - a) / np.linalg.norm(p - a)
    n = np.array([-e[1], e[0]])  # towards the inferior edge
    out = []
    for f in fractions:
        q = a + f * (p - a)
        out.append(_chord(q, n, ia, ip) - _chord(q, n, sa, sp))
    return tuple(out)


def _centroid(poly: np.ndarray) -> np.ndarray:
    x, y = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    cross = x * y1 - x1 * y
    area = cross.sum() / 2
    return np.array([((x + x1) * cross).sum(), ((y + y1) * cross).sum()]) / (6 * area)


# ---------------------------------------------------------------- parameters


def _per_name(value, defaults: Mapping[str, float], names: Sequence[str], what: str) -> dict[str, float]:
    if value is None:
        value = {}
    if isinstance(value, (int, float)):
        out = {n: float(value) for n in names}
    else:
        unknown = set(value) - set(names)
        if unknown:
            raise ValueError(f"{what}: unknown names {sorted(unknown)} (phantom has {list(names)})")
        missing = [n for n in names if n not in value and n not in defaults]
        if missing:
            raise ValueError(f"{what}: no default for {missing}; give a value for each")
        out = {n: float(value.get(n, defaults.get(n))) for n in names}
    bad = [n for n, v in out.items() if not (np.isfinite(v) and v > 0)]
    if bad:
        raise ValueError(f"{what} must be positive mm, got {[(n, out[n]) for n in bad]}")
    return out


def _check_chain(vertebrae: Sequence[str]) -> list[str]:
    names = list(vertebrae)
    if len(names) < 2:
        raise ValueError("a phantom needs at least two vertebrae")
    for upper, lower in zip(names, names[1:]):
        vertebra_id(upper)
        if vertebra_below(upper) != lower:
            raise ValueError(f"vertebrae must be contiguous top to bottom: {upper} is not directly above {lower}")
    return names


def _disc_values(value, names: Sequence[str]) -> dict[str, float]:
    discs = [disc_name(u) for u in names[:-1]]
    if isinstance(value, Mapping):  # accept "L4/L5" or the upper vertebra "L4"
        value = {(k if "/" in k else disc_name(k)): v for k, v in value.items()}
    return _per_name(value, DEFAULT_DISC_HEIGHT_MM, discs, "disc_height_mm")


def _level_position(name: str) -> float:
    """Ordinal position along the spine: L1 = 20 ... L5 = 24, S1 = 25."""
    vid = vertebra_id(name)
    return 25.0 if name == "S1" else float(vid)


# ---------------------------------------------------------------- construction



def _extended_chain(names: Sequence[str]) -> list[str]:
    """The labelled chain with ``EXTRA_ABOVE`` vertebrae above it and, if it stops short of S1, the rest down to S1."""
    above: list[str] = []
    top = names[0]
    for _ in range(EXTRA_ABOVE):
        try:
            top = vertebra_above(top)
        except ValueError:
            break
        above.insert(0, top)
    below: list[str] = []
    last = names[-1]
    while last != "S1":
        last = vertebra_below(last)
        below.append(last)
    return above + list(names) + below


def _complete(given: Mapping[str, float], value, defaults: Mapping[str, float], keys: Sequence[str], fallback: Callable[[str], float]) -> dict[str, float]:
    """``given`` (the labelled values) completed for unlabelled ``keys``: the scalar ``value`` if one was given, else defaults."""
    out = dict(given)
    for k in keys:
        if k not in out:
            out[k] = float(value) if isinstance(value, (int, float)) else float(defaults.get(k, fallback(k)))
    return out


def _chain_quads(chain, labelled, heights, depths, wedge, discs, slip, lordosis_deg, tilt_deg) -> dict[str, np.ndarray]:
    """Body quadrilaterals (SA, SP, IP, IA) in plane mm of the whole drawn chain, stacked from the bottom up.

    Vertebrae above the top labelled one keep its angle; the lowest labelled body is the anchor.
    """
    quads: dict[str, np.ndarray] = {}
    first = chain.index(labelled[0])

    def local(name: str) -> np.ndarray:
        hp, d = heights[name], depths[name]
        ha = hp * wedge.get(name, 1.0)
        return np.array([[0, -ha / 2], [d, -hp / 2], [d, hp / 2], [0, ha / 2]], dtype=float)

    def theta(name: str) -> float:
        ref = labelled[0] if chain.index(name) < first else name
        return lordosis_deg * ((_level_position(ref) - 20.0) / 5.0 - 0.5)

    bottom = chain[-1]
    quads[bottom] = local(bottom) @ _rot(theta(bottom)).T
    for upper, lower in zip(chain[-2::-1], chain[:0:-1]):
        low = quads[lower]
        e = (low[1] - low[0]) / np.linalg.norm(low[1] - low[0])
        m = np.array([e[1], -e[0]])  # superior normal of the lower body's superior endplate
        shape = local(upper) @ _rot(theta(upper)).T
        target = discs[disc_name(upper)]

        def placed(s: float) -> np.ndarray:
            return shape + (low[1] + s * m - slip.get(upper, 0.0) * e - shape[2])

        def middle(s: float) -> float:
            up = placed(s)
            return quad_heights(np.array([up[3], up[2], low[1], low[0]]), (0.5,))[0]

        h0, h1 = middle(target), middle(target + 1.0)
        s = target + (target - h0) / (h1 - h0)
        quads[upper] = placed(s)
    # the lowest labelled body is the anchor: its centroid sits at BOTTOM_CENTROID_MM and tilt turns the spine about it
    centre = _centroid(quads[labelled[-1]])
    rot = _rot(tilt_deg)
    return {n: (q - centre) @ rot.T + BOTTOM_CENTROID_MM for n, q in quads.items()}


def _sacral_quads(s1: np.ndarray) -> dict[str, np.ndarray]:
    """S2-S5 hanging below S1 (posterior walls aligned, curving forward)."""
    d1 = float(np.linalg.norm((s1[1] + s1[2] - s1[0] - s1[3]) / 2))
    h1 = float(np.linalg.norm(s1[2] - s1[1]))
    out: dict[str, np.ndarray] = {}
    upper = s1
    for name, f_top, f_bottom, fh, turn, gap in SACRAL_SEGMENTS:
        e = _unit(upper[2] - upper[3])
        n = _perp(e)
        t = math.radians(turn)
        e_inf = math.cos(t) * e - math.sin(t) * n  # inferior endplate, turned by ``turn`` (positive: posterior end up)
        sp = upper[2] + gap * n
        ip = sp + fh * h1 * n
        out[name] = np.array([sp - f_top * d1 * e, sp, ip, ip - f_bottom * d1 * e_inf])
        upper = out[name]
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _perp(e: np.ndarray) -> np.ndarray:
    """Inferior normal of a posterior-pointing direction."""
    return np.array([-e[1], e[0]])


def _frame(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Posterior-wall midpoint, posterior and inferior unit vectors, posterior height of a quadrilateral."""
    a, p = (q[0] + q[3]) / 2, (q[1] + q[2]) / 2
    e = _unit(p - a)
    return p, e, _perp(e), float(np.linalg.norm(q[2] - q[1]))


def _uv(origin: np.ndarray, e: np.ndarray, n: np.ndarray, uv) -> np.ndarray:
    uv = np.asarray(uv, dtype=float)
    return origin + uv[:, :1] * e + uv[:, 1:] * n


def _band(pts: np.ndarray, dirs: np.ndarray, lo, hi) -> np.ndarray:
    """Polygon between the offsets ``lo`` and ``hi`` (mm, scalars or one per point) of a polyline along ``dirs``."""
    lo = np.broadcast_to(np.asarray(lo, dtype=float), (len(pts),))[:, None]
    hi = np.broadcast_to(np.asarray(hi, dtype=float), (len(pts),))[:, None]
    return np.vstack([pts + lo * dirs, (pts + hi * dirs)[::-1]])


def _pieces(band: np.ndarray) -> list[np.ndarray]:
    """A band polygon from :func:`_band` cut into its quadrilaterals (cheaper to rasterise, same union)."""
    k = len(band) // 2
    lo, hi = band[:k], band[k:][::-1]
    return [np.array([lo[i], lo[i + 1], hi[i + 1], hi[i]]) for i in range(k - 1)]


def _tagged(kind: str, band: np.ndarray) -> list[tuple[str, np.ndarray]]:
    return [(kind, q) for q in _pieces(band)]


def _ellipse(centre: np.ndarray, e: np.ndarray, n: np.ndarray, ru: float, rv: float, k: int = 24) -> np.ndarray:
    t = np.linspace(0.0, 2 * math.pi, k, endpoint=False)
    return centre + np.outer(ru * np.cos(t), e) + np.outer(rv * np.sin(t), n)


def _inset(poly: np.ndarray, t: float) -> np.ndarray:
    """The polygon with every edge moved ``t`` mm inwards (consecutive edges intersected)."""
    x, y = poly[:, 0], poly[:, 1]
    sign = 1.0 if np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0 else -1.0
    lines = []
    for i in range(len(poly)):
        d = _unit(poly[(i + 1) % len(poly)] - poly[i])
        lines.append((poly[i] + t * sign * np.array([-d[1], d[0]]), d))
    out = []
    for i in range(len(poly)):
        (pa, da), (pb, db) = lines[i - 1], lines[i]
        m = np.column_stack([da, -db])
        corner = pb
        if abs(np.linalg.det(m)) > 1e-9:
            s, _ = np.linalg.solve(m, pb - pa)
            corner = pa + s * da
        if np.linalg.norm(corner - poly[i]) > 3 * t:  # nearly reversing edges: no long spike
            corner = poly[i] + t * _unit(pb - poly[i] + (pa + da * np.dot(poly[i] - pa, da)) - poly[i])
        out.append(corner)
    return np.array(out)


def _chaikin(pts: np.ndarray, rounds: int = 2) -> np.ndarray:
    for _ in range(rounds):
        q = 0.75 * pts[:-1] + 0.25 * pts[1:]
        r = 0.25 * pts[:-1] + 0.75 * pts[1:]
        pts = np.vstack([pts[:1], np.column_stack([q, r]).reshape(-1, 2), pts[-1:]])
    return pts


def _extend(pts: np.ndarray, length: float = 400.0) -> np.ndarray:
    head = pts[0] + length * _unit(pts[0] - pts[1])
    tail = pts[-1] + length * _unit(pts[-1] - pts[-2])
    return np.vstack([head, pts, tail])


def _polyline_coords(line: np.ndarray, pts: np.ndarray, step: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance (positive posterior of a top-to-bottom polyline) and arc length of the nearest point
    (the polyline resampled every ``step`` mm)."""
    from scipy.spatial import cKDTree

    seg = np.diff(line, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    s = np.arange(0.0, cum[-1] + step, step)
    dense = np.column_stack([np.interp(s, cum, line[:, 0]), np.interp(s, cum, line[:, 1])])
    i = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    tangent = seg[i] / np.maximum(lengths[i], 1e-12)[:, None]
    dist, idx = cKDTree(dense).query(pts)
    diff = pts - dense[idx]
    cross = tangent[idx, 0] * diff[:, 1] - tangent[idx, 1] * diff[:, 0]
    return np.where(cross > 0, -1.0, 1.0) * dist, s[idx]


def _curve_point(line: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Point at arc length ``s`` on a polyline and the unit posterior normal there."""
    seg = np.diff(line, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    i = int(np.clip(np.searchsorted(cum, s) - 1, 0, len(seg) - 1))
    t = (s - cum[i]) / max(lengths[i], 1e-9)
    d = seg[i] / max(lengths[i], 1e-9)
    return line[i] + t * seg[i], np.array([d[1], -d[0]])


def _canal_polygons(quads: Mapping[str, np.ndarray], chain: Sequence[str], labelled: Sequence[str]):
    """Canal polygon along the whole chain (with a superior extension), its core beside the labelled bodies
    (for the field of view), the canal's front polyline and its posterior directions."""
    front, dirs = [], []
    for n in chain:
        q = quads[n]
        e = _unit((q[1] + q[2] - q[0] - q[3]) / 2)
        front += [q[1] + CANAL_GAP_MM * e, q[2] + CANAL_GAP_MM * e]
        dirs += [e, e]
    front, dirs = np.array(front), np.array(dirs)
    up = np.array([dirs[0][1], -dirs[0][0]])  # superior along the top body's axis
    ext = np.vstack([front[:1] + 60.0 * up, front])
    ext_dirs = np.vstack([dirs[:1], dirs])
    i0, i1 = chain.index(labelled[0]), chain.index(labelled[-1])
    core = _band(front[2 * i0 : 2 * i1 + 2], dirs[2 * i0 : 2 * i1 + 2], 0.0, CANAL_DEPTH_MM)
    canal = _band(ext, ext_dirs, 0.0, CANAL_DEPTH_MM)
    return canal, core, ext, ext_dirs


@dataclass
class _Anatomy:
    """Every drawn polygon in plane mm (see the module docstring), and the soft-tissue layout along the spine."""

    bodies: dict[str, np.ndarray]  # whole chain and sacral segments
    owners: dict[str, str]  # drawn body -> labelled body whose marrow gain it shares
    discs: list[np.ndarray]  # every disc of the chain
    remnants: list[np.ndarray]  # remnant of the fused S1/S2 disc
    canal: np.ndarray
    canal_core: np.ndarray
    sacrum: np.ndarray  # outline of the fused S1-S5 (drawn as one bone)
    mid: list[tuple[str, np.ndarray]] = field(default_factory=list)  # canal slices: (kind, polygon) painted in order
    side: list[tuple[str, np.ndarray]] = field(default_factory=list)  # other body slices
    both: list[tuple[str, np.ndarray]] = field(default_factory=list)  # ligaments, on every body slice
    post_curve: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    ant_curve: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    skin_curve: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # the skin of the back, top to bottom
    fat_s: np.ndarray = field(default_factory=lambda: np.zeros(0))  # arc positions on skin_curve ...
    fat_d: np.ndarray = field(default_factory=lambda: np.zeros(0))  # ... subcutaneous fat thickness there
    vessel_end_s: float = 0.0  # arc position on ant_curve where the aorta leaves the midline (L4)
    pelvis_s: float = 0.0  # arc position on ant_curve of S1: bowel loops above, bladder and rectum below
    skin_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # behind the skin (FOV)
    front_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # in front of the bodies (FOV)


def _anatomy(chain: list[str], labelled: Sequence[str], quads: Mapping[str, np.ndarray]) -> _Anatomy:
    sacral = _sacral_quads(quads["S1"])
    bodies = {**{n: quads[n] for n in chain}, **sacral}
    top, bottom = labelled[0], labelled[-1]
    i0, i1 = chain.index(top), chain.index(bottom)
    owners = {n: (top if i < i0 else bottom if i > i1 else n) for i, n in enumerate(chain)}
    owners.update({n: owners["S1"] for n in sacral})
    discs = [np.array([quads[u][3], quads[u][2], quads[lo][1], quads[lo][0]]) for u, lo in zip(chain, chain[1:])]
    up, low = bodies["S1"], bodies["S2"]  # the lower segments fuse completely; bone bridges the S1/S2 remnant's rims
    remnants = [np.array([up[3] + 0.2 * (up[2] - up[3]), up[3] + 0.8 * (up[2] - up[3]),
                          low[0] + 0.8 * (low[1] - low[0]), low[0] + 0.2 * (low[1] - low[0])])]
    canal, core, ext, ext_dirs = _canal_polygons(quads, chain, labelled)
    fused = [bodies[n] for n in FUSED]
    outline = [fused[0][0], *(p for q in fused for p in (q[1], q[2])), *(p for q in fused[::-1] for p in (q[3], q[0]))]
    anat = _Anatomy(bodies, owners, discs, remnants, canal, core, np.array(outline[:-1]))

    def vidx(i: int, which: int) -> int:  # ext index of chain vertebra i's superior (0) / inferior (1) canal corner
        return 1 + 2 * i + which

    i_s1 = chain.index("S1")
    # ---- canal slices: dura and epidural fat, CSF, cord and roots, sacral canal, posterior elements
    mid = anat.mid
    mid.extend(_tagged("ligament", _band(ext, ext_dirs, CANAL_DEPTH_MM, CANAL_DEPTH_MM + 0.7)))
    mid.extend(_tagged("fat", _band(ext, ext_dirs, CANAL_DEPTH_MM + 0.7, CANAL_DEPTH_MM + 2.5)))
    mid.extend(_tagged("csf", canal))
    roots_from = 0
    if "L1" in chain:
        end = vidx(chain.index("L1"), 1)
        lo = np.full(end + 1, 0.22 * CANAL_DEPTH_MM)
        hi = np.full(end + 1, 0.68 * CANAL_DEPTH_MM)
        lo[-1], hi[-1] = 0.5 * CANAL_DEPTH_MM, 0.53 * CANAL_DEPTH_MM  # conus medullaris
        mid.extend(_tagged("roots", _band(ext[: end + 1], ext_dirs[: end + 1], lo, hi)))
        roots_from = vidx(chain.index("L1"), 0)
    stop = vidx(i_s1, 1) + 1
    for lo_f, hi_f in ((0.50, 0.57), (0.64, 0.70), (0.78, 0.84)):  # cauda equina, lying posteriorly
        mid.extend(_tagged("roots", _band(ext[roots_from:stop], ext_dirs[roots_from:stop], lo_f * CANAL_DEPTH_MM, hi_f * CANAL_DEPTH_MM)))
    # sacral canal (fat and a root) and the posterior sacral wall, from S1's inferior corner down to S5
    pts, dirs = [quads["S1"][2]], [_frame(quads["S1"])[1]]
    for n in ("S2", "S3", "S4"):
        e = _frame(sacral[n])[1]
        pts += [sacral[n][1], sacral[n][2]]
        dirs += [e, e]
    pts += [sacral["S5"][1], sacral["S5"][2]]
    dirs += [_frame(sacral["S5"])[1]] * 2
    pts, dirs, depth = np.array(pts), np.array(dirs), np.array(SACRAL_CANAL_MM)
    mid.extend(_tagged("fat", _band(pts, dirs, CANAL_GAP_MM, CANAL_GAP_MM + depth)))
    mid.extend(_tagged("roots", _band(pts, dirs, CANAL_GAP_MM + 0.4 * depth, CANAL_GAP_MM + 0.55 * depth)))
    s1_frame = _frame(quads["S1"])
    plate_pts = np.vstack([quads["S1"][1:2] + CANAL_GAP_MM * s1_frame[1], pts + CANAL_GAP_MM * dirs])
    plate_dirs = np.vstack([dirs[:1], dirs])
    plate_lo = np.concatenate([[CANAL_DEPTH_MM], depth])
    wall = np.array(SACRAL_WALL_MM)
    mid.append(("bone", _band(plate_pts, plate_dirs, plate_lo + 0.3, plate_lo + wall)))
    for upper, lower in zip(chain[:i_s1], chain[1 : i_s1 + 1]):  # fat between the spinous processes
        (pu, eu, nu, _), (pl, el, nl, _) = _frame(quads[upper]), _frame(quads[lower])
        e, nn = _unit(eu + el), _unit(nu + nl)
        centre = (pu + pl) / 2 + (CANAL_GAP_MM + CANAL_DEPTH_MM + 16.0) * e
        mid.append(("interspinous", _ellipse(centre, e, nn, 12.0, 0.25 * float(np.linalg.norm(pl - pu)))))
    for n in chain:
        p, e, nn, h = _frame(quads[n])
        o = p + (CANAL_GAP_MM + CANAL_DEPTH_MM) * e
        if n == "S1":
            length, tip, drop = 17.0, 12.0, 0.0
        else:
            length, tip, drop = SPINOUS_MM["thoracic" if n.startswith(("T", "C")) else "lumbar"]
        top = 0.02 * h + drop
        uv = [(1.5, -0.30 * h), (5.0, -0.28 * h), (9.0, -0.08 * h), (length - 6, top - 1.0), (length, top + 1.5),
              (length + 0.5, top + 0.6 * tip), (length - 3, top + tip), (11.0, 0.45 * h), (4.0, 0.62 * h), (1.5, 0.6 * h)]
        mid.append(("bone", _uv(o, e, nn, uv)))
    mid.extend(_tagged("ligament", _band(ext[1 : vidx(i_s1, 1) + 1] - CANAL_GAP_MM * ext_dirs[1 : vidx(i_s1, 1) + 1],
                                  ext_dirs[1 : vidx(i_s1, 1) + 1], 0.0, CANAL_GAP_MM)))  # posterior longitudinal ligament
    # ---- other body slices: foraminal fat with a nerve root under each pedicle, pedicles and articular pillars
    side = anat.side
    side.extend(_tagged("fat", _band(ext[1:stop] - CANAL_GAP_MM * ext_dirs[1:stop], ext_dirs[1:stop], 0.0, CANAL_GAP_MM + CANAL_DEPTH_MM + 3.0)))
    for n in chain[:i_s1]:
        p, e, nn, h = _frame(quads[n])
        side.append(("roots", _ellipse(p + 8.0 * e + (0.02 * h + 4.5) * nn, e, nn, 3.2, 2.8)))
        uv = [(-3, -0.42 * h), (14, -0.42 * h), (16, -0.58 * h - 2), (26, -0.58 * h - 2), (31, -0.35 * h), (31, 0.55 * h),
              (27, 0.72 * h), (19, 0.72 * h), (14, 0.3 * h), (14, 0.02 * h), (-3, 0.02 * h)]
        side.append(("bone", _uv(p, e, nn, uv)))
    side.append(("bone", _band(plate_pts - CANAL_GAP_MM * plate_dirs, plate_dirs, -2.0, CANAL_GAP_MM + plate_lo + wall)))  # lateral sacrum
    # ---- every body slice: anterior longitudinal ligament
    ant = np.array([p for n in chain for p in (quads[n][0], quads[n][3])])
    ant_dirs = np.array([-_frame(quads[n])[1] for n in chain for _ in range(2)])
    anat.both.extend(_tagged("ligament", _band(ant, ant_dirs, 0.0, 1.2)))

    # ---- soft tissue layout: curves through the posterior / anterior wall midpoints, skin distance along them
    order = [*chain, *sacral]
    post = np.array([(bodies[n][1] + bodies[n][2]) / 2 for n in order])
    front = np.array([(bodies[n][0] + bodies[n][3]) / 2 for n in order])
    anat.post_curve = _extend(_chaikin(post))
    anat.ant_curve = _extend(_chaikin(front))
    # the skin of the back: SKIN_MM behind the posterior walls, closing in over the sacrum; fat thickening over the buttocks
    skin_names = [*chain, "S2", "S3", "S4"]
    skin_pts = np.array([_frame(bodies[n])[0] + SKIN_MM.get(n, SKIN_MM["lumbar"]) * _frame(bodies[n])[1] for n in skin_names])
    anat.skin_curve = _extend(_chaikin(skin_pts))
    marks = ("L1" if "L1" in chain[:i_s1] else chain[0], "S1", "S3", "S4")
    anat.fat_s = np.maximum.accumulate(_polyline_coords(anat.skin_curve, skin_pts[[skin_names.index(n) for n in marks]])[1])
    anat.fat_d = np.array([17.0, 15.0, 20.0, 26.0])
    l4 = bodies["L4"] if "L4" in bodies else bodies[chain[max(i_s1 - 2, 0)]]
    anat.vessel_end_s = float(_polyline_coords(anat.ant_curve, ((l4[0] + l4[3]) / 2)[None])[1][0])
    s1 = bodies["S1"]
    anat.pelvis_s = float(_polyline_coords(anat.ant_curve, ((s1[0] + s1[3]) / 2)[None])[1][0])
    fov = [n for n in order[i0 : i1 + 1]] + ["S2", "S3", "S4", "S5"]
    anat.skin_points = np.array([_frame(bodies[n])[0] + (SKIN_MM.get(n, SKIN_MM["lumbar"]) + 15.0) * _frame(bodies[n])[1] for n in fov])
    anat.front_points = np.array([(bodies[n][0] + bodies[n][3]) / 2 - ANTERIOR_VIEW_MM * _frame(bodies[n])[1] for n in fov])
    return anat


def _truth_for(names, quads, to_ras) -> tuple[dict, dict, float | None]:
    vertebrae: dict[str, VertebraTruth] = {}
    discs: dict[str, DiscTruth] = {}
    for idx, name in enumerate(names):
        q = quads[name]
        ha, hm, hp = quad_heights(q)
        a, p = (q[0] + q[3]) / 2, (q[1] + q[2]) / 2
        slip_mm = slip_pct = None
        if idx + 1 < len(names):
            low = quads[names[idx + 1]]
            length = float(np.linalg.norm(low[1] - low[0]))
            slip_mm = float((low[1] - q[2]) @ ((low[1] - low[0]) / length))
            slip_pct = 100.0 * slip_mm / length
            dq = np.array([q[3], q[2], low[1], low[0]])
            dha, dhm, dhp = quad_heights(dq)
            if min(dha, dhm, dhp) <= 0:
                raise ValueError(f"disc {disc_name(name)} collapses (heights {dha:.1f}, {dhm:.1f}, {dhp:.1f} mm): reduce slip or angles")
            dname = disc_name(name)
            discs[dname] = DiscTruth(
                name=dname, label=disc_id(dname), anterior_height_mm=dha, middle_height_mm=dhm, posterior_height_mm=dhp,
                wedge_deg=_angle(low[0], low[1]) - _angle(q[3], q[2]), centroid_ras=to_ras(_centroid(dq)),
                corners_ras=tuple(to_ras(c) for c in dq),  # type: ignore[arg-type]
            )
        vertebrae[name] = VertebraTruth(
            name=name, label=vertebra_id(name), anterior_height_mm=ha, middle_height_mm=hm, posterior_height_mm=hp,
            depth_mm=float(np.linalg.norm(p - a)), centroid_ras=to_ras(_centroid(q)),
            superior_endplate_deg=_angle(q[0], q[1]), inferior_endplate_deg=_angle(q[3], q[2]),
            corners_ras=tuple(to_ras(c) for c in q), slip_mm=slip_mm, slip_percent=slip_pct,  # type: ignore[arg-type]
        )
    lordosis = None
    if "L1" in vertebrae and "S1" in vertebrae:
        lordosis = vertebrae["S1"].superior_endplate_deg - vertebrae["L1"].superior_endplate_deg
    return vertebrae, discs, lordosis


def _raster(polys: Sequence[tuple[np.ndarray, int]], shape: tuple[int, int]) -> np.ndarray:
    """Paint (polygon in (row, col) pixel coordinates, value) in order; pixel centres inside or on the edge."""
    from skimage.draw import polygon

    out = np.zeros(shape, dtype=np.int32)
    for poly, value in polys:
        rr, cc = polygon(poly[:, 0], poly[:, 1], shape)
        out[rr, cc] = value
    return out



# ---------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _Grid:
    """In-plane image grid: pixel (i, j) centre = origin + i*dr*r_hat + j*dc*c_hat (plane mm)."""

    origin: np.ndarray
    r_hat: np.ndarray
    c_hat: np.ndarray
    dr: float
    dc: float
    rows: int
    cols: int

    def to_px(self, poly: np.ndarray, factor: int = 1) -> np.ndarray:
        rel = poly - self.origin
        ij = np.column_stack([rel @ self.r_hat / self.dr, rel @ self.c_hat / self.dc])
        return (ij + 0.5) * factor - 0.5

    def plane(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Plane mm of (fractional) pixel coordinates."""
        return self.origin + np.multiply.outer(i * self.dr, self.r_hat) + np.multiply.outer(j * self.dc, self.c_hat)


class _Canvas:
    """Supersampled painting of the drawn structures: a value per fine pixel, marrow kept apart (with the
    labelled body whose gain it takes) so that the body gains can be solved after block averaging."""

    def __init__(self, grid: _Grid, factor: int):
        self.grid, self.f = grid, factor
        shape = (grid.rows * factor, grid.cols * factor)
        self.val = np.zeros(shape)
        self.marrow = np.zeros(shape)
        self.hit = np.zeros(shape, dtype=bool)
        self.owner = np.zeros(shape, dtype=np.int16)

    def paint(self, poly: np.ndarray, value, tex: np.ndarray | None = None, owner: int = 0) -> None:
        from skimage.draw import polygon

        p = self.grid.to_px(poly, self.f)
        rr, cc = polygon(p[:, 0], p[:, 1], self.val.shape)
        if rr.size == 0:
            return
        if callable(value):
            v = value(self.grid.plane((rr + 0.5) / self.f - 0.5, (cc + 0.5) / self.f - 0.5))
        else:
            v = np.full(rr.shape, float(value))
        if tex is not None:
            v = v * tex[rr // self.f, cc // self.f]
        self.hit[rr, cc] = True
        self.owner[rr, cc] = owner
        if owner:
            self.marrow[rr, cc], self.val[rr, cc] = v, 0.0
        else:
            self.val[rr, cc], self.marrow[rr, cc] = v, 0.0

    def bone(self, poly: np.ndarray, cortex: float, marrow: float, tex: np.ndarray, thickness: float, owner: int = 0) -> None:
        self.paint(poly, cortex)
        self.paint(_inset(poly, thickness), marrow, tex, owner)

    def reduce(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        r, c, f = self.grid.rows, self.grid.cols, self.f

        def mean(x: np.ndarray) -> np.ndarray:
            return x.reshape(r, f, c, f).mean(axis=(1, 3))

        return mean(self.hit.astype(np.float64)), mean(self.val), mean(self.marrow), self.owner.reshape(r, f, c, f).max(axis=(1, 3))


def _disc_field(q: np.ndarray, pts: np.ndarray, nucleus: float, annulus: float) -> np.ndarray:
    """Disc signal: a bright nucleus (slightly posterior, with an intranuclear cleft) fading into the annulus."""
    a, p = (q[0] + q[3]) / 2, (q[1] + q[2]) / 2
    length = float(np.linalg.norm(p - a))
    e = (p - a) / length
    n = _perp(e)
    t = ((pts - a) @ e) / length
    sup = q[0] + t[:, None] * (q[1] - q[0])
    inf = q[3] + t[:, None] * (q[2] - q[3])
    v = ((pts - sup) @ n) / np.maximum((inf - sup) @ n, 1e-6)
    uu = (2 * t - 1 - 0.06) / 0.86
    vv = (2 * v - 1) / 0.92
    w = np.clip((1 - (np.abs(uu) ** 3 + vv**2)) / 0.35, 0.0, 1.0)
    w = w * w * (3 - 2 * w)
    cleft = 1 - 0.3 * np.exp(-((vv * 0.92 / 0.08) ** 2)) * (np.abs(uu) < 0.75)
    return annulus + (nucleus - annulus) * w * cleft


def _solve_gain(other: np.ndarray, marrow: np.ndarray, target: float) -> float:
    """Gain g >= 0 with median(other + g * marrow) == target (the median grows with g)."""
    from scipy.optimize import brentq

    if not (marrow > 0).any():
        return 1.0

    def excess(g: float) -> float:
        return float(np.median(other + g * marrow)) - target

    if excess(0.0) >= 0:
        return 0.0
    hi = 1.0
    while excess(hi) < 0 and hi < 1e6:
        hi *= 2.0
    return hi if excess(hi) < 0 else float(brentq(excess, 0.0, hi))


def _abdomen(grid: _Grid, pts: np.ndarray, s_range: tuple[float, float], anat: _Anatomy, v: Mapping[str, float],
             rng: np.random.Generator, tex: np.ndarray) -> np.ndarray:
    """In front of the spine, (rows, cols): bowel loops (fluid, content, gas, each with a wall) in mesenteric fat
    above S1; in the pelvis the bladder and the rectum (along the sacrum) in fat."""
    out = (0.3 * v["fat"] + 0.7 * v["background"]) * tex
    pts = pts.reshape(grid.rows, grid.cols, 2)
    px = min(grid.dr, grid.dc)

    def blob(centre, ru, rv, ang, content, wall, wobble_max=0.15):
        i, j = grid.to_px(centre[None])[0]
        reach = (max(ru, rv) * (1 + 3 * wobble_max) + 2 * px) / px
        i0, i1 = max(int(i - reach), 0), min(int(i + reach) + 2, grid.rows)
        j0, j1 = max(int(j - reach), 0), min(int(j + reach) + 2, grid.cols)
        if i0 >= i1 or j0 >= j1:
            return
        rel = pts[i0:i1, j0:j1] - centre
        e = np.array([math.cos(ang), math.sin(ang)])
        u, w = rel @ e, rel @ _perp(e)
        theta = np.arctan2(w / rv, u / ru)
        amps, phases = rng.uniform(0.0, wobble_max, 3), rng.uniform(0, 2 * math.pi, 3)
        wobble = 1 + sum(a * np.cos(m * theta + p) for a, m, p in zip(amps, (2, 3, 5), phases))
        q = np.sqrt((u / ru) ** 2 + (w / rv) ** 2) / wobble
        rmin = min(ru, rv)
        w_out = np.clip((1 - q) * rmin / px + 0.5, 0.0, 1.0)
        w_in = np.clip(((1 - q) * rmin - 1.5) / px + 0.5, 0.0, 1.0)
        win = out[i0:i1, j0:j1]
        out[i0:i1, j0:j1] = win * (1 - w_out) + wall * (w_out - w_in) + content * w_in * tex[i0:i1, j0:j1]

    wall = 1.1 * v["background"]
    lo, hi = s_range[0], min(s_range[1], anat.pelvis_s - 10.0)
    for _ in range(80 if hi > lo else 0):
        c, nrm = _curve_point(anat.ant_curve, rng.uniform(lo, hi))
        kind = rng.choice(3, p=[0.4, 0.3, 0.3])
        content = (0.85 * v["csf"], v["background"] * rng.uniform(1.0, 1.4), v["air"] + 0.1 * v["background"])[kind]
        blob(c - rng.uniform(30.0, 170.0) * nrm, rng.uniform(7.0, 17.0), rng.uniform(5.0, 12.0), rng.uniform(0.0, math.pi), content, wall)
    # pelvis: the bladder (urine) well in front, the rectum (gas and faeces) lying on the lower sacrum
    c, nrm = _curve_point(anat.ant_curve, anat.pelvis_s + 70.0)
    blob(c - 75.0 * nrm, 42.0, 30.0, rng.uniform(-0.3, 0.3), 0.95 * v["csf"], 0.8 * v["background"], 0.05)
    for k in range(4):
        c, nrm = _curve_point(anat.ant_curve, anat.pelvis_s + 35.0 + 18.0 * k)
        content = v["air"] + 0.1 * v["background"] if rng.uniform() < 0.5 else v["background"] * rng.uniform(1.2, 1.8)
        blob(c - rng.uniform(16.0, 22.0) * nrm, 11.0, 8.0, rng.uniform(0.0, math.pi), content, wall)
    return out


def _render(anat: _Anatomy, grid: _Grid, v: Mapping[str, float], rng: np.random.Generator, labels_full: np.ndarray,
            labelled: Sequence[str], side: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Noise-free images of a canal slice, a body slice beside the canal (if ``side``) and a slice beyond the bodies."""
    from scipy.ndimage import gaussian_filter

    rows, cols = grid.rows, grid.cols
    ii, jj = np.meshgrid(np.arange(rows, dtype=float), np.arange(cols, dtype=float), indexing="ij")
    pts = grid.plane(ii.ravel(), jj.ravel())
    px = min(grid.dr, grid.dc)

    def noise(sigma_r: float, sigma_c: float | None = None) -> np.ndarray:
        sc = sigma_r if sigma_c is None else sigma_c
        z = gaussian_filter(rng.standard_normal((rows, cols)), (sigma_r / grid.dr, sc / grid.dc), mode="reflect")
        return z / max(float(z.std()), 1e-12)

    tex_marrow = 1 + 0.08 * noise(0.7) + 0.05 * noise(3.0)
    tex_muscle = 1 + 0.10 * noise(2.5, 0.6) + 0.06 * noise(6.0)
    tex_fat = 1 + 0.05 * noise(1.0)
    tex_abd = 1 + 0.12 * noise(2.0)
    tex_vessel = 1 + 0.25 * noise(3.0)

    # ---- soft tissue on the pixel grid
    def step(x: np.ndarray) -> np.ndarray:
        return np.clip(x / px + 0.5, 0.0, 1.0)

    d, _ = _polyline_coords(anat.post_curve, pts)
    da, sa = _polyline_coords(anat.ant_curve, pts)
    dant = -da
    ph = rng.uniform(0.0, 2 * math.pi, 2)
    ds, ss = _polyline_coords(anat.skin_curve, pts)  # positive outside the body
    ds = ds - 3.0 * np.sin(ss / 41.0 + ph[0])
    fat_t = np.interp(ss, anat.fat_s, anat.fat_d) + 2.0 * np.sin(ss / 29.0 + ph[1])
    muscle = v["background"] * tex_muscle.ravel()
    fat = v["fat"] * tex_fat.ravel()
    w1, w2, w3 = step(ds + fat_t), step(ds), step(ds - 1.8)
    post = muscle * (1 - w1) + fat * (w1 - w2) + 0.5 * (v["fat"] + v["background"]) * (w2 - w3) + v["air"] * w3
    abdomen = _abdomen(grid, pts, (float(sa.min()), float(sa.max())), anat, v, rng, tex_abd).ravel()
    inner, outer = step(dant - 3.5), step(dant - 20.0)
    wv = (inner - outer) * np.clip((anat.vessel_end_s - sa) / 10.0, 0.0, 1.0)
    vessel = 1.4 * v["cortex"] * tex_vessel.ravel()
    ant = fat * (1 - inner) + vessel * wv + abdomen * (inner - wv)
    wp, wa = step(d), step(dant)
    bg = (wp * post + wa * ant + np.clip(1 - wp - wa, 0.0, 1.0) * muscle).reshape(rows, cols)

    # ---- bias field: receive coil behind the back, slow random variation
    k = rng.normal(size=(3, 2))
    k = k / np.linalg.norm(k, axis=1, keepdims=True) * (2 * math.pi / rng.uniform(180.0, 320.0, size=(3, 1)))
    slow = sum(0.07 * np.cos(pts @ k[i] + rng.uniform(0.0, 2 * math.pi)) for i in range(3))

    def coil(x):
        return 0.35 + 0.75 / (1 + np.exp(-(x + 15.0) / 30.0))

    bias = (np.exp(slow) * coil(d) / coil(-17.0)).reshape(rows, cols)

    # ---- supersampled structures
    owner_id = {n: labelled.index(o) + 1 for n, o in anat.owners.items()}

    def draw(items) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        cv = _Canvas(grid, SUPERSAMPLE)
        for kind, poly in items:
            if kind == "bone":
                cv.bone(poly, v["cortex"], PE_MARROW * v["body"], tex_marrow, 1.8)
            elif kind == "fat":
                cv.paint(poly, v["fat"], tex_fat)
            elif kind == "interspinous":
                cv.paint(poly, 0.6 * v["fat"] + 0.4 * v["background"], tex_muscle)
            elif kind == "ligament":
                cv.paint(poly, v["cortex"])
            elif kind == "csf":
                cv.paint(poly, v["csf"])
            elif kind == "roots":
                cv.paint(poly, v["canal"])
        for q in anat.discs:
            cv.paint(q, lambda p, q=q: _disc_field(q, p, v["disc"], v["annulus"]))
        cv.bone(anat.sacrum, v["cortex"], v["body"], tex_marrow, CORTEX_MM, owner_id["S1"])
        for q in anat.remnants:
            cv.paint(q, REMNANT * SACRAL_MARROW * v["body"])
        for name, q in anat.bodies.items():
            if name not in FUSED:
                cv.bone(q, v["cortex"], v["body"], tex_marrow, CORTEX_MM, owner_id[name])
        return cv.reduce()

    def compose(parts, gains: np.ndarray) -> np.ndarray:
        hit, val, marrow, owner = parts
        return bias * (bg * (1 - hit) + val + gains[owner] * marrow)

    full = draw(anat.mid + anat.both)
    # marrow gains: every labelled body's median over its label on a canal slice is exactly ``body``
    hit, val, marrow, owner = full
    base, mb = bias * (bg * (1 - hit) + val), bias * marrow
    gains = np.ones(len(labelled) + 1)
    for idx, name in enumerate(labelled, 1):
        m = labels_full == vertebra_id(name)
        if m.any():
            own = owner[m] == idx
            target = v["body"] * (SACRAL_MARROW if name == "S1" else 1.0)
            gains[idx] = _solve_gain(base[m] + np.where(own, 0.0, mb[m]), np.where(own, mb[m], 0.0), target)
    img_full = compose(full, gains)
    img_side = compose(draw(anat.side + anat.both), gains) if side else None
    return img_full, img_side, bias * bg


def make_phantom(
    *,
    spacing_mm: Sequence[float] = (3.0, 0.8, 0.8),
    n_slices: int = 15,
    shape_rc: tuple[int, int] | None = None,
    vertebrae: Sequence[str] = DEFAULT_VERTEBRAE,
    body_height_mm: Mapping[str, float] | float | None = None,
    body_depth_mm: Mapping[str, float] | float | None = None,
    wedge: Mapping[str, float] | None = None,
    disc_height_mm: Mapping[str, float] | float | None = None,
    slip_mm: Mapping[str, float] | None = None,
    tilt_deg: float = 0.0,
    lordosis_deg: float = 0.0,
    in_plane_rotation_deg: float = 0.0,
    sequence: str = "T2",
    intensities: Mapping[str, float] | None = None,
    noise_sigma: float = 20.0,
    seed: int = 0,
) -> Phantom:
    """Build a sagittal lumbar-spine phantom with exactly known geometry.

    Parameters
    ----------
    spacing_mm : voxel size (slice, row, col) in mm.
    n_slices : number of sagittal slices; the central slice ``n_slices // 2`` is the mid-sagittal plane (x = 0).
    shape_rc : in-plane (rows, cols); ``None`` reaches from ``MARGIN_MM`` above the spine into the lower sacrum and
        from ``ANTERIOR_VIEW_MM`` in front of the bodies to behind the skin. The spine is centred (module docstring).
    vertebrae : contiguous names top to bottom (T10 ... L5, S1) that are labelled and described by the truth;
        the image also shows vertebrae above them and the sacrum below.
    body_height_mm : posterior edge height, one value for all or per name (defaults: typical adult).
    body_depth_mm : AP depth (anterior to posterior edge), one value or per name.
    wedge : per name, anterior / posterior edge height ratio (0.7 = anterior wedge compression).
    disc_height_mm : middle disc height, one value or per disc (``"L4/L5"`` or upper vertebra ``"L4"``).
    slip_mm : per name, anterior translation (mm) of that vertebra, and all above it, relative to the one below.
    tilt_deg : rotation of the whole spine in the sagittal plane (endplate angles all increase by it).
    lordosis_deg : bodies rotate progressively, from -lordosis/2 at L1 to +lordosis/2 at S1 (linear in level).
    in_plane_rotation_deg : oblique acquisition: the image grid is rotated by this angle about the left-right
        axis; anatomy and truth (RAS) are unchanged, the affine carries the rotation.
    sequence : "T2" or "T1", picks default intensities; ``intensities`` overrides keys ``body`` (median marrow
        signal of every body), ``disc`` (nucleus), ``annulus``, ``canal`` (cord and nerve roots), ``csf``,
        ``background`` (muscle), ``fat``, ``cortex`` (cortical bone, ligaments), ``air``.
    noise_sigma : Rician noise sigma in signal units (0 = noise free).
    seed : seed of the noise, the tissue textures, the bowel loops and the bias field; equal arguments give
        identical phantoms, and the labels and truth do not depend on it.
    """
    spacing = tuple(float(s) for s in spacing_mm)
    if len(spacing) != 3 or not all(np.isfinite(spacing)) or min(spacing) <= 0:
        raise ValueError(f"spacing_mm must be three positive numbers (slice, row, col), got {spacing_mm}")
    if int(n_slices) < 1:
        raise ValueError("n_slices must be >= 1")
    if sequence not in DEFAULT_INTENSITIES:
        raise ValueError(f"sequence must be one of {sorted(DEFAULT_INTENSITIES)}, got {sequence!r}")
    values = dict(DEFAULT_INTENSITIES[sequence])
    unknown = set(intensities or {}) - set(values)
    if unknown:
        raise ValueError(f"unknown intensity keys {sorted(unknown)}; use {sorted(values)}")
    values.update({k: float(v) for k, v in (intensities or {}).items()})
    if noise_sigma < 0:
        raise ValueError("noise_sigma must be >= 0")
    names = _check_chain(vertebrae)
    heights = _per_name(body_height_mm, DEFAULT_BODY_HEIGHT_MM, names, "body_height_mm")
    depths = _per_name(body_depth_mm, DEFAULT_BODY_DEPTH_MM, names, "body_depth_mm")
    wedges = {n: float(v) for n, v in (wedge or {}).items()}
    slips = {n: float(v) for n, v in (slip_mm or {}).items()}
    for what, table in (("wedge", wedges), ("slip_mm", slips)):
        if set(table) - set(names):
            raise ValueError(f"{what}: unknown names {sorted(set(table) - set(names))}")
    if any(not 0.1 <= v <= 2.0 for v in wedges.values()):
        raise ValueError(f"wedge ratios must lie in 0.1..2.0, got {wedges}")
    if names[-1] in slips:
        raise ValueError(f"slip_mm: {names[-1]} is the lowest vertebra, it has nothing below to slip on")
    discs = _disc_values(disc_height_mm, names)

    # the drawn chain: unlabelled vertebrae above, and down to S1; they take defaults (or the one value given for all)
    chain = _extended_chain(names)
    thoracic = ("T", "C")
    heights = _complete(heights, body_height_mm, DEFAULT_BODY_HEIGHT_MM, chain,
                        lambda n: DEFAULT_BODY_HEIGHT_MM["T10" if n.startswith(thoracic) else "L5"])
    depths = _complete(depths, body_depth_mm, DEFAULT_BODY_DEPTH_MM, chain,
                       lambda n: DEFAULT_BODY_DEPTH_MM["T10" if n.startswith(thoracic) else "L5"])
    discs = _complete(discs, disc_height_mm, DEFAULT_DISC_HEIGHT_MM, [disc_name(u) for u in chain[:-1]], lambda n: 5.5)
    all_quads = _chain_quads(chain, names, heights, depths, wedges, discs, slips, float(lordosis_deg), float(tilt_deg))
    quads = {n: all_quads[n] for n in names}
    anat = _anatomy(chain, names, all_quads)
    disc_quads = {disc_name(u): np.array([quads[u][3], quads[u][2], quads[lo][1], quads[lo][0]]) for u, lo in zip(names, names[1:])}

    # image grid: pixel (i, j) centre = origin + i*dr*r_hat + j*dc*c_hat (plane mm)
    phi = math.radians(float(in_plane_rotation_deg))
    c_hat = np.array([math.cos(phi), math.sin(phi)])
    r_hat = np.array([-math.sin(phi), math.cos(phi)])
    _, dr, dc = spacing
    core = np.vstack([*quads.values(), anat.canal_core])  # must be inside the image
    spine = np.vstack([core, *(anat.bodies[n] for n in ("S2", "S3", "S4", "S5"))])  # centred in the image
    rr, cc = core @ r_hat, core @ c_hat
    sr, sc = spine @ r_hat, spine @ c_hat
    if shape_rc is None:
        tall = np.vstack([core, anat.bodies["S2"], anat.bodies["S3"]]) @ r_hat  # down into the lower sacrum
        wide = np.vstack([spine, anat.skin_points, anat.front_points]) @ c_hat
        rows = int(math.ceil((tall.max() - tall.min() + 2 * MARGIN_MM) / dr)) + 1
        cols = int(math.ceil((wide.max() - wide.min()) / dc)) + 1
        r_mid, c_mid = (tall.max() + tall.min()) / 2, (wide.max() + wide.min()) / 2
    else:
        rows, cols = (int(v) for v in shape_rc)
        if (rows - 1) * dr < rr.max() - rr.min() or (cols - 1) * dc < cc.max() - cc.min():
            need = (int(math.ceil((rr.max() - rr.min()) / dr)) + 1, int(math.ceil((cc.max() - cc.min()) / dc)) + 1)
            raise ValueError(f"shape_rc {shape_rc} is too small for this spine (needs at least {need})")
        r_mid, c_mid = (sr.max() + sr.min()) / 2, (sc.max() + sc.min()) / 2
    span_r, span_c = (rows - 1) * dr, (cols - 1) * dc
    r0 = float(np.clip(r_mid - span_r / 2, rr.max() - span_r, rr.min()))
    c0 = float(np.clip(c_mid - span_c / 2, cc.max() - span_c, cc.min()))
    # The tiny offset (exact in the affine) keeps pixel centres off polygon edges of round-number geometry,
    # so shared edges never hand a whole row of pixels to the structure painted last.
    origin = (r0 + GRID_NUDGE_MM) * r_hat + (c0 + GRID_NUDGE_MM) * c_hat
    grid = _Grid(origin, r_hat, c_hat, dr, dc, rows, cols)

    bodies = [(grid.to_px(quads[n]), vertebra_id(n)) for n in names]
    disc_polys = [(grid.to_px(q), disc_id(d)) for d, q in disc_quads.items()]
    labels_full = _raster([(grid.to_px(anat.canal), CANAL_ID), *disc_polys, *bodies], (rows, cols))
    labels_side = np.where(labels_full == CANAL_ID, 0, labels_full)

    sk = spacing[0]
    mid = int(n_slices) // 2
    xs = (mid - np.arange(int(n_slices))) * sk  # RAS x of each canonical slice (towards left = -x)
    has_side = bool(np.any((np.abs(xs) > CANAL_HALF_WIDTH_MM) & (np.abs(xs) <= BODY_HALF_WIDTH_MM)))
    img_full, img_side, img_none = _render(anat, grid, values, np.random.default_rng((int(seed), 1)), labels_full, names, has_side)
    image = np.empty((int(n_slices), rows, cols), dtype=np.float64)
    labels = np.zeros((int(n_slices), rows, cols), dtype=np.int32)
    body_slices, canal_slices = [], []
    for k, x in enumerate(xs):
        if abs(x) <= CANAL_HALF_WIDTH_MM:
            image[k], labels[k] = img_full, labels_full
            canal_slices.append(k)
            body_slices.append(k)
        elif abs(x) <= BODY_HALF_WIDTH_MM:
            image[k], labels[k] = img_side, labels_side
            body_slices.append(k)
        else:
            image[k] = img_none
    if noise_sigma > 0:
        rng = np.random.default_rng(seed)
        real = image + rng.normal(0.0, noise_sigma, image.shape)
        imag = rng.normal(0.0, noise_sigma, image.shape)
        image = np.hypot(real, imag)

    affine = np.eye(4)
    affine[:3, 0] = (-sk, 0.0, 0.0)
    affine[:3, 1] = (0.0, -dr * r_hat[0], -dr * r_hat[1])
    affine[:3, 2] = (0.0, -dc * c_hat[0], -dc * c_hat[1])
    affine[:3, 3] = (mid * sk, -origin[0], -origin[1])
    meta = ScanMetadata(
        modality="MR", sequence=sequence, series_description=f"lumbarkit phantom {sequence} sagittal",
        manufacturer="lumbarkit synthetic", source_format="synthetic",
    )
    scan = Scan.from_array(image.astype(np.float32), affine, meta)
    canon_labels, _ = to_canonical(labels, affine)
    if scan.array.shape != tuple(labels.shape):  # |rotation| > 45 deg swapped rows and columns
        log.info("in-plane rotation %.1f deg swapped the row and column axes", in_plane_rotation_deg)

    def to_ras(p: np.ndarray) -> Point:
        return (0.0, float(-p[0]), float(-p[1]))

    vert_truth, disc_truth, lordosis = _truth_for(names, quads, to_ras)
    truth = PhantomTruth(
        vertebrae=vert_truth, discs=disc_truth, lordosis_deg=lordosis, tilt_deg=float(tilt_deg),
        in_plane_rotation_deg=float(in_plane_rotation_deg), body_slices=tuple(body_slices), canal_slices=tuple(canal_slices),
    )
    log.debug("phantom %s, %d vertebrae, lordosis %s", scan, len(names), lordosis)
    return Phantom(scan=scan, labels=np.ascontiguousarray(canon_labels.astype(np.int32)), truth=truth)


# ---------------------------------------------------------------- writing


def _storage(array: np.ndarray, affine: np.ndarray, axcodes: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Re-store a canonical array in other axis codes (e.g. ``"RAS"``), adjusting the affine."""
    if not axcodes:
        return array, affine
    import nibabel.orientations as nio

    transform = nio.ornt_transform(nio.io_orientation(affine), nio.axcodes2ornt(tuple(axcodes)))
    return nio.apply_orientation(array, transform), affine @ nio.inv_ornt_aff(transform, array.shape)


def write_phantom(
    phantom: Phantom,
    folder: str | Path,
    fmt: str = "dicom",
    patient: Mapping[str, str] | None = None,
    *,
    name: str = "phantom",
    axcodes: str | None = None,
) -> dict[str, Path]:
    """Write a phantom's image and its label map into ``folder``.

    Parameters
    ----------
    fmt : ``"dicom"`` (series in ``<name>_dicom/`` via :func:`lumbarkit.io.dicom.write_dicom_series`),
        ``"nifti"`` (``<name>_image.nii.gz``), ``"mha"`` or ``"nrrd"``.
    patient : passed to the DICOM writer (ignored for volume formats, which hold no patient fields).
    axcodes : volume formats only: store the arrays in these axis codes (e.g. ``"RAS"``) instead of
        the canonical ``"LIP"``, to exercise readers; the geometry is unchanged.

    Returns ``{"image": path, "label": path}``; the label map is always ``<name>_label.nii.gz``.
    """
    from lumbarkit.io.volume import write_itk, write_nifti

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    scan = phantom.scan
    if fmt == "dicom":
        try:
            from lumbarkit.io.dicom import write_dicom_series
        except ImportError as exc:
            raise RuntimeError("DICOM writing needs lumbarkit.io.dicom.write_dicom_series, not available in this build") from exc
        image = out / f"{name}_dicom"
        write_dicom_series(scan, image, series_description=scan.metadata.series_description, patient=patient)
    elif fmt in ("nifti", "mha", "nrrd"):
        if patient:
            log.debug("patient fields are ignored for %s output", fmt)
        array, affine = _storage(scan.array, scan.affine, axcodes)
        if fmt == "nifti":
            image = write_nifti(array, affine, out / f"{name}_image.nii.gz")
        else:
            image = write_itk(array, affine, out / f"{name}_image.{fmt}")
    else:
        raise ValueError(f"fmt must be 'dicom', 'nifti', 'mha' or 'nrrd', got {fmt!r}")
    lab_array, lab_affine = _storage(phantom.labels.astype(np.int16), scan.affine, axcodes if fmt != "dicom" else None)
    label = write_nifti(lab_array, lab_affine, out / f"{name}_label.nii.gz")
    log.info("wrote phantom %s and %s", image, label)
    return {"image": image, "label": label}
