"""Vertebral bodies: fit on the mid-sagittal slice, S1 endplate fallback, fusion, canal, grading.

Part of :mod:`lumbarkit.stages.s3_measure` (see its docstring for the method).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from lumbarkit.levels import CANAL_ID, VERTEBRA_NAMES
from lumbarkit.results.measurements import (
    Measure,
    VertebraMeasurements,
    genant_grade,
    missing_measure,
)
from lumbarkit.stages.s3_measure.geometry import (
    Line2,
    Quad,
    Sampler,
    fit_quad,
    unit_vector,
)
from lumbarkit.stages.s3_measure.labels import Labels, neighbour_ids

# One logger for the whole stage, named after the public module (log output unchanged).
log = logging.getLogger("lumbarkit.stages.s3_measure")

FUSION_CONTACT_FRACTION = 0.3  # bodies touching over this fraction of the depth are "fused"


@dataclass(frozen=True)
class Endplate:
    """A superior endplate: anterior and posterior corners and its line (plane mm)."""

    sa: np.ndarray
    sp: np.ndarray
    line: Line2


@dataclass(frozen=True)
class BodyFit:
    name: str
    label: int
    k: int
    quad: Quad | None
    reason: str | None
    notes: tuple[str, ...]
    endplate: Endplate | None = None  # S1 fallback when its label is not a whole body


def fit_body(lab: Labels, label: int, k: int, u0: np.ndarray | None = None) -> tuple[Quad | None, Sampler | None, str | None]:
    """Fit ``label`` on slice ``k``: (quad, sampler, None), or (None, sampler or None, reason).

    A fit is a pure function of its arguments, so each one is made once per label map (a body is refitted with
    the same start by both motion segments it belongs to)."""
    key = ("fit_body", label, k, None if u0 is None else tuple(np.asarray(u0, dtype=float)))
    if key not in lab.memo:
        lab.memo[key] = _fit_body(lab, label, k, u0)
    return lab.memo[key]


def _fit_body(lab: Labels, label: int, k: int, u0: np.ndarray | None) -> tuple[Quad | None, Sampler | None, str | None]:
    mask, reason = lab.piece(label, k)
    if mask is None:
        return None, None, reason
    pts = lab.points(mask)
    sampler = lab.sampler(mask)
    quad = fit_quad(sampler, pts, lab.initial_direction(label, pts) if u0 is None else u0)
    if quad is None:
        return None, sampler, f"shape could not be fitted on slice {k}"
    return quad, sampler, None


def facing_endplate(lab: Labels, sampler: Sampler, above: Quad) -> Endplate | None:
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
    origin, d = np.asarray(model.origin, dtype=float), unit_vector(np.asarray(model.direction, dtype=float))
    d = lab.plane.frame(d)[0]
    if abs(d @ above.u) < math.cos(math.radians(45)):
        return None
    proj = (np.array(hits)[inliers] - origin) @ d
    return Endplate(origin + proj.min() * d, origin + proj.max() * d, (origin, d))


def _fusion(lab: Labels, label: int, k: int, quad: Quad) -> str | None:
    mask = lab.raw(label, k)
    grown = ndimage.binary_dilation(mask)
    for other in neighbour_ids(lab, label):
        contact = float((grown & lab.raw(other, k)).sum()) * lab.plane.pixel_mm
        if contact > FUSION_CONTACT_FRACTION * quad.depth_mm:
            return f"fused with {VERTEBRA_NAMES[other]} (bodies touch over {contact:.0f} mm on slice {k}, no disc space)"
    return None


def _quad_on(lab: Labels, body: BodyFit, k: int) -> Quad | None:
    """A measured body refitted on slice ``k`` (its own fit when ``k`` is its slice)."""
    if body.quad is None:
        return None
    return body.quad if k == body.k else fit_body(lab, body.label, k, body.quad.u)[0]


def fit_vertebra(lab: Labels, label: int, above: BodyFit | None) -> BodyFit:
    name = VERTEBRA_NAMES[label]
    k = lab.mid_slice(label)
    notes: list[str] = []
    box = lab.boxes[label]
    if lab.labels.shape[0] > 1 and (box[0].start == 0 or box[0].stop == lab.labels.shape[0]):
        notes.append("reaches the first/last sagittal slice: mid-sagittal slice estimated from the visible part")
    quad, sampler, reason = fit_body(lab, label, k)
    fused = None if quad is None else _fusion(lab, label, k, quad)
    if fused:
        quad, reason = None, fused
    endplate = None
    if quad is None and not fused and name == "S1" and sampler is not None and above is not None:
        above_q = _quad_on(lab, above, k) or above.quad
        endplate = facing_endplate(lab, sampler, above_q) if above_q is not None else None
        if endplate is not None:
            reason = f"{reason}: only the superior endplate (facing {above.name}) is measured"
    if reason:
        log.info("%s: %s", name, reason)
    return BodyFit(name, label, k, quad, reason, tuple(notes), endplate)


# The dural sac is a tube: on a sagittal slice a few mm off its midline its AP chord is shorter. The structure's own
# slice (a disc's centroid slice often lies lateral of the sac's midline) and its neighbours are searched and the
# widest chord is the sac's mid-sagittal AP diameter.
CANAL_SLICE_SEARCH = 1  # slices on each side


def canal_diameter(lab: Labels, k: int, centre: np.ndarray, u: np.ndarray, reach: float, who: str) -> Measure:
    """AP diameter of the canal (dural sac) behind ``centre`` along ``u``: the first contiguous run of canal on the
    line, on whichever of slice ``k`` and its neighbours gives the widest chord (the sac's mid-sagittal slice). Stenosis is
    flagged at the discs from it (:mod:`.canal`)."""
    if not lab.has_canal:
        return missing_measure("canal_ap", "mm", "no canal label (100)", k)
    best = None
    for kk in range(max(0, k - CANAL_SLICE_SEARCH), min(lab.labels.shape[0], k + CANAL_SLICE_SEARCH + 1)):
        raw = lab.raw(CANAL_ID, kk)
        if not raw.any():
            continue
        run = Sampler(raw, lab.plane).first_run(centre, u, reach)  # the sac right behind: never across a gap
        if run is not None and run[1] > 0:
            a, b = centre + max(run[0], 0.0) * u, centre + run[1] * u
            line = lab.line(f"{who} canal AP", a, b, kk)
            if best is None or line.length_mm > best.length_mm:
                best = line
    if best is None:
        return missing_measure("canal_ap", "mm", f"the mid-line does not cross the canal on slice {k}", k)
    return Measure("canal_ap", best.length_mm, "mm", best.slice_index, (best,))


def vertebra_result(lab: Labels, body: BodyFit) -> VertebraMeasurements:
    centroid = tuple(float(v) for v in lab.centroid_mm(body.label))
    k, q, n = body.k, body.quad, body.name
    if q is None:
        reason = body.reason or "not measured"
        miss = {f: missing_measure(f, u, reason, k) for f, u in _BODY_FIELDS}
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
    canal = canal_diameter(lab, k, q.centre, q.u, q.depth_mm + 60.0, n)
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
        height_loss=missing_measure("height_loss", "%", "pending"),
        genant_grade=missing_measure("genant_grade", "grade", "pending"),
        canal_ap=canal, notes=body.notes,
    )


_BODY_FIELDS = (
    ("height_anterior", "mm"), ("height_middle", "mm"), ("height_posterior", "mm"), ("depth_ap", "mm"),
    ("superior_endplate_angle", "deg"), ("inferior_endplate_angle", "deg"), ("wedge_ratio", "ratio"),
    ("biconcavity", "ratio"), ("height_loss", "%"), ("genant_grade", "grade"), ("canal_ap", "mm"),
)


# Semi-quantitative grading (Genant et al. 1993) is done on T4-L4: S1 is no body and L5's posterior height is
# naturally the shortest (on healthy volunteers' ground truth it read as Genant 1 on 5 of 54 L5s).
NOT_GRADED = ("L5", "S1")


def grade_bodies(vertebrae: list[VertebraMeasurements], lab: Labels) -> list[VertebraMeasurements]:
    """Height loss (%) and Genant grade: the larger of the body's own deformity, 1 - min(Ha, Hm) / Hp (wedge,
    biconcavity), and its crush against its neighbours, 1 - max(Ha, Hm, Hp) / mean Hp of the adjacent graded
    bodies (a lower neighbour is not a reference for a naturally smaller body above it)."""
    by_label = {v.label: v for v in vertebrae}
    out = []
    for v in vertebrae:
        if v.missing_reason or not (v.height_anterior.ok and v.height_middle.ok and v.height_posterior.ok):
            why = v.missing_reason or next(h.missing_reason for h in (v.height_anterior, v.height_middle, v.height_posterior)
                                           if not h.ok)
            out.append(replace(v, height_loss=missing_measure("height_loss", "%", why, v.slice_index),
                               genant_grade=missing_measure("genant_grade", "grade", why, v.slice_index)))
            continue
        if v.name in NOT_GRADED:
            why = f"not graded for {v.name} (vertebral morphometry covers T4-L4; L5 is naturally shorter posteriorly)"
            out.append(replace(v, height_loss=missing_measure("height_loss", "%", why, v.slice_index),
                               genant_grade=missing_measure("genant_grade", "grade", why, v.slice_index)))
            continue
        refs = [by_label[o].height_posterior.value for o in neighbour_ids(lab, v.label)
                if o in by_label and by_label[o].name not in NOT_GRADED and by_label[o].height_posterior.ok]
        ha, hm, hp = (float(h.value) for h in (v.height_anterior, v.height_middle, v.height_posterior))  # type: ignore[arg-type]
        within = 1.0 - min(ha, hm) / hp  # wedge or biconcave deformity of the body itself
        crush = 1.0 - max(ha, hm, hp) / float(np.mean(refs)) if refs else 0.0  # the whole body lower than its neighbours'
        loss = max(0.0, 100.0 * max(within, crush))
        k = v.slice_index
        out.append(replace(v, height_loss=Measure("height_loss", loss, "%", k),
                           genant_grade=Measure("genant_grade", genant_grade(loss), "grade", k)))
    return out
