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
band ``CANAL_GAP_MM`` behind the posterior walls, ``CANAL_DEPTH_MM`` deep; its centre holds
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

Rasterisation
-------------
Label voxel ``(k, i, j)`` holds a structure when its centre, the point the affine maps the
index to, lies inside the structure's polygon (``skimage.draw.polygon``) and, across slices,
when ``|x| <= half width`` (bodies and discs ``BODY_HALF_WIDTH_MM``, canal
``CANAL_HALF_WIDTH_MM``). The grid origin is offset by ``GRID_NUDGE_MM`` (recorded exactly in
the affine) so that no pixel centre lies on an edge of round-number geometry; should one
anyway, it goes to the structure painted last (bodies over discs over canal). Counting label
pixels along a line therefore matches a true length within one pixel. Intensities are rendered on a 4x supersampled in-plane grid and block-averaged (partial
volume at edges), then Rician noise of ``noise_sigma`` is added.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from lumbarkit.levels import CANAL_ID, disc_id, disc_name, vertebra_below, vertebra_id
from lumbarkit.scan import Scan, ScanMetadata, to_canonical

log = logging.getLogger(__name__)

DEFAULT_VERTEBRAE = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")
DEFAULT_BODY_HEIGHT_MM = {"T10": 22.0, "T11": 22.5, "T12": 23.5, "L1": 25.0, "L2": 26.0, "L3": 27.0, "L4": 27.0, "L5": 26.0, "S1": 28.0}
DEFAULT_BODY_DEPTH_MM = {"T10": 28.0, "T11": 29.0, "T12": 30.0, "L1": 32.0, "L2": 33.0, "L3": 34.0, "L4": 35.0, "L5": 35.0, "S1": 38.0}
DEFAULT_DISC_HEIGHT_MM = {
    "T10/T11": 6.0, "T11/T12": 6.5, "T12/L1": 7.0, "L1/L2": 8.0, "L2/L3": 9.0, "L3/L4": 10.0, "L4/L5": 11.0, "L5/S1": 10.0,
}
# Arbitrary MR signal units (0..~1000), typical contrasts: T2 fluid bright, T1 fluid dark, fatty marrow bright on T1.
DEFAULT_INTENSITIES = {
    "T2": {"body": 350.0, "disc": 700.0, "canal": 300.0, "csf": 900.0, "background": 150.0},
    "T1": {"body": 500.0, "disc": 280.0, "canal": 320.0, "csf": 120.0, "background": 250.0},
}
BODY_HALF_WIDTH_MM = 20.0  # lateral half extent of bodies and discs
CANAL_HALF_WIDTH_MM = 8.0  # lateral half extent of the canal
CANAL_GAP_MM = 1.6  # posterior wall -> canal (posterior longitudinal ligament)
CANAL_DEPTH_MM = 15.0  # AP depth of the canal
MARGIN_MM = 20.0  # field of view margin around the spine when shape_rc is automatic
SUPERSAMPLE = 4
GRID_NUDGE_MM = 1e-4
BOTTOM_CENTROID_MM = np.array([0.0, 110.0])  # plane (a, b) of the lowest body's centroid: RAS (0, 0, -110)

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


def _build_quads(names, heights, depths, wedge, discs, slip, lordosis_deg, tilt_deg) -> dict[str, np.ndarray]:
    """Body quadrilaterals (SA, SP, IP, IA) in plane mm, stacked from the bottom up."""
    quads: dict[str, np.ndarray] = {}

    def local(name: str) -> np.ndarray:
        hp, d = heights[name], depths[name]
        ha = hp * wedge.get(name, 1.0)
        return np.array([[0, -ha / 2], [d, -hp / 2], [d, hp / 2], [0, ha / 2]], dtype=float)

    def theta(name: str) -> float:
        return lordosis_deg * ((_level_position(name) - 20.0) / 5.0 - 0.5)

    bottom = names[-1]
    quads[bottom] = local(bottom) @ _rot(theta(bottom)).T
    for upper, lower in zip(names[-2::-1], names[:0:-1]):
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
    # the lowest body is the anchor: its centroid sits at BOTTOM_CENTROID_MM and tilt turns the spine about it
    centre = _centroid(quads[bottom])
    rot = _rot(tilt_deg)
    return {n: (q - centre) @ rot.T + BOTTOM_CENTROID_MM for n, q in quads.items()}


def _canal_polygons(quads: Mapping[str, np.ndarray], names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canal polygon (with a long superior extension), its core (for the FOV) and the nerve-root strip."""
    front, dirs = [], []
    for n in names:
        q = quads[n]
        e = (q[1] + q[2] - q[0] - q[3]) / 2
        e /= np.linalg.norm(e)
        front += [q[1] + CANAL_GAP_MM * e, q[2] + CANAL_GAP_MM * e]
        dirs += [e, e]
    front, dirs = np.array(front), np.array(dirs)
    up = np.array([dirs[0][1], -dirs[0][0]])  # superior along the top body's axis
    ext = np.vstack([front[:1] + 60.0 * up, front])
    ext_dirs = np.vstack([dirs[:1], dirs])

    def band(pts, d, lo, hi):
        return np.vstack([pts + lo * d, (pts + hi * d)[::-1]])

    core = band(front, dirs, 0.0, CANAL_DEPTH_MM)
    canal = band(ext, ext_dirs, 0.0, CANAL_DEPTH_MM)
    roots = band(ext[:-2], ext_dirs[:-2], 0.4 * CANAL_DEPTH_MM, 0.6 * CANAL_DEPTH_MM)  # stop above S1
    return canal, core, roots


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
    shape_rc : in-plane (rows, cols); ``None`` fits the spine with a 20 mm margin. The spine is centred.
    vertebrae : contiguous names top to bottom (T10 ... L5, S1).
    body_height_mm : posterior edge height, one value for all or per name (defaults: typical adult).
    body_depth_mm : AP depth (anterior to posterior edge), one value or per name.
    wedge : per name, anterior / posterior edge height ratio (0.7 = anterior wedge compression).
    disc_height_mm : middle disc height, one value or per disc (``"L4/L5"`` or upper vertebra ``"L4"``).
    slip_mm : per name, anterior translation (mm) of that vertebra, and all above it, relative to the one below.
    tilt_deg : rotation of the whole spine in the sagittal plane (endplate angles all increase by it).
    lordosis_deg : bodies rotate progressively, from -lordosis/2 at L1 to +lordosis/2 at S1 (linear in level).
    in_plane_rotation_deg : oblique acquisition: the image grid is rotated by this angle about the left-right
        axis; anatomy and truth (RAS) are unchanged, the affine carries the rotation.
    sequence : "T2" or "T1", picks default intensities; ``intensities`` overrides keys
        ``body``, ``disc``, ``canal`` (nerve roots), ``csf``, ``background``.
    noise_sigma : Rician noise sigma in signal units (0 = noise free).
    seed : noise seed; equal arguments give identical phantoms.
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

    quads = _build_quads(names, heights, depths, wedges, discs, slips, float(lordosis_deg), float(tilt_deg))
    canal, canal_core, roots = _canal_polygons(quads, names)
    disc_quads = {disc_name(u): np.array([quads[u][3], quads[u][2], quads[lo][1], quads[lo][0]]) for u, lo in zip(names, names[1:])}

    # image grid: pixel (i, j) centre = origin + i*dr*r_hat + j*dc*c_hat (plane mm)
    phi = math.radians(float(in_plane_rotation_deg))
    c_hat = np.array([math.cos(phi), math.sin(phi)])
    r_hat = np.array([-math.sin(phi), math.cos(phi)])
    _, dr, dc = spacing
    pts = np.vstack([*quads.values(), canal_core])
    rr, cc = pts @ r_hat, pts @ c_hat
    if shape_rc is None:
        rows = int(math.ceil((rr.max() - rr.min() + 2 * MARGIN_MM) / dr)) + 1
        cols = int(math.ceil((cc.max() - cc.min() + 2 * MARGIN_MM) / dc)) + 1
    else:
        rows, cols = (int(v) for v in shape_rc)
        if (rows - 1) * dr < rr.max() - rr.min() or (cols - 1) * dc < cc.max() - cc.min():
            need = (int(math.ceil((rr.max() - rr.min()) / dr)) + 1, int(math.ceil((cc.max() - cc.min()) / dc)) + 1)
            raise ValueError(f"shape_rc {shape_rc} is too small for this spine (needs at least {need})")
    r0 = (rr.max() + rr.min()) / 2 - (rows - 1) / 2 * dr
    c0 = (cc.max() + cc.min()) / 2 - (cols - 1) / 2 * dc
    # The tiny offset (exact in the affine) keeps pixel centres off polygon edges of round-number geometry,
    # so shared edges never hand a whole row of pixels to the structure painted last.
    origin = (r0 + GRID_NUDGE_MM) * r_hat + (c0 + GRID_NUDGE_MM) * c_hat

    def to_px(poly: np.ndarray, factor: int = 1) -> np.ndarray:
        rel = poly - origin
        ij = np.column_stack([rel @ r_hat / dr, rel @ c_hat / dc])
        return (ij + 0.5) * factor - 0.5

    bodies = [(to_px(quads[n]), vertebra_id(n)) for n in names]
    disc_polys = [(to_px(q), disc_id(d)) for d, q in disc_quads.items()]
    labels_full = _raster([(to_px(canal), CANAL_ID), *disc_polys, *bodies], (rows, cols))
    labels_side = np.where(labels_full == CANAL_ID, 0, labels_full)

    # intensities with partial volume: supersampled classes, block mean
    f = SUPERSAMPLE
    fine_shape = (rows * f, cols * f)
    ROOT, BODY, DISC, CSF = 1, 2, 3, 4
    cls_full = _raster(
        [(to_px(canal, f), CSF), (to_px(roots, f), ROOT), *[(to_px(q, f), DISC) for q in disc_quads.values()],
         *[(to_px(quads[n], f), BODY) for n in names]],
        fine_shape,
    )
    lut = np.array([values["background"], values["canal"], values["body"], values["disc"], values["csf"]], dtype=np.float64)

    def render(cls: np.ndarray) -> np.ndarray:
        return lut[cls].reshape(rows, f, cols, f).mean(axis=(1, 3))

    img_full = render(cls_full)
    img_side = render(np.where((cls_full == CSF) | (cls_full == ROOT), 0, cls_full))
    img_none = np.full((rows, cols), values["background"])

    sk = spacing[0]
    mid = int(n_slices) // 2
    xs = (mid - np.arange(int(n_slices))) * sk  # RAS x of each canonical slice (towards left = -x)
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
