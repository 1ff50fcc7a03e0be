"""Every drawn structure of the phantom as labelled polygons (mm): bodies, discs, canal, posterior elements, sacrum."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from lumbarkit.phantom.chain import sacral_quads
from lumbarkit.phantom.defaults import (
    ANTERIOR_VIEW_MM,
    CANAL_DEPTH_MM,
    CANAL_GAP_MM,
    FUSED,
    SACRAL_CANAL_MM,
    SACRAL_WALL_MM,
    SKIN_MM,
    SPINOUS_MM,
)
from lumbarkit.phantom.geometry import (
    chaikin,
    ellipse,
    extend,
    frame,
    from_uv,
    offset_band,
    polyline_coords,
    tagged,
    unit_vector,
)


def _canal_polygons(quads: Mapping[str, np.ndarray], chain: Sequence[str], labelled: Sequence[str]):
    """Canal polygon along the whole chain (with a superior extension), its core beside the labelled bodies
    (for the field of view), the canal's front polyline and its posterior directions."""
    front, dirs = [], []
    for n in chain:
        q = quads[n]
        e = unit_vector((q[1] + q[2] - q[0] - q[3]) / 2)
        front += [q[1] + CANAL_GAP_MM * e, q[2] + CANAL_GAP_MM * e]
        dirs += [e, e]
    front, dirs = np.array(front), np.array(dirs)
    up = np.array([dirs[0][1], -dirs[0][0]])  # superior along the top body's axis
    ext = np.vstack([front[:1] + 60.0 * up, front])
    ext_dirs = np.vstack([dirs[:1], dirs])
    i0, i1 = chain.index(labelled[0]), chain.index(labelled[-1])
    core = offset_band(front[2 * i0 : 2 * i1 + 2], dirs[2 * i0 : 2 * i1 + 2], 0.0, CANAL_DEPTH_MM)
    canal = offset_band(ext, ext_dirs, 0.0, CANAL_DEPTH_MM)
    return canal, core, ext, ext_dirs


@dataclass
class Anatomy:
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


def build_anatomy(chain: list[str], labelled: Sequence[str], quads: Mapping[str, np.ndarray]) -> Anatomy:
    sacral = sacral_quads(quads["S1"])
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
    anat = Anatomy(bodies, owners, discs, remnants, canal, core, np.array(outline[:-1]))

    i_s1 = chain.index("S1")
    plate = _canal_slice_structures(anat, chain, quads, sacral, canal, ext, ext_dirs)
    _side_structures(anat, chain, quads, ext, ext_dirs, plate)
    _soft_tissue_layout(anat, chain, bodies, sacral, (i0, i1, i_s1))
    return anat


def _canal_corner(i: int, which: int) -> int:
    """Index in the extended canal polyline of chain vertebra i's superior (0) / inferior (1) canal corner."""
    return 1 + 2 * i + which


def _canal_slice_structures(anat: Anatomy, chain, quads, sacral, canal, ext, ext_dirs):
    """Canal slices: dura and epidural fat, CSF, cord and roots, sacral canal, posterior elements (into ``anat.mid``).
    Returns the posterior sacral plate (points, directions, inner depth, wall thickness in mm)."""
    i_s1 = chain.index("S1")
    # ---- canal slices: dura and epidural fat, CSF, cord and roots, sacral canal, posterior elements
    mid = anat.mid
    mid.extend(tagged("ligament", offset_band(ext, ext_dirs, CANAL_DEPTH_MM, CANAL_DEPTH_MM + 0.7)))
    mid.extend(tagged("fat", offset_band(ext, ext_dirs, CANAL_DEPTH_MM + 0.7, CANAL_DEPTH_MM + 2.5)))
    mid.extend(tagged("csf", canal))
    roots_from = 0
    if "L1" in chain:
        end = _canal_corner(chain.index("L1"), 1)
        lo = np.full(end + 1, 0.22 * CANAL_DEPTH_MM)
        hi = np.full(end + 1, 0.68 * CANAL_DEPTH_MM)
        lo[-1], hi[-1] = 0.5 * CANAL_DEPTH_MM, 0.53 * CANAL_DEPTH_MM  # conus medullaris
        mid.extend(tagged("roots", offset_band(ext[: end + 1], ext_dirs[: end + 1], lo, hi)))
        roots_from = _canal_corner(chain.index("L1"), 0)
    stop = _canal_corner(i_s1, 1) + 1
    for lo_f, hi_f in ((0.50, 0.57), (0.64, 0.70), (0.78, 0.84)):  # cauda equina, lying posteriorly
        mid.extend(tagged("roots", offset_band(ext[roots_from:stop], ext_dirs[roots_from:stop], lo_f * CANAL_DEPTH_MM, hi_f * CANAL_DEPTH_MM)))
    # sacral canal (fat and a root) and the posterior sacral wall, from S1's inferior corner down to S5
    pts, dirs = [quads["S1"][2]], [frame(quads["S1"])[1]]
    for n in ("S2", "S3", "S4"):
        e = frame(sacral[n])[1]
        pts += [sacral[n][1], sacral[n][2]]
        dirs += [e, e]
    pts += [sacral["S5"][1], sacral["S5"][2]]
    dirs += [frame(sacral["S5"])[1]] * 2
    pts, dirs, depth = np.array(pts), np.array(dirs), np.array(SACRAL_CANAL_MM)
    mid.extend(tagged("fat", offset_band(pts, dirs, CANAL_GAP_MM, CANAL_GAP_MM + depth)))
    mid.extend(tagged("roots", offset_band(pts, dirs, CANAL_GAP_MM + 0.4 * depth, CANAL_GAP_MM + 0.55 * depth)))
    s1_frame = frame(quads["S1"])
    plate_pts = np.vstack([quads["S1"][1:2] + CANAL_GAP_MM * s1_frame[1], pts + CANAL_GAP_MM * dirs])
    plate_dirs = np.vstack([dirs[:1], dirs])
    plate_lo = np.concatenate([[CANAL_DEPTH_MM], depth])
    wall = np.array(SACRAL_WALL_MM)
    mid.append(("bone", offset_band(plate_pts, plate_dirs, plate_lo + 0.3, plate_lo + wall)))
    for upper, lower in zip(chain[:i_s1], chain[1 : i_s1 + 1]):  # fat between the spinous processes
        (pu, eu, nu, _), (pl, el, nl, _) = frame(quads[upper]), frame(quads[lower])
        e, nn = unit_vector(eu + el), unit_vector(nu + nl)
        centre = (pu + pl) / 2 + (CANAL_GAP_MM + CANAL_DEPTH_MM + 16.0) * e
        mid.append(("interspinous", ellipse(centre, e, nn, 12.0, 0.25 * float(np.linalg.norm(pl - pu)))))
    for n in chain:
        p, e, nn, h = frame(quads[n])
        o = p + (CANAL_GAP_MM + CANAL_DEPTH_MM) * e
        if n == "S1":
            length, tip, drop = 17.0, 12.0, 0.0
        else:
            length, tip, drop = SPINOUS_MM["thoracic" if n.startswith(("T", "C")) else "lumbar"]
        top = 0.02 * h + drop
        uv = [(1.5, -0.30 * h), (5.0, -0.28 * h), (9.0, -0.08 * h), (length - 6, top - 1.0), (length, top + 1.5),
              (length + 0.5, top + 0.6 * tip), (length - 3, top + tip), (11.0, 0.45 * h), (4.0, 0.62 * h), (1.5, 0.6 * h)]
        mid.append(("bone", from_uv(o, e, nn, uv)))
    mid.extend(tagged("ligament", offset_band(ext[1 : _canal_corner(i_s1, 1) + 1] - CANAL_GAP_MM * ext_dirs[1 : _canal_corner(i_s1, 1) + 1],
                                  ext_dirs[1 : _canal_corner(i_s1, 1) + 1], 0.0, CANAL_GAP_MM)))  # posterior longitudinal ligament
    return plate_pts, plate_dirs, plate_lo, wall


def _side_structures(anat: Anatomy, chain, quads, ext, ext_dirs, plate) -> None:
    """Body slices beside the canal: foraminal fat, nerve roots, pedicles, articular pillars; every body slice's ALL."""
    i_s1 = chain.index("S1")
    stop = _canal_corner(i_s1, 1) + 1
    plate_pts, plate_dirs, plate_lo, wall = plate
    side = anat.side
    side.extend(tagged("fat", offset_band(ext[1:stop] - CANAL_GAP_MM * ext_dirs[1:stop], ext_dirs[1:stop], 0.0, CANAL_GAP_MM + CANAL_DEPTH_MM + 3.0)))
    for n in chain[:i_s1]:
        p, e, nn, h = frame(quads[n])
        side.append(("roots", ellipse(p + 8.0 * e + (0.02 * h + 4.5) * nn, e, nn, 3.2, 2.8)))
        uv = [(-3, -0.42 * h), (14, -0.42 * h), (16, -0.58 * h - 2), (26, -0.58 * h - 2), (31, -0.35 * h), (31, 0.55 * h),
              (27, 0.72 * h), (19, 0.72 * h), (14, 0.3 * h), (14, 0.02 * h), (-3, 0.02 * h)]
        side.append(("bone", from_uv(p, e, nn, uv)))
    side.append(("bone", offset_band(plate_pts - CANAL_GAP_MM * plate_dirs, plate_dirs, -2.0, CANAL_GAP_MM + plate_lo + wall)))  # lateral sacrum
    # ---- every body slice: anterior longitudinal ligament
    ant = np.array([p for n in chain for p in (quads[n][0], quads[n][3])])
    ant_dirs = np.array([-frame(quads[n])[1] for n in chain for _ in range(2)])
    anat.both.extend(tagged("ligament", offset_band(ant, ant_dirs, 0.0, 1.2)))



def _soft_tissue_layout(anat: Anatomy, chain, bodies, sacral, idx: tuple[int, int, int]) -> None:
    """Curves through the posterior / anterior wall midpoints, the skin and fat along them, the field of view points."""
    i0, i1, i_s1 = idx
    order = [*chain, *sacral]
    post = np.array([(bodies[n][1] + bodies[n][2]) / 2 for n in order])
    front = np.array([(bodies[n][0] + bodies[n][3]) / 2 for n in order])
    anat.post_curve = extend(chaikin(post))
    anat.ant_curve = extend(chaikin(front))
    # the skin of the back: SKIN_MM behind the posterior walls, closing in over the sacrum; fat thickening over the buttocks
    skin_names = [*chain, "S2", "S3", "S4"]
    skin_pts = np.array([frame(bodies[n])[0] + SKIN_MM.get(n, SKIN_MM["lumbar"]) * frame(bodies[n])[1] for n in skin_names])
    anat.skin_curve = extend(chaikin(skin_pts))
    marks = ("L1" if "L1" in chain[:i_s1] else chain[0], "S1", "S3", "S4")
    anat.fat_s = np.maximum.accumulate(polyline_coords(anat.skin_curve, skin_pts[[skin_names.index(n) for n in marks]])[1])
    anat.fat_d = np.array([17.0, 15.0, 20.0, 26.0])
    l4 = bodies["L4"] if "L4" in bodies else bodies[chain[max(i_s1 - 2, 0)]]
    anat.vessel_end_s = float(polyline_coords(anat.ant_curve, ((l4[0] + l4[3]) / 2)[None])[1][0])
    s1 = bodies["S1"]
    anat.pelvis_s = float(polyline_coords(anat.ant_curve, ((s1[0] + s1[3]) / 2)[None])[1][0])
    fov = [n for n in order[i0 : i1 + 1]] + ["S2", "S3", "S4", "S5"]
    anat.skin_points = np.array([frame(bodies[n])[0] + (SKIN_MM.get(n, SKIN_MM["lumbar"]) + 15.0) * frame(bodies[n])[1] for n in fov])
    anat.front_points = np.array([(bodies[n][0] + bodies[n][3]) / 2 - ANTERIOR_VIEW_MM * frame(bodies[n])[1] for n in fov])
