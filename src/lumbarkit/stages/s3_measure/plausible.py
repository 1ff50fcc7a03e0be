"""Physiological ranges of the measured values: outside its range a value is missing with a reason, never a number.

Each range holds the 1st-99th percentiles, and nearly all values, measured on the ground-truth masks of
``../shared/data`` (vb1/vb2/vb3: 358 bodies and 302 disc levels; SPIDER T2-SPACE: 165 discs with a dural
sac; ``python benchmarks/measure_ranges.py`` prints min, p1, median, p99 and max of each) and the adult
ranges in the literature cited beside it, so a real spine, fractured or slipped, stays inside; a value
outside comes from a segmentation error (a line run into the posterior elements, a sliver of canal). Two
ground-truth values fall outside: a 0.2 mm sac (a sliver of the SPIDER canal mask) and one biconcavity of 2.2.
Angles of single endplates depend on how the patient lies and have no range.
"""

from __future__ import annotations

from dataclasses import replace

from lumbarkit.results.measurements import (
    DiscMeasurements,
    Measure,
    VertebraMeasurements,
    missing_measure,
)

# name -> (low, high, source); units as the measure's (mm, %, ratio, deg)
RANGES: dict[str, tuple[float, float, str]] = {
    "height_anterior": (5.0, 45.0, "GT bodies 8.1-34.9 mm; adult lumbar bodies 24-32 mm (Zhou et al. 2000, Eur Spine J 9:242), crush fractures to ~1/4"),
    "height_middle": (5.0, 45.0, "GT bodies 16.1-30.8 mm"),
    "height_posterior": (5.0, 45.0, "GT bodies 12.0-32.9 mm"),
    "depth_ap": (20.0, 60.0, "GT bodies (T10-S1) 23.4-46.3 mm; adult lumbar endplate depth 30-45 mm (Zhou et al. 2000)"),
    "wedge_ratio": (0.3, 1.6, "GT 0.68-1.42"),
    "biconcavity": (0.3, 1.5, "GT p1-p99 0.77-1.16 (one outlier 2.2): a middle 1.5 times the posterior height is no body"),
    "disc_height_index": (0.02, 1.0, "GT 0.12-0.76"),
    "slip_percent": (-50.0, 100.0, "GT -29.6 to +36.5 %; Meyerding grade V (> 100 %) spondyloptosis is not measured"),
    "slip_mm": (-20.0, 40.0, "GT -9.1 to +12.3 mm"),
    "retrolisthesis": (0.0, 20.0, "GT up to 9.1 mm"),
    "canal_ap": (2.0, 25.0, "GT dural sac at discs p1-p99 3.8-17.7 mm; adult lumbar dural sac AP ~10-18 mm (Hamanishi et al. 1994)"),
    "canal_ratio": (0.1, 2.5, "sac at a disc vs behind the adjacent bodies; GT-free: a sac 2.5 times wider at the disc is a mis-segmentation"),
    "lordosis": (-30.0, 100.0, "GT L1-S1 17.6-67.5 deg; healthy adults 20-80 deg (Been & Kalichman 2014)"),
}
DEPENDENTS = {"slip_percent": ("slip_mm", "meyerding_grade", "retrolisthesis"), "slip_mm": ("slip_percent", "meyerding_grade", "retrolisthesis"),
              "height_anterior": ("height_loss", "genant_grade", "wedge_ratio"), "height_middle": ("height_loss", "genant_grade", "biconcavity"),
              "height_posterior": ("height_loss", "genant_grade", "wedge_ratio", "biconcavity"),
              # a body fitted far too shallow is a partial segmentation: its heights are not the body's either
              "depth_ap": ("height_anterior", "height_middle", "height_posterior", "wedge_ratio", "biconcavity",
                           "height_loss", "genant_grade")}


def check(m: Measure) -> Measure:
    """``m`` itself when inside its range (or without one), else missing with the reason."""
    if not m.ok or m.name not in RANGES:
        return m
    low, high, _ = RANGES[m.name]
    if low <= float(m.value) <= high:
        return m
    return missing_measure(m.name, m.unit, f"implausible {m.name} {m.value:.3g} {m.unit} (outside {low:g}..{high:g}): "
                           "probably a segmentation error", m.slice_index)


def _gated(record, fields: list[str]) -> dict[str, Measure]:
    """The measures of ``record`` refused by their range, with the values computed from them refused too."""
    out: dict[str, Measure] = {}
    for f in fields:
        m = getattr(record, f)
        g = check(m)
        if g is not m:
            out[f] = g
            for dep in DEPENDENTS.get(m.name, ()):
                if hasattr(record, dep) and getattr(record, dep).ok:
                    d = getattr(record, dep)
                    out.setdefault(dep, missing_measure(d.name, d.unit, f"depends on {g.missing_reason}", d.slice_index))
    return out


def gate_vertebra(v: VertebraMeasurements) -> VertebraMeasurements:
    """The body with every out-of-range value (and what was computed from it) missing."""
    fields = ["height_anterior", "height_middle", "height_posterior", "depth_ap", "wedge_ratio", "biconcavity", "canal_ap"]
    return replace(v, **_gated(v, fields))


def gate_disc(d: DiscMeasurements) -> DiscMeasurements:
    """The disc with every out-of-range value (and what was computed from it) missing."""
    # the canal flag is set after the gate, from the gated values (canal.py)
    return replace(d, **_gated(d, ["disc_height_index", "slip_percent", "slip_mm", "retrolisthesis", "canal_ap"]))
