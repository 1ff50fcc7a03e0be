"""Slice geometry for measurements: the plane mm frame of a slice, mask edges, lines, quadrilateral fit.

Part of :mod:`lumbarkit.stages.s3_measure`: :class:`Plane` maps canonical slice pixels to an
isometric 2D mm frame (and to RAS), :class:`Sampler` finds where a smoothed mask crosses 0.5
along a line, and :func:`fit_quad` fits a body/disc quadrilateral (module doc of
:mod:`lumbarkit.stages.s3_measure`, steps 1-4).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from lumbarkit.results.measurements import Point3

# One logger for the whole stage, named after the public module (log output unchanged).
log = logging.getLogger("lumbarkit.stages.s3_measure")

CHORD_FRACTIONS = (0.1, 0.5, 0.9)  # anterior, middle, posterior height chords along the mid-line
EDGE_FRACTIONS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.7, 0.75, 0.8, 0.85, 0.9)  # chords whose ends fit the endplate lines
WALL_FRACTIONS = (0.2, 0.35, 0.5, 0.65, 0.8)  # where along the anterior/posterior chord the wall points are taken
SMOOTHING_SIGMA_PX = 0.7  # Gaussian smoothing of a mask before its 0.5 edge is located (pixels)


# ---------------------------------------------------------------- slice geometry


def unit_vector(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


class Plane:
    """Isometric 2D mm frame of canonical slices: plane (x, y) <-> pixel (i, j) <-> RAS."""

    def __init__(self, affine: np.ndarray):
        a_k, a_i, a_j = (affine[:3, c] for c in range(3))
        self._a_k, self._t = a_k, affine[:3, 3]
        self.e1 = unit_vector(a_i)
        self.e2 = unit_vector(a_j - (a_j @ self.e1) * self.e1)
        self.to_plane = np.array([[np.linalg.norm(a_i), a_j @ self.e1], [0.0, a_j @ self.e2]])
        self.to_pixel = np.linalg.inv(self.to_plane)
        self.pixel_mm = float(min(np.linalg.norm(a_i), np.linalg.norm(a_j)))
        # patient superior and posterior as seen within the slice plane
        sup = np.array([self.e1[2], self.e2[2]])
        self.superior = unit_vector(sup)
        post = np.array([-self.e1[1], -self.e2[1]])
        self.posterior = unit_vector(post - (post @ self.superior) * self.superior)

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
        u = unit_vector(u)
        if u @ self.posterior < 0:
            u = -u
        v = np.array([-u[1], u[0]])
        if v @ self.superior > 0:
            v = -v
        return u, v

    def angle_deg(self, direction: np.ndarray) -> float:
        """Angle of an anterior->posterior direction from the posterior axis, + when posterior end is superior."""
        return math.degrees(math.atan2(direction @ self.superior, direction @ self.posterior))


class Sampler:
    """Locates the edges of one 2D mask along lines given in plane mm."""

    def __init__(self, mask: np.ndarray, plane: Plane, sigma_px: float = SMOOTHING_SIGMA_PX):
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
        return self._crossings(t, f, need)

    def extents(self, points: list[np.ndarray], direction: np.ndarray, half: float) -> list[tuple[float, float] | None]:
        """:meth:`extent` of parallel lines through each of ``points``, sampled in one interpolation call
        (each line's coordinates computed as :meth:`profile` does, so the values are the same)."""
        t = np.arange(-half, half + self.step / 2, self.step)
        ij = np.concatenate([self.plane.plane_to_pixels(p + t[:, None] * direction) - self.offset for p in points])
        f = ndimage.map_coordinates(self.values, ij.T, order=1, mode="constant", cval=0.0).reshape(len(points), len(t))
        return [self._crossings(t, row, "both") for row in f]

    def _crossings(self, t: np.ndarray, f: np.ndarray, need: str) -> tuple[float, float] | None:
        inside = np.flatnonzero(f >= 0.5)
        if inside.size == 0:
            return None
        i0, i1 = inside[0], inside[-1]
        if (i0 == 0 and need != "last") or (i1 == len(t) - 1 and need != "first") or (i0 == 0 and i1 == len(t) - 1):
            return None
        t0 = t[i0 - 1] + (0.5 - f[i0 - 1]) / (f[i0] - f[i0 - 1]) * self.step if i0 > 0 else math.nan
        t1 = t[i1] + (f[i1] - 0.5) / (f[i1] - f[i1 + 1]) * self.step if i1 < len(t) - 1 else math.nan
        return float(t0), float(t1)

    def first_run(self, point: np.ndarray, direction: np.ndarray, reach: float) -> tuple[float, float] | None:
        """Parameters ``t`` (>= 0) where the first inside run beyond ``point`` along ``direction`` starts and ends
        (0.5-crossings), or None when the line meets nothing or is still inside at ``reach``. Unlike
        :meth:`extent` it never spans a gap: a second piece further along is not part of the run."""
        t, f = self.profile(point, direction, reach)
        start = int(np.searchsorted(t, 0.0))
        inside = f[start:] >= 0.5
        if not inside.any():
            return None
        i0 = start + int(np.argmax(inside))
        outside_after = np.flatnonzero(f[i0:] < 0.5)
        if outside_after.size == 0:
            return None
        i1 = i0 + int(outside_after[0]) - 1
        t0 = t[i0 - 1] + (0.5 - f[i0 - 1]) / (f[i0] - f[i0 - 1]) * self.step if i0 > start else float(t[i0])
        t1 = t[i1] + (f[i1] - 0.5) / (f[i1] - f[i1 + 1]) * self.step
        return float(t0), float(t1)


def _intersect(p: np.ndarray, d: np.ndarray, q: np.ndarray, e: np.ndarray) -> np.ndarray | None:
    m = np.column_stack([d, -e])
    if abs(np.linalg.det(m)) < 1e-6:
        return None
    s, _ = np.linalg.solve(m, q - p)
    return p + s * d


Line2 = tuple[np.ndarray, np.ndarray]  # (point, unit direction) in plane mm


def _fit_line(points: list[np.ndarray]) -> Line2 | None:
    """Least-squares (orthogonal) line through plane points: their mean and first principal direction.

    The total-least-squares estimate of skimage's ``LineModelND`` (same operations, same floats), written
    out because importing ``skimage.measure`` pulls in scipy.optimize: a fifth of a second on every run."""
    data = np.asarray(points, dtype=float)
    if data.ndim != 2 or len(data) < 2:
        return None
    origin = data.mean(axis=0)
    data = data - origin
    if len(data) == 2:
        direction = data[1] - data[0]
        norm = np.linalg.norm(direction)
        if norm != 0:
            direction /= norm
    else:
        direction = np.linalg.svd(data, full_matrices=False)[2][0]
    return origin, unit_vector(direction)


def on_line(line: Line2, base: np.ndarray, d: np.ndarray) -> float | None:
    """Parameter ``t`` where ``base + t d`` meets ``line``."""
    hit = _intersect(base, d, line[0], line[1])
    return None if hit is None else float((hit - base) @ d)


@dataclass(frozen=True)
class Quad:
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
            t = on_line(line, top, self.v)
            ends.append(top + (t if t is not None else 0.0) * self.v)
        return ends[0], ends[1]


def _quad_along(s: Sampler, c: np.ndarray, u: np.ndarray, v: np.ndarray, half: float) -> Quad | None:
    ext = s.extent(c, u, half)
    if ext is None:
        return None
    a_pt, p_pt = c + ext[0] * u, c + ext[1] * u
    fractions = sorted(set(CHORD_FRACTIONS) | set(EDGE_FRACTIONS))
    bases = [a_pt + f * (p_pt - a_pt) for f in fractions]
    found = s.extents(bases, v, half)
    if any(e is None for e in found):
        return None
    chords = {f: (base + e[0] * v, base + e[1] * v) for f, base, e in zip(fractions, bases, found)}
    sup = _fit_line([chords[f][0] for f in EDGE_FRACTIONS])
    inf = _fit_line([chords[f][1] for f in EDGE_FRACTIONS])
    walls = []
    for f, end in ((CHORD_FRACTIONS[0], 0), (CHORD_FRACTIONS[-1], 1)):
        top, bottom = chords[f]
        qs = [top + g * (bottom - top) for g in WALL_FRACTIONS]
        qs = [q + ((c - q) @ u) * u for q in qs]  # same AP line, re-centred on the mid-line's centre
        found = s.extents(qs, u, half)
        if any(e is None for e in found):
            return None
        pts = [q + e[end] * u for q, e in zip(qs, found)]
        wall = _fit_line(pts) if np.linalg.norm(pts[-1] - pts[0]) > 2 * s.plane.pixel_mm else (pts[0], v)
        walls.append(wall)
    if sup is None or inf is None or any(w is None for w in walls):
        return None
    pairs = ((sup, walls[0]), (sup, walls[1]), (inf, walls[1]), (inf, walls[0]))
    corners = [_intersect(a[0], a[1], b[0], b[1]) for a, b in pairs]
    if any(k is None or np.linalg.norm(k - c) > half for k in corners):
        return None
    measured = tuple(chords[f] for f in CHORD_FRACTIONS)
    return Quad(u, v, (a_pt, p_pt), measured, sup, inf, tuple(corners))  # type: ignore[arg-type]


def fit_quad(s: Sampler, points: np.ndarray, u0: np.ndarray, max_iter: int = 25) -> Quad | None:
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
