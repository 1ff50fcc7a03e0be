"""Exact rasterised test shapes for the measurement tests: a label grid and trapezoid bodies (plane mm).

Plane coordinates (a, b): a towards posterior, b towards inferior, mm; RAS y = -a, z = -b.
"""

from __future__ import annotations

import math

import numpy as np

from lumbarkit.scan import Scan


class Grid:
    """One- or few-slice canonical grid, in-plane rotated by ``rot_deg`` (oblique acquisition)."""

    def __init__(self, rows=260, cols=220, row_mm=0.5, col_mm=0.5, rot_deg=0.0, slices=1, centre=(0.0, 0.0)):
        phi = math.radians(rot_deg)
        self.r_hat = np.array([-math.sin(phi), math.cos(phi)])
        self.c_hat = np.array([math.cos(phi), math.sin(phi)])
        self.shape = (slices, rows, cols)
        self.row_mm, self.col_mm = row_mm, col_mm
        self.origin = np.asarray(centre) - (rows - 1) / 2 * row_mm * self.r_hat - (cols - 1) / 2 * col_mm * self.c_hat
        aff = np.eye(4)
        aff[:3, 0] = (-3.0, 0, 0)
        aff[:3, 1] = (0, -row_mm * self.r_hat[0], -row_mm * self.r_hat[1])
        aff[:3, 2] = (0, -col_mm * self.c_hat[0], -col_mm * self.c_hat[1])
        aff[:3, 3] = (3.0 * (slices // 2), -self.origin[0], -self.origin[1])
        self.affine = aff
        self.labels = np.zeros(self.shape, dtype=np.int32)

    def paint(self, polygon, value: int, slices=None) -> None:
        from skimage.draw import polygon as fill

        rel = np.asarray(polygon, dtype=float) - self.origin
        rr, cc = fill(rel @ self.r_hat / self.row_mm, rel @ self.c_hat / self.col_mm, self.shape[1:])
        for k in range(self.shape[0]) if slices is None else slices:
            self.labels[k, rr, cc] = value

    def scan(self) -> Scan:
        return Scan(np.zeros(self.shape, dtype=np.float32), self.affine)


def body(centre, depth, h_ant, h_post, tilt_deg=0.0, dent=0.0):
    """Symmetric trapezoid: anterior edge ``h_ant``, posterior edge ``h_post``, endplate dents of depth ``dent``
    between 30 % and 70 % of the depth; the endplates' mid-line turned ``tilt_deg`` (posterior end up)."""
    pts = [(0, -h_ant / 2), (0.3 * depth, None), (0.4 * depth, "d"), (0.6 * depth, "d"), (0.7 * depth, None), (depth, -h_post / 2)]

    def top(x):
        return -(h_ant + (h_post - h_ant) * x / depth) / 2

    upper = [(x, top(x) + (dent if y == "d" else 0.0)) for x, y in pts]
    lower = [(x, -top(x) - (dent if y == "d" else 0.0)) for x, y in pts][::-1]
    poly = np.array(upper + lower) - (depth / 2, 0)
    t = math.radians(tilt_deg)
    rot = np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])  # posterior axis turned up by t
    return poly @ rot.T + np.asarray(centre)


def chord(depth, h_ant, h_post, f):
    return h_ant + (h_post - h_ant) * f



def stack_bodies(g: Grid, slip_mm=0.0, disc_mm=10.0, tilt=0.0, discs=False, canal_mm=None, h=26.0, d=34.0):
    """L3 over L4 (over L5), straight spine turned by ``tilt``; L3 translated ``slip_mm`` anteriorly."""
    t = math.radians(tilt)
    e = np.array([math.cos(t), -math.sin(t)])  # posterior along the endplates
    n = np.array([math.sin(t), math.cos(t)])  # inferior
    centres = {22: -(h + disc_mm) * n - slip_mm * e, 23: np.zeros(2), 24: (h + disc_mm) * n}
    if canal_mm is not None:  # painted first: a retrolisthesed body covers it
        front = d / 2 + 2.0
        poly = [-80 * n + front * e, -80 * n + (front + canal_mm) * e, 80 * n + (front + canal_mm) * e, 80 * n + front * e]
        g.paint(np.array(poly), 100)
    for label, c in centres.items():
        g.paint(body(c, d, h, h, tilt), label)
    if discs:
        for upper, lower in ((22, 23), (23, 24)):
            cu, cl = centres[upper], centres[lower]
            poly = [cu + (-d / 2) * e + h / 2 * n, cu + d / 2 * e + h / 2 * n, cl + d / 2 * e - h / 2 * n, cl - d / 2 * e - h / 2 * n]
            g.paint(np.array(poly), 100 + upper)
            for label in (upper, lower):  # bodies keep their edges
                g.paint(body(centres[label], d, h, h, tilt), label)
    return centres
