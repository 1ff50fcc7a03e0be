"""Discs and motion segments: disc heights, inter-vertebral distances, slip, disc canal, lordosis.

Part of :mod:`lumbarkit.stages.s3_measure` (see its docstring for the method).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumbarkit.levels import DISC_OFFSET, VERTEBRA_NAMES, lumbar_count_of, vertebra_below, vertebra_id
from lumbarkit.results.measurements import (
    DiscMeasurements,
    Measure,
    VertebraMeasurements,
    meyerding_grade,
    missing_measure,
)
from lumbarkit.stages.s3_measure.bodies import (
    BodyFit,
    Endplate,
    canal_diameter,
    facing_endplate,
    fit_body,
)
from lumbarkit.stages.s3_measure.geometry import (
    CHORD_FRACTIONS,
    Quad,
    Sampler,
    fit_quad,
    on_line,
    unit_vector,
)
from lumbarkit.stages.s3_measure.labels import Labels, neighbour_ids

_DISC_FIELDS = (
    ("height_anterior", "mm"), ("height_middle", "mm"), ("height_posterior", "mm"), ("ivd_distance_anterior", "mm"),
    ("ivd_distance_posterior", "mm"), ("disc_height_index", "ratio"), ("slip_mm", "mm"), ("slip_percent", "%"),
    ("meyerding_grade", "grade"), ("retrolisthesis", "mm"), ("canal_ap", "mm"),
    ("canal_ratio", "ratio"),
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
        t = on_line((a, unit_vector(b - a)), base, self.v)
        if t is None:
            return None, False
        x = base + t * self.v
        return t, bool(0.0 <= (x - a) @ (b - a) <= (b - a) @ (b - a))


def _disc_frame(lab: Labels, up_q: Quad, lo: Endplate) -> _DiscFrame:
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


def _gap_chord(fr: _DiscFrame, base: np.ndarray, up_s: Sampler, lo_s: Sampler):
    """Gap between the two body masks along a chord."""
    e_up = up_s.extent(base, fr.v, fr.half, need="last")
    e_lo = lo_s.extent(base, fr.v, fr.half, need="first")
    t0 = _end(e_up[1] if e_up is not None else None, fr.endplate_hit(base, "upper"))
    t1 = _end(e_lo[0] if e_lo is not None else None, fr.endplate_hit(base, "lower"))
    if t0 is None or t1 is None or t1 <= t0:
        return None
    return base + t0 * fr.v, base + t1 * fr.v


def _disc_chord(fr: _DiscFrame, base: np.ndarray, disc_s: Sampler):
    """Disc mask extent along a chord."""
    ext = disc_s.extent(base, fr.v, fr.half)
    if ext is None:
        return None
    t0 = _end(ext[0], fr.endplate_hit(base, "upper"))
    t1 = _end(ext[1], fr.endplate_hit(base, "lower"))
    if t0 is None or t1 is None or t1 <= t0:
        return None
    return base + t0 * fr.v, base + t1 * fr.v


def _chord_measures(lab: Labels, names: tuple[str, ...], fields: tuple[str, ...], chords, k: int, what: str) -> dict[str, Measure]:
    out = {}
    for f, h, g in zip(fields, names, chords):
        if g is None:
            out[f] = missing_measure(f, "mm", "the chord does not meet the disc or both bodies", k)
        else:
            line = lab.line(f"{what} {h}", g[0], g[1], k)
            out[f] = Measure(f, line.length_mm, "mm", k, (line,))
    return out


# Lower / upper endplate length below which a slip has no trustworthy reference (the lower body is only partly
# segmented). On the 302 ground-truth disc levels of vb1/vb2/vb3 the ratio is >= 0.77 (1st percentile 0.83;
# `python benchmarks/endplate_ratio.py`); a partly segmented sacrum on the demo phantom gave 0.76 and a -39 % "slip".
MIN_ENDPLATE_RATIO = 0.8
SLIP_FIELDS = (("slip_mm", "mm"), ("slip_percent", "%"), ("meyerding_grade", "grade"), ("retrolisthesis", "mm"))
MAX_ENDPLATE_RATIO = 1.3  # above it the lower endplate runs into other tissue (ground truth: max 1.28, p99 1.21)


def _slip(lab: Labels, up_q: Quad, lo: Endplate, k: int, name: str) -> dict[str, Measure]:
    """Offset of the upper body's IP corner along the lower body's superior endplate (SA -> SP)."""
    length = float(np.linalg.norm(lo.sp - lo.sa))
    upper_length = float(np.linalg.norm(up_q.corners[2] - up_q.corners[3]))
    ratio = length / max(upper_length, 1e-6)
    if not MIN_ENDPLATE_RATIO <= ratio <= MAX_ENDPLATE_RATIO:  # a partly segmented lower body: no reference for the slip
        why = (f"the lower body's superior endplate ({length:.0f} mm) is much shorter than the upper body's inferior "
               f"endplate ({upper_length:.0f} mm): lower body only partly segmented" if ratio < 1 else
               f"the lower body's superior endplate ({length:.0f} mm) is much longer than the upper body's inferior "
               f"endplate ({upper_length:.0f} mm): the lower body's mask runs beyond the bone")
        return {f: missing_measure(f, u, why, k) for f, u in SLIP_FIELDS}
    e = (lo.sp - lo.sa) / length
    offset = float((lo.sp - up_q.corners[2]) @ e)
    pct = 100.0 * offset / length
    line = lab.line(f"{name} slip", lo.sp, lo.sp - offset * e, k)
    return {
        "slip_mm": Measure("slip_mm", offset, "mm", k, (line,)),
        "slip_percent": Measure("slip_percent", pct, "%", k, (line,)),
        "meyerding_grade": Measure("meyerding_grade", meyerding_grade(pct), "grade", k),
        "retrolisthesis": Measure("retrolisthesis", max(0.0, -offset), "mm", k, (line,) if offset < 0 else ()),
    }


def _segment_slice(lab: Labels, did: int, upper: BodyFit | None, lower: BodyFit | None) -> int | None:
    if did in lab.discs:
        return lab.mid_slice(did)
    if upper is not None and lower is not None:
        return int(round((upper.k + lower.k) / 2))
    return None


def _segment_bodies(lab: Labels, upper: BodyFit | None, lower: BodyFit | None, names: tuple[str, str], k: int):
    """Both bodies on slice ``k``: (upper quad, its sampler, lower endplate, its sampler, reason)."""
    bad = [(b, nm) for b, nm in zip((upper, lower), names) if b is None or (b.quad is None and b.endplate is None)]
    if bad or upper is None or lower is None or upper.quad is None:
        bad = bad or [(upper, names[0])]
        return None, None, None, None, "; ".join(f"{nm} not measured ({b.reason})" if b is not None else f"{nm} not labelled" for b, nm in bad)
    up_q, up_s, r1 = fit_body(lab, upper.label, k, upper.quad.u)
    if up_q is None:
        return None, None, None, None, f"{upper.name} not measurable on slice {k}: {r1}"
    lo_q, lo_s, r2 = fit_body(lab, lower.label, k, lower.quad.u if lower.quad is not None else None)
    if lo_q is not None:
        lo_ep = Endplate(lo_q.corners[0], lo_q.corners[1], lo_q.superior)
    elif lower.name == "S1" and lo_s is not None:
        lo_ep = facing_endplate(lab, lo_s, up_q)
    else:
        lo_ep = None
    if lo_ep is None:
        return None, None, None, None, f"{lower.name} not measurable on slice {k}: {r2}"
    return up_q, up_s, lo_ep, lo_s, None


MAX_DISC_HEIGHT_MM = 25.0  # taller "discs" mean a vertebral body between the two was missed


def measure_motion_segment(lab: Labels, upper: BodyFit | None, lower: BodyFit | None, up_name: str, lo_name: str,
             body_results: dict[str, VertebraMeasurements]) -> DiscMeasurements:
    name = f"{up_name}/{lo_name}"
    did = DISC_OFFSET + vertebra_id(up_name)
    k = _segment_slice(lab, did, upper, lower)
    if k is None:
        reason = "neither a disc label nor both adjacent bodies"
        return DiscMeasurements(name, up_name, lo_name, did, None, "", **{f: missing_measure(f, u, reason) for f, u in _DISC_FIELDS},  # type: ignore[arg-type]
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
                dq = fit_quad(disc_s, lab.points(mask), lab.initial_direction(did, lab.points(mask)))
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
    tallest = max((m[f].value for f in (*heights, "ivd_distance_anterior", "ivd_distance_posterior") if f in m and m[f].ok), default=0.0)
    if tallest > MAX_DISC_HEIGHT_MM:  # no lumbar disc is this tall: a body between the two is missing from the labels
        implausible = (f"implausible disc height {tallest:.0f} mm (> {MAX_DISC_HEIGHT_MM:.0f}): "
                       "a vertebral body between these two is probably not segmented")
        for f in (*heights, "ivd_distance_anterior", "ivd_distance_posterior", *(f for f, _ in SLIP_FIELDS)):
            m.pop(f, None)
        disc_reason = body_reason = implausible
        centre = None
    hs = [m.get(f) for f in heights]
    body_hm = [body_results.get(up_name), body_results.get(lo_name)]
    if all(h is not None and h.ok for h in hs) and all(b is not None and b.height_middle.ok for b in body_hm):
        dhi = float(np.mean([h.value for h in hs])) / float(np.mean([b.height_middle.value for b in body_hm]))  # type: ignore[union-attr,misc]
        m["disc_height_index"] = Measure("disc_height_index", dhi, "ratio", k)
    if centre is not None and u_mid is not None:
        m["canal_ap"] = canal_diameter(lab, k, centre, u_mid, 100.0, name)
    for f, unit in _DISC_FIELDS:
        if f not in m:
            if f in heights:
                why = disc_reason or body_reason or "not measurable"
            elif f == "disc_height_index":
                why = "needs the three disc heights and both bodies' Hm"
            elif f == "canal_ratio":
                why = m["canal_ap"].missing_reason or "needs the dural sac at the disc and behind an adjacent body"
            elif f == "canal_ap":
                why = "disc not measured"
            else:
                why = body_reason or "not measurable"
            m[f] = missing_measure(f, unit, why, k)
    missing = None if any(x.ok for x in m.values()) else (disc_reason or body_reason or "not measurable")
    return DiscMeasurements(name, up_name, lo_name, did, k, source, **m, missing_reason=missing)  # type: ignore[arg-type]


def pairs(lab: Labels) -> list[tuple[str, str]]:
    """(upper, lower) names of every segment with both bodies or a disc label."""
    out = set()
    for i in lab.vertebrae:
        for j in neighbour_ids(lab, i):
            if j > i:
                out.add((VERTEBRA_NAMES[i], VERTEBRA_NAMES[j]))
    lumbar = lumbar_count_of([*lab.vertebrae, *lab.discs])
    for d in lab.discs:
        upper = VERTEBRA_NAMES[d - DISC_OFFSET]
        out.add((upper, vertebra_below(upper, lumbar)))
    return sorted(out, key=lambda p: vertebra_id(p[0]))


def measure_lordosis(vertebrae: dict[str, VertebraMeasurements]) -> tuple[Measure, str | None]:
    l1 = vertebrae.get("L1")
    if l1 is None or not l1.superior_endplate_angle.ok:
        return missing_measure("lordosis", "deg", "L1 superior endplate not measured"), None
    top = l1.superior_endplate_angle
    s1 = vertebrae.get("S1")
    if s1 is not None and s1.superior_endplate_angle.ok:
        bottom, method = s1.superior_endplate_angle, "L1-S1"
    else:
        l5 = vertebrae.get("L5")
        if l5 is None or not l5.inferior_endplate_angle.ok:
            return missing_measure("lordosis", "deg", "neither the S1 superior nor the L5 inferior endplate is measured"), None
        bottom, method = l5.inferior_endplate_angle, "L1-L5 (S1 not measured)"
    value = float(bottom.value) - float(top.value)  # type: ignore[arg-type]
    return Measure("lordosis", value, "deg", top.slice_index, top.lines + bottom.lines), method
