"""Phantom ground truth computed from the polygons (never from pixels): heights, angles, slips, centroids."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from lumbarkit.levels import disc_id, vertebra_id
from lumbarkit.phantom.defaults import Point
from lumbarkit.phantom.geometry import angle_deg, polygon_centroid, quad_heights
from lumbarkit.scan import Scan


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


def truth_for(names, quads, to_ras) -> tuple[dict, dict, float | None]:
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
            dname = f"{name}/{names[idx + 1]}"
            if min(dha, dhm, dhp) <= 0:
                raise ValueError(f"disc {dname} collapses (heights {dha:.1f}, {dhm:.1f}, {dhp:.1f} mm): reduce slip or angles")
            discs[dname] = DiscTruth(
                name=dname, label=disc_id(dname), anterior_height_mm=dha, middle_height_mm=dhm, posterior_height_mm=dhp,
                wedge_deg=angle_deg(low[0], low[1]) - angle_deg(q[3], q[2]), centroid_ras=to_ras(polygon_centroid(dq)),
                corners_ras=tuple(to_ras(c) for c in dq),  # type: ignore[arg-type]
            )
        vertebrae[name] = VertebraTruth(
            name=name, label=vertebra_id(name), anterior_height_mm=ha, middle_height_mm=hm, posterior_height_mm=hp,
            depth_mm=float(np.linalg.norm(p - a)), centroid_ras=to_ras(polygon_centroid(q)),
            superior_endplate_deg=angle_deg(q[0], q[1]), inferior_endplate_deg=angle_deg(q[3], q[2]),
            corners_ras=tuple(to_ras(c) for c in q), slip_mm=slip_mm, slip_percent=slip_pct,  # type: ignore[arg-type]
        )
    lordosis = None
    if "L1" in vertebrae and "S1" in vertebrae:
        lordosis = vertebrae["S1"].superior_endplate_deg - vertebrae["L1"].superior_endplate_deg
    return vertebrae, discs, lordosis
