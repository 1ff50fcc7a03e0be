"""Plane geometry of the phantom (mm, plane coordinates (a, b): a posterior, b inferior): frames, bands, curves, heights."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def rotation(theta_deg: float) -> np.ndarray:
    """Rotation whose first column is the posterior axis turned so its angle is ``theta``."""
    t = math.radians(theta_deg)
    c, s = math.cos(t), math.sin(t)
    return np.array([[c, s], [-s, c]])


def angle_deg(ant: np.ndarray, post: np.ndarray) -> float:
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


def polygon_centroid(poly: np.ndarray) -> np.ndarray:
    x, y = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    cross = x * y1 - x1 * y
    area = cross.sum() / 2
    return np.array([((x + x1) * cross).sum(), ((y + y1) * cross).sum()]) / (6 * area)


def unit_vector(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def perp(e: np.ndarray) -> np.ndarray:
    """Inferior normal of a posterior-pointing direction."""
    return np.array([-e[1], e[0]])


def frame(q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Posterior-wall midpoint, posterior and inferior unit vectors, posterior height of a quadrilateral."""
    a, p = (q[0] + q[3]) / 2, (q[1] + q[2]) / 2
    e = unit_vector(p - a)
    return p, e, perp(e), float(np.linalg.norm(q[2] - q[1]))


def from_uv(origin: np.ndarray, e: np.ndarray, n: np.ndarray, uv) -> np.ndarray:
    uv = np.asarray(uv, dtype=float)
    return origin + uv[:, :1] * e + uv[:, 1:] * n


def offset_band(pts: np.ndarray, dirs: np.ndarray, lo, hi) -> np.ndarray:
    """Polygon between the offsets ``lo`` and ``hi`` (mm, scalars or one per point) of a polyline along ``dirs``."""
    lo = np.broadcast_to(np.asarray(lo, dtype=float), (len(pts),))[:, None]
    hi = np.broadcast_to(np.asarray(hi, dtype=float), (len(pts),))[:, None]
    return np.vstack([pts + lo * dirs, (pts + hi * dirs)[::-1]])


def _pieces(band: np.ndarray) -> list[np.ndarray]:
    """A band polygon from :func:`offset_band` cut into its quadrilaterals (cheaper to rasterise, same union)."""
    k = len(band) // 2
    lo, hi = band[:k], band[k:][::-1]
    return [np.array([lo[i], lo[i + 1], hi[i + 1], hi[i]]) for i in range(k - 1)]


def tagged(kind: str, band: np.ndarray) -> list[tuple[str, np.ndarray]]:
    return [(kind, q) for q in _pieces(band)]


def ellipse(centre: np.ndarray, e: np.ndarray, n: np.ndarray, ru: float, rv: float, k: int = 24) -> np.ndarray:
    t = np.linspace(0.0, 2 * math.pi, k, endpoint=False)
    return centre + np.outer(ru * np.cos(t), e) + np.outer(rv * np.sin(t), n)


def inset(poly: np.ndarray, t: float) -> np.ndarray:
    """The polygon with every edge moved ``t`` mm inwards (consecutive edges intersected)."""
    x, y = poly[:, 0], poly[:, 1]
    sign = 1.0 if np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0 else -1.0
    lines = []
    for i in range(len(poly)):
        d = unit_vector(poly[(i + 1) % len(poly)] - poly[i])
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
            corner = poly[i] + t * unit_vector(pb - poly[i] + (pa + da * np.dot(poly[i] - pa, da)) - poly[i])
        out.append(corner)
    return np.array(out)


def chaikin(pts: np.ndarray, rounds: int = 2) -> np.ndarray:
    for _ in range(rounds):
        q = 0.75 * pts[:-1] + 0.25 * pts[1:]
        r = 0.25 * pts[:-1] + 0.75 * pts[1:]
        pts = np.vstack([pts[:1], np.column_stack([q, r]).reshape(-1, 2), pts[-1:]])
    return pts


def extend(pts: np.ndarray, length: float = 400.0) -> np.ndarray:
    head = pts[0] + length * unit_vector(pts[0] - pts[1])
    tail = pts[-1] + length * unit_vector(pts[-1] - pts[-2])
    return np.vstack([head, pts, tail])


def polyline_coords(line: np.ndarray, pts: np.ndarray, step: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
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


def curve_point(line: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Point at arc length ``s`` on a polyline and the unit posterior normal there."""
    seg = np.diff(line, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    i = int(np.clip(np.searchsorted(cum, s) - 1, 0, len(seg) - 1))
    t = (s - cum[i]) / max(lengths[i], 1e-9)
    d = seg[i] / max(lengths[i], 1e-9)
    return line[i] + t * seg[i], np.array([d[1], -d[0]])
