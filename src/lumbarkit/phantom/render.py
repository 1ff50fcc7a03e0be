"""Rasterise the phantom polygons into a label map and an MR-like image (supersampled, textured, bias field, noise)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from lumbarkit.levels import vertebra_id
from lumbarkit.phantom.anatomy import Anatomy
from lumbarkit.phantom.defaults import (
    CORTEX_MM,
    FUSED,
    PE_MARROW,
    REMNANT,
    SACRAL_MARROW,
    SUPERSAMPLE,
)
from lumbarkit.phantom.geometry import curve_point, inset, perp, polyline_coords


def raster(polys: Sequence[tuple[np.ndarray, int]], shape: tuple[int, int]) -> np.ndarray:
    """Paint (polygon in (row, col) pixel coordinates, value) in order; pixel centres inside or on the edge."""
    from skimage.draw import polygon

    out = np.zeros(shape, dtype=np.int32)
    for poly, value in polys:
        rr, cc = polygon(poly[:, 0], poly[:, 1], shape)
        out[rr, cc] = value
    return out


@dataclass(frozen=True)
class Grid:
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

    def __init__(self, grid: Grid, factor: int):
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
        self.paint(inset(poly, thickness), marrow, tex, owner)

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
    n = perp(e)
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


def _abdomen(grid: Grid, pts: np.ndarray, s_range: tuple[float, float], anat: Anatomy, v: Mapping[str, float],
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
        u, w = rel @ e, rel @ perp(e)
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
        c, nrm = curve_point(anat.ant_curve, rng.uniform(lo, hi))
        kind = rng.choice(3, p=[0.4, 0.3, 0.3])
        content = (0.85 * v["csf"], v["background"] * rng.uniform(1.0, 1.4), v["air"] + 0.1 * v["background"])[kind]
        blob(c - rng.uniform(30.0, 170.0) * nrm, rng.uniform(7.0, 17.0), rng.uniform(5.0, 12.0), rng.uniform(0.0, math.pi), content, wall)
    # pelvis: the bladder (urine) well in front, the rectum (gas and faeces) lying on the lower sacrum
    c, nrm = curve_point(anat.ant_curve, anat.pelvis_s + 70.0)
    blob(c - 75.0 * nrm, 42.0, 30.0, rng.uniform(-0.3, 0.3), 0.95 * v["csf"], 0.8 * v["background"], 0.05)
    for k in range(4):
        c, nrm = curve_point(anat.ant_curve, anat.pelvis_s + 35.0 + 18.0 * k)
        content = v["air"] + 0.1 * v["background"] if rng.uniform() < 0.5 else v["background"] * rng.uniform(1.2, 1.8)
        blob(c - rng.uniform(16.0, 22.0) * nrm, 11.0, 8.0, rng.uniform(0.0, math.pi), content, wall)
    return out


def _textures(grid: Grid, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Multiplicative tissue textures (mean 1) on the pixel grid: marrow, muscle, fat, abdomen, vessel."""
    from scipy.ndimage import gaussian_filter

    def noise(sigma_r: float, sigma_c: float | None = None) -> np.ndarray:
        sc = sigma_r if sigma_c is None else sigma_c
        z = gaussian_filter(rng.standard_normal((grid.rows, grid.cols)), (sigma_r / grid.dr, sc / grid.dc), mode="reflect")
        return z / max(float(z.std()), 1e-12)

    return {"marrow": 1 + 0.08 * noise(0.7) + 0.05 * noise(3.0), "muscle": 1 + 0.10 * noise(2.5, 0.6) + 0.06 * noise(6.0),
            "fat": 1 + 0.05 * noise(1.0), "abdomen": 1 + 0.12 * noise(2.0), "vessel": 1 + 0.25 * noise(3.0)}


def _soft_tissue(anat: Anatomy, grid: Grid, v: Mapping[str, float], rng: np.random.Generator, pts: np.ndarray,
                 tex: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(background image of muscle, fat, skin, air, vessels and abdomen; signed distance (mm) behind the posterior curve)."""
    px = min(grid.dr, grid.dc)

    def step(x: np.ndarray) -> np.ndarray:
        return np.clip(x / px + 0.5, 0.0, 1.0)

    d, _ = polyline_coords(anat.post_curve, pts)
    da, sa = polyline_coords(anat.ant_curve, pts)
    dant = -da
    ph = rng.uniform(0.0, 2 * math.pi, 2)
    ds, ss = polyline_coords(anat.skin_curve, pts)  # positive outside the body
    ds = ds - 3.0 * np.sin(ss / 41.0 + ph[0])
    fat_t = np.interp(ss, anat.fat_s, anat.fat_d) + 2.0 * np.sin(ss / 29.0 + ph[1])
    muscle = v["background"] * tex["muscle"].ravel()
    fat = v["fat"] * tex["fat"].ravel()
    w1, w2, w3 = step(ds + fat_t), step(ds), step(ds - 1.8)
    post = muscle * (1 - w1) + fat * (w1 - w2) + 0.5 * (v["fat"] + v["background"]) * (w2 - w3) + v["air"] * w3
    abdomen = _abdomen(grid, pts, (float(sa.min()), float(sa.max())), anat, v, rng, tex["abdomen"]).ravel()
    inner, outer = step(dant - 3.5), step(dant - 20.0)
    wv = (inner - outer) * np.clip((anat.vessel_end_s - sa) / 10.0, 0.0, 1.0)
    vessel = 1.4 * v["cortex"] * tex["vessel"].ravel()
    ant = fat * (1 - inner) + vessel * wv + abdomen * (inner - wv)
    wp, wa = step(d), step(dant)
    return (wp * post + wa * ant + np.clip(1 - wp - wa, 0.0, 1.0) * muscle).reshape(grid.rows, grid.cols), d


def _bias_field(grid: Grid, pts: np.ndarray, d: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Receive-coil bias field: strong behind the back, with slow random variation (multiplicative, ~1)."""
    k = rng.normal(size=(3, 2))
    k = k / np.linalg.norm(k, axis=1, keepdims=True) * (2 * math.pi / rng.uniform(180.0, 320.0, size=(3, 1)))
    slow = sum(0.07 * np.cos(pts @ k[i] + rng.uniform(0.0, 2 * math.pi)) for i in range(3))

    def coil(x):
        return 0.35 + 0.75 / (1 + np.exp(-(x + 15.0) / 30.0))

    return (np.exp(slow) * coil(d) / coil(-17.0)).reshape(grid.rows, grid.cols)


def _draw(anat: Anatomy, grid: Grid, v: Mapping[str, float], tex: Mapping[str, np.ndarray], owner_id: Mapping[str, int],
          items) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Paint the tagged polygons ``items``, the discs, the sacrum and the bodies supersampled; the canvas reduced."""
    cv = _Canvas(grid, SUPERSAMPLE)
    for kind, poly in items:
        if kind == "bone":
            cv.bone(poly, v["cortex"], PE_MARROW * v["body"], tex["marrow"], 1.8)
        elif kind == "fat":
            cv.paint(poly, v["fat"], tex["fat"])
        elif kind == "interspinous":
            cv.paint(poly, 0.6 * v["fat"] + 0.4 * v["background"], tex["muscle"])
        elif kind == "ligament":
            cv.paint(poly, v["cortex"])
        elif kind == "csf":
            cv.paint(poly, v["csf"])
        elif kind == "roots":
            cv.paint(poly, v["canal"])
    for q in anat.discs:
        cv.paint(q, lambda p, q=q: _disc_field(q, p, v["disc"], v["annulus"]))
    cv.bone(anat.sacrum, v["cortex"], v["body"], tex["marrow"], CORTEX_MM, owner_id["S1"])
    for q in anat.remnants:
        cv.paint(q, REMNANT * SACRAL_MARROW * v["body"])
    for name, q in anat.bodies.items():
        if name not in FUSED:
            cv.bone(q, v["cortex"], v["body"], tex["marrow"], CORTEX_MM, owner_id[name])
    return cv.reduce()


def render(anat: Anatomy, grid: Grid, v: Mapping[str, float], rng: np.random.Generator, labels_full: np.ndarray,
           labelled: Sequence[str], side: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Noise-free images of a canal slice, a body slice beside the canal (if ``side``) and a slice beyond the bodies."""
    ii, jj = np.meshgrid(np.arange(grid.rows, dtype=float), np.arange(grid.cols, dtype=float), indexing="ij")
    pts = grid.plane(ii.ravel(), jj.ravel())
    tex = _textures(grid, rng)
    bg, d = _soft_tissue(anat, grid, v, rng, pts, tex)
    bias = _bias_field(grid, pts, d, rng)
    owner_id = {n: labelled.index(o) + 1 for n, o in anat.owners.items()}

    def compose(parts, gains: np.ndarray) -> np.ndarray:
        hit, val, marrow, owner = parts
        return bias * (bg * (1 - hit) + val + gains[owner] * marrow)

    full = _draw(anat, grid, v, tex, owner_id, anat.mid + anat.both)
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
    img_side = compose(_draw(anat, grid, v, tex, owner_id, anat.side + anat.both), gains) if side else None
    return img_full, img_side, bias * bg
