"""The result of analysing one scan, and its plain-JSON / CSV forms.

:class:`ScanResult` holds every stage's output (levels, grades, measurements, hotspots). Its
``to_dict`` is the ``result.json`` document (see ``schemas/result.schema.json``): deterministic
for a given input and configuration (no timestamps, no paths, floats rounded) and free of
patient identifiers unless ``keep_phi`` is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lumbarkit.results.crops import DiscCrops
from lumbarkit.results.grades import CSV_COLUMNS, DiscGrades
from lumbarkit.results.levels import Levels
from lumbarkit.results.measurements import SpineMeasurements
from lumbarkit.scan import Scan
from lumbarkit.version import __version__

SCHEMA_VERSION = "1.2"  # 1.1: spine.naming; 1.2: levels[].sequences, study
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "result.schema.json"
DISC_MEASURE_COLUMNS = (
    "disc_height_anterior_mm", "disc_height_middle_mm", "disc_height_posterior_mm",
    "ivd_distance_anterior_mm", "ivd_distance_posterior_mm", "disc_height_index",
    "slip_percent", "slip_mm", "meyerding_grade", "retrolisthesis_mm", "disc_canal_ap_mm", "disc_canal_ratio", "disc_canal_stenosis",
)
RESEARCH_NOTICE = "Research use only. Not a medical device and not a diagnosis."
DIGITS = 4


@dataclass(frozen=True)
class ModelInfo:
    """Provenance of one model used in the analysis."""

    stage: str  # "segmentation" or "grading"
    name: str
    version: str
    sha256: str

    def to_dict(self) -> dict:
        return {"stage": self.stage, "name": self.name, "version": self.version, "sha256": self.sha256}


@dataclass(frozen=True, eq=False)
class ScanResult:
    """Everything lumbarkit found on one scan.

    ``grades`` is None when no grader model is installed; ``hotspots`` maps ``(disc, task)`` to
    a crop-grid evidence map in [0, 1] (see :mod:`lumbarkit.stages.s6_hotspots`).
    """

    scan: Scan
    levels: Levels
    measurements: SpineMeasurements | None = None  # None when the pipeline stopped before measuring
    grades: DiscGrades | None = None
    crops: DiscCrops | None = None
    hotspots: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    models: tuple[ModelInfo, ...] = ()
    warnings: tuple[str, ...] = ()
    timings_s: dict = field(default_factory=dict)  # wall time per stage; not part of result.json
    identifiers: dict = field(default_factory=dict)  # patient identifiers, only written with keep_phi

    # ---------------------------------------------------------------- JSON

    def input_summary(self, keep_phi: bool = False) -> dict:
        s = self.scan
        meta = s.metadata
        out = {
            "shape": [int(v) for v in s.shape],
            "spacing_mm": [_round(v) for v in s.spacing_mm],
            "orientation": s.orientation,
            "source_format": meta.source_format,
            "sequence": meta.sequence,
            "manufacturer": meta.manufacturer,
            "field_strength_t": meta.field_strength_t,
            "single_slice": bool(s.is_single_slice),
        }
        if keep_phi:
            out["series_description"] = meta.series_description
            out["identifiers"] = dict(sorted(self.identifiers.items()))
        return out

    def level_records(self) -> list[dict]:
        """One record per named disc: confidence, grades with probabilities, disc measurements."""
        conf = {i.name: i.confidence for i in self.levels.discs}
        names = [i.name for i in self.levels.discs]
        graded = {d.level: d for d in self.grades.discs} if self.grades is not None else {}
        skipped = dict(self.grades.skipped) if self.grades is not None else {}
        out = []
        for name in names:
            rec: dict = {"level": name, "confidence": _round(conf.get(name))}
            g = graded.get(name)
            if g is not None:
                rec["sequences"] = self.sequences_label
                rec["grades"] = grade_record(g)
            elif name in skipped:
                rec["not_graded"] = skipped[name]
            d = self.measurements.disc(name) if self.measurements is not None else None
            rec["measurements"] = _measures(d.measures()) if d is not None else {}
            if d is not None:
                rec["measured_from"] = d.source
                if d.canal_stenosis:
                    rec["canal_stenosis"] = d.canal_stenosis
                if d.missing_reason:
                    rec["not_measured"] = d.missing_reason
            out.append(rec)
        return out

    @property
    def sequences_label(self) -> str:
        """The sequence the grades of this scan come from, as ``levels.csv`` ``sequences`` names it (``T2``, ``T1``, ...)."""
        return sequence_label(self.scan.metadata.sequence)

    def vertebra_records(self) -> list[dict]:
        conf = {i.name: i.confidence for i in self.levels.vertebrae}
        out = []
        for v in (self.measurements.vertebrae if self.measurements is not None else ()):
            rec = {"name": v.name, "label": int(v.label), "confidence": _round(conf.get(v.name)),
                   "measurements": _measures(v.measures())}
            if v.canal_stenosis:
                rec["canal_stenosis"] = v.canal_stenosis
            if v.missing_reason:
                rec["not_measured"] = v.missing_reason
            if v.notes:
                rec["notes"] = list(v.notes)
            out.append(rec)
        return out

    def to_dict(self, keep_phi: bool = False) -> dict:
        """The ``result.json`` document."""
        m = self.measurements
        return {
            "schema_version": SCHEMA_VERSION,
            "lumbarkit_version": __version__,
            "notice": RESEARCH_NOTICE,
            "models": [mi.to_dict() for mi in self.models],
            "input": self.input_summary(keep_phi),
            "levels": self.level_records(),
            "vertebrae": self.vertebra_records(),
            "spine": {
                "sacrum_found": bool(self.levels.sacrum_found),
                "naming": self.levels.naming.as_dict() if self.levels.naming is not None else None,
                "lordosis": _measure(m.lordosis) if m is not None else None,
                "lordosis_method": m.lordosis_method if m is not None else None,
                "tta": bool(self.grades.tta) if self.grades is not None else None,
            },
            "warnings": list(self.warnings),
        }

    # ---------------------------------------------------------------- CSV

    def levels_rows(self) -> list[dict]:
        """``levels.csv``: one row per disc, the grading columns plus confidence and disc measurements."""
        graded = {d.level: d.row() for d in self.grades.discs} if self.grades is not None else {}
        by_disc = {r["disc"]: r for r in self.vertebrae_rows() if r.get("disc")}
        rows = []
        for inst in self.levels.discs:
            row = {c: "" for c in levels_csv_columns()}
            row.update(graded.get(inst.name, {}))
            row["level"] = inst.name
            row["sequences"] = self.sequences_label if inst.name in graded else ""
            row["confidence"] = _round(inst.confidence)
            row["naming_uncertain"] = bool(self.levels.naming.uncertain) if self.levels.naming is not None else ""
            mrow = by_disc.get(inst.name, {})
            for c in DISC_MEASURE_COLUMNS:
                row[c] = mrow.get(c, "")
            rows.append({c: row.get(c, "") for c in levels_csv_columns()})
        return rows

    def vertebrae_rows(self) -> list[dict]:
        """``vertebrae.csv``: the measurement rows (none before the measure stage ran)."""
        return self.measurements.to_rows() if self.measurements is not None else []


def levels_csv_columns() -> tuple[str, ...]:
    return (*CSV_COLUMNS, "sequences", "confidence", "naming_uncertain", *DISC_MEASURE_COLUMNS)


def grade_record(g) -> dict:
    """``result.json`` grades of one :class:`DiscGrade`: per task the value and rounded probabilities, and the 3-class LDD."""
    rec = {task: {"value": int(g.grades[task]), "probabilities": [_round(p) for p in g.probabilities[task]]} for task in sorted(g.grades)}
    if g.ldd:
        rec["ldd_3class"] = {"value": g.ldd, "probabilities": [_round(p) for p in g.ldd_probabilities]}
    return rec


def sequence_label(sequence: str) -> str:
    """How ``sequences`` names a series' sequence: T2 SPACE counts as T2 (the fused grader's T2 channel)."""
    return "T2" if sequence == "T2_SPACE" else sequence


def _round(v):
    if v is None:
        return None
    f = float(v)
    return None if not np.isfinite(f) else round(f, DIGITS)


def _measure(m) -> dict:
    out = {"value": _round(m.value), "unit": m.unit}
    if m.missing_reason:
        out["missing_reason"] = m.missing_reason
    return out


def _measures(measures) -> dict:
    return {m.name: _measure(m) for m in measures}
