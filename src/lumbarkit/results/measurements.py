"""Stage 3 output: measurement records (value, line, body, disc, spine), clinical grades and CSV table rows.

Produced by :mod:`lumbarkit.stages.s3_measure` (see its docstring for the method).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from lumbarkit.levels import vertebra_id

Point3 = tuple[float, float, float]

SLIP_NONE_PERCENT = 8.0  # anterior slip below this (~3 mm on a 35 mm body) is no listhesis: Meyerding grade 0
# Retrolisthesis is reported in mm, not graded by Meyerding (who graded anterior slips); flagged from 3 mm, the usual
# radiological threshold (e.g. Shen et al. 2007, Spine 32:E446). Ground-truth masks: posterior offset median 1.6 mm,
# p99 5.6 mm (`python benchmarks/measure_ranges.py`; lower bodies are larger), so the flag fires on 7 % (vb2) and
# 26 % (vb3) of healthy levels (`python benchmarks/flag_rates.py`): a finding to read, not a grade.
RETRO_FLAG_MM = 3.0
GENANT_THRESHOLDS = (20.0, 25.0, 40.0)  # height loss % where grades 1, 2, 3 start
# Central stenosis at a disc, from the segmented dural sac (not the bony canal, for which 10/13 mm were set): the sac's
# AP diameter at the disc AND its narrowing against the sac behind the adjacent bodies (a focal compression). On the
# predicted masks of healthy volunteers (vb2, ivd) these flag 0 % absolute / 0-2 % relative; on SPIDER back-pain
# patients' ground truth the AP alone is < 8 mm at 6-16 % and < 10 mm at 20-38 % of discs, against population
# prevalence of ~7 % absolute and ~20 % relative stenosis (Kalichman et al. 2009). `python benchmarks/flag_rates.py`
# prints all of these (columns sac<8mm, sac<10mm, absolute, relative).
CANAL_ABSOLUTE_MM = 8.0  # sac AP at the disc below this ...
CANAL_ABSOLUTE_RATIO = 0.5  # ... and below half the sac behind the adjacent bodies: absolute central stenosis
CANAL_RELATIVE_MM = 10.0  # below this ...
CANAL_RELATIVE_RATIO = 0.67  # ... and narrowed by a third: relative central stenosis

CSV_COLUMNS = (
    "vertebra", "label", "slice_index",
    "height_anterior_mm", "height_middle_mm", "height_posterior_mm", "depth_ap_mm",
    "superior_endplate_deg", "inferior_endplate_deg", "wedge_ratio", "biconcavity_ratio",
    "height_loss_percent", "genant_grade", "slip_percent", "slip_mm", "meyerding_grade", "retrolisthesis_mm",
    "canal_ap_mm", "canal_stenosis", "disc", "disc_slice_index", "disc_source",
    "disc_height_anterior_mm", "disc_height_middle_mm", "disc_height_posterior_mm",
    "ivd_distance_anterior_mm", "ivd_distance_posterior_mm", "disc_height_index",
    "disc_canal_ap_mm", "disc_canal_ratio", "disc_canal_stenosis", "centroid_r_mm", "centroid_a_mm", "centroid_s_mm",
    "missing_reason", "notes",
)


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class MeasuredLine:
    """A measured segment: RAS mm endpoints on one canonical slice."""

    name: str  # e.g. "L3 Ha", "L4/L5 disc Hm", "L4/L5 slip"
    start_mm: Point3
    end_mm: Point3
    length_mm: float
    slice_index: int


@dataclass(frozen=True)
class Measure:
    """One value with its unit ("mm", "deg", "%", "ratio", "grade"), slice and measured lines.

    ``value`` is ``None`` when it could not be measured; ``missing_reason`` says why.
    """

    name: str
    value: float | None
    unit: str
    slice_index: int | None = None
    lines: tuple[MeasuredLine, ...] = ()
    missing_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None


def missing_measure(name: str, unit: str, reason: str, slice_index: int | None = None) -> Measure:
    return Measure(name, None, unit, slice_index, (), reason)


@dataclass(frozen=True)
class VertebraMeasurements:
    """One vertebral body on its mid-sagittal slice. Heights/depth mm, angles deg, loss %."""

    name: str
    label: int
    slice_index: int | None
    centroid_mm: Point3 | None  # 3D centroid of the whole label, RAS
    corners_mm: tuple[Point3, Point3, Point3, Point3] | None  # SA, SP, IP, IA on slice_index
    height_anterior: Measure
    height_middle: Measure
    height_posterior: Measure
    depth_ap: Measure
    superior_endplate_angle: Measure
    inferior_endplate_angle: Measure
    wedge_ratio: Measure
    biconcavity: Measure
    height_loss: Measure
    genant_grade: Measure
    canal_ap: Measure
    canal_stenosis: str | None = None  # "absolute", "relative", "none"; None if not measured
    missing_reason: str | None = None  # why the body as a whole is not measured
    notes: tuple[str, ...] = ()

    def measures(self) -> tuple[Measure, ...]:
        return (
            self.height_anterior, self.height_middle, self.height_posterior, self.depth_ap,
            self.superior_endplate_angle, self.inferior_endplate_angle, self.wedge_ratio,
            self.biconcavity, self.height_loss, self.genant_grade, self.canal_ap,
        )


@dataclass(frozen=True)
class DiscMeasurements:
    """The disc (motion segment) between two bodies, measured on one slice."""

    name: str  # "L4/L5"
    upper: str
    lower: str
    label: int
    slice_index: int | None
    source: str  # "disc mask" or "vertebral bodies" (gap between them); "" when not measured
    height_anterior: Measure
    height_middle: Measure
    height_posterior: Measure
    ivd_distance_anterior: Measure
    ivd_distance_posterior: Measure
    disc_height_index: Measure
    slip_mm: Measure
    slip_percent: Measure
    meyerding_grade: Measure  # anterolisthesis only
    retrolisthesis: Measure  # posterior offset of the upper body in mm (0 for an anterior slip)
    canal_ap: Measure
    canal_ratio: Measure  # canal_ap / the sac's AP behind the adjacent bodies (median of those measured)
    canal_stenosis: str | None = None
    missing_reason: str | None = None

    def measures(self) -> tuple[Measure, ...]:
        return (
            self.height_anterior, self.height_middle, self.height_posterior, self.ivd_distance_anterior,
            self.ivd_distance_posterior, self.disc_height_index, self.slip_mm, self.slip_percent,
            self.meyerding_grade, self.retrolisthesis, self.canal_ap, self.canal_ratio,
        )


@dataclass(frozen=True)
class SpineMeasurements:
    """All measurements of one scan: bodies top to bottom, discs, lumbar lordosis."""

    vertebrae: tuple[VertebraMeasurements, ...]
    discs: tuple[DiscMeasurements, ...]
    lordosis: Measure
    lordosis_method: str | None = None  # "L1-S1" or "L1-L5 (S1 not measured)"

    @property
    def lordosis_deg(self) -> float | None:
        return self.lordosis.value

    def vertebra(self, name: str) -> VertebraMeasurements | None:
        return next((v for v in self.vertebrae if v.name == name), None)

    def disc(self, name: str) -> DiscMeasurements | None:
        return next((d for d in self.discs if d.name == name), None)

    def lines(self) -> Iterator[tuple[str, MeasuredLine]]:
        """Every measured line with the name of the measure it belongs to."""
        groups: list[Iterable[Measure]] = [v.measures() for v in self.vertebrae]
        groups += [d.measures() for d in self.discs]
        groups.append([self.lordosis])
        for group in groups:
            for m in group:
                for line in m.lines:
                    yield m.name, line

    def to_rows(self) -> list[dict]:
        """One row per vertebra (and per disc whose upper body is not labelled), CSV_COLUMNS keys."""
        return _rows(self)

    def to_dict(self) -> dict:
        """Plain-JSON form (lists, floats, None)."""
        from dataclasses import asdict

        return asdict(self)


Measurements = SpineMeasurements


# ---------------------------------------------------------------- grades


def genant_grade(height_loss_percent: float) -> int:
    """Genant semi-quantitative grade: 0 (<20 %), 1 (20-25 %), 2 (25-40 %), 3 (>40 %)."""
    return int(sum(height_loss_percent >= t for t in GENANT_THRESHOLDS))


def meyerding_grade(slip_percent: float) -> int:
    """Meyerding grade of an anterior slip %: 0 none (< SLIP_NONE_PERCENT, or a posterior slip: retrolisthesis is
    reported in mm instead), I <=25, II <=50, III <=75, IV <=100, V >100."""
    s = float(slip_percent)
    if s < SLIP_NONE_PERCENT:
        return 0
    return 1 + int(sum(s > t for t in (25.0, 50.0, 75.0, 100.0)))


def canal_stenosis(ap_mm: float, ratio: float) -> str:
    """Central stenosis at a disc from the dural sac's AP diameter there (mm) and its ratio to the sac's AP behind the
    adjacent bodies: "absolute" (< 8 mm and < 0.5), "relative" (< 10 mm and < 0.67) or "none"."""
    if ap_mm < CANAL_ABSOLUTE_MM and ratio < CANAL_ABSOLUTE_RATIO:
        return "absolute"
    return "relative" if ap_mm < CANAL_RELATIVE_MM and ratio < CANAL_RELATIVE_RATIO else "none"


# ---------------------------------------------------------------- table rows


def _fmt(m: Measure | None, digits: int = 2):
    if m is None or m.value is None:
        return ""
    return int(m.value) if m.unit == "grade" else round(float(m.value), digits)


def _reasons(prefix: str, measures: Iterable[Measure]) -> list[str]:
    """``"<prefix> a, b: reason"`` per distinct reason (``"<prefix> all but c: ..."`` when shorter)."""
    measures = list(measures)
    seen: dict[str, list[str]] = {}
    for m in measures:
        if m.missing_reason:
            seen.setdefault(m.missing_reason, []).append(m.name)
    out = []
    for reason, names in seen.items():
        others = [m.name for m in measures if m.name not in names]
        what = ", ".join(names) if len(names) <= len(others) + 1 else ("all but " + ", ".join(others) if others else "all")
        out.append(f"{prefix} {what}: {reason}")
    return out


def _rows(sm: SpineMeasurements) -> list[dict]:
    discs_by_upper = {d.upper: d for d in sm.discs}
    names = [v.name for v in sm.vertebrae] + [d.upper for d in sm.discs if sm.vertebra(d.upper) is None]
    rows = []
    for name in sorted(set(names), key=vertebra_id):
        v, d = sm.vertebra(name), discs_by_upper.get(name)
        row = {c: "" for c in CSV_COLUMNS}
        row["vertebra"] = name
        reasons: list[str] = []
        if v is None:
            reasons.append("body: not labelled")
        else:
            row.update(
                label=v.label, slice_index=v.slice_index if v.slice_index is not None else "",
                height_anterior_mm=_fmt(v.height_anterior), height_middle_mm=_fmt(v.height_middle),
                height_posterior_mm=_fmt(v.height_posterior), depth_ap_mm=_fmt(v.depth_ap),
                superior_endplate_deg=_fmt(v.superior_endplate_angle), inferior_endplate_deg=_fmt(v.inferior_endplate_angle),
                wedge_ratio=_fmt(v.wedge_ratio, 3), biconcavity_ratio=_fmt(v.biconcavity, 3),
                height_loss_percent=_fmt(v.height_loss, 1), genant_grade=_fmt(v.genant_grade),
                canal_ap_mm=_fmt(v.canal_ap), canal_stenosis=v.canal_stenosis or "", notes="; ".join(v.notes),
            )
            if v.centroid_mm is not None:
                row.update(centroid_r_mm=round(v.centroid_mm[0], 2), centroid_a_mm=round(v.centroid_mm[1], 2),
                           centroid_s_mm=round(v.centroid_mm[2], 2))
            if v.missing_reason:
                reasons.append(f"body: {v.missing_reason}")
            else:
                reasons += _reasons("body", [m for m in v.measures() if not (m.name in ("canal_ap", "canal_ratio") and "no canal label" in (m.missing_reason or ""))])
        if d is not None:
            row.update(
                disc=d.name, disc_slice_index=d.slice_index if d.slice_index is not None else "", disc_source=d.source,
                slip_percent=_fmt(d.slip_percent, 1), slip_mm=_fmt(d.slip_mm), meyerding_grade=_fmt(d.meyerding_grade),
                retrolisthesis_mm=_fmt(d.retrolisthesis),
                disc_height_anterior_mm=_fmt(d.height_anterior), disc_height_middle_mm=_fmt(d.height_middle),
                disc_height_posterior_mm=_fmt(d.height_posterior), ivd_distance_anterior_mm=_fmt(d.ivd_distance_anterior),
                ivd_distance_posterior_mm=_fmt(d.ivd_distance_posterior), disc_height_index=_fmt(d.disc_height_index, 3),
                disc_canal_ap_mm=_fmt(d.canal_ap), disc_canal_ratio=_fmt(d.canal_ratio, 3),
                disc_canal_stenosis=d.canal_stenosis or "",
            )
            if d.missing_reason:
                reasons.append(f"disc {d.name}: {d.missing_reason}")
            else:
                reasons += _reasons(f"disc {d.name}", [m for m in d.measures() if not (m.name in ("canal_ap", "canal_ratio") and "no canal label" in (m.missing_reason or ""))])
        row["missing_reason"] = "; ".join(reasons)
        rows.append(row)
    return rows
