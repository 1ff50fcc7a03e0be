"""The result of analysing a study: each series' :class:`ScanResult`, the level check and one fused grade per disc.

``to_dict`` is ``result.json``. A study of one series gives exactly its :class:`ScanResult` document.
With several series the document is that of the primary series (the T2 series, else the first analysed:
its measurements, naming and vertebrae) with, per disc, the fused grade and the ``sequences`` it used,
each series' own grade values (``grades_by_series``), and a ``study`` block listing every series
(folder ``series/<n>_<sequence>``, status, discs, warnings), the level check and what fused the grades.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lumbarkit.results.grades import CSV_COLUMNS
from lumbarkit.results.scan_result import ModelInfo, ScanResult, grade_record, levels_csv_columns
from lumbarkit.study.fuse import FusedGrades
from lumbarkit.study.inputs import SeriesRef
from lumbarkit.study.match import LevelCheck


@dataclass(frozen=True, eq=False)
class StudyResult:
    """Everything lumbarkit found on a study; ``results[i]`` is None where series ``i`` failed (``errors[i]``)."""

    refs: tuple[SeriesRef, ...]
    results: tuple[ScanResult | None, ...]
    errors: dict[int, str] = field(default_factory=dict)
    fused: FusedGrades | None = None
    check: LevelCheck = field(default_factory=LevelCheck)
    notes: tuple[str, ...] = ()
    models: tuple[ModelInfo, ...] = ()
    rsna: object | None = None  # :class:`~lumbarkit.rsna.analysis.RsnaSeverities` when an RSNA model is configured

    @property
    def single(self) -> bool:
        return len(self.refs) == 1

    @property
    def analysed(self) -> list[int]:
        return [i for i, r in enumerate(self.results) if r is not None]

    @property
    def primary(self) -> int:
        """The series whose measurements and naming the study reports: the fused T2 series, else the first analysed."""
        if self.fused is not None and "T2" in self.fused.series_used:
            return self.fused.series_used["T2"]
        sequences = [r.scan.metadata.sequence if r is not None else "" for r in self.results]
        return next((i for i in self.analysed if sequences[i] == "T2"), self.analysed[0])

    @property
    def primary_result(self) -> ScanResult:
        return self.results[self.primary]

    def sequence_of(self, i: int) -> str:
        r = self.results[i]
        return r.scan.metadata.sequence if r is not None else self.refs[i].sequence

    def folder(self, i: int) -> str:
        """``series/<n>_<sequence>``: where series ``i``'s own outputs go."""
        return f"series/{i + 1}_{self.sequence_of(i)}"

    @property
    def warnings(self) -> tuple[str, ...]:
        primary = self.primary_result.warnings
        return (*self.notes, *self.check.disagreements, *primary)

    def to_dict(self, keep_phi: bool = False) -> dict:
        doc = self.primary_result.to_dict(keep_phi)
        if self.rsna is not None:
            doc["rsna"] = self.rsna.to_dict()
        if self.single:
            return doc
        doc["models"] = doc["models"] + [m.to_dict() for m in self.models]
        doc["levels"] = self._level_records(doc["levels"])
        doc["study"] = {"series": [self._series_record(i, keep_phi) for i in range(len(self.refs))],
                        "primary_series": self.folder(self.primary), "level_check": self.check.as_dict(),
                        "fused_by": self.fused.model if self.fused is not None else "not graded"}
        doc["warnings"] = list(self.warnings)
        return doc

    def _series_record(self, i: int, keep_phi: bool) -> dict:
        r = self.results[i]
        rec: dict = {"folder": self.folder(i), "sequence": self.sequence_of(i), "status": "analysed" if r is not None else "failed"}
        if r is None:
            rec["error"] = self.errors.get(i, "")
        else:
            rec["discs"] = [d.name for d in r.levels.discs]
            rec["naming_uncertain"] = bool(r.levels.naming.uncertain) if r.levels.naming is not None else None
            rec["warnings"] = list(r.warnings)
            rec["used_for"] = sorted(ch for ch, k in (self.fused.series_used.items() if self.fused else ()) if k == i)
        if keep_phi:
            rec["series_description"] = self.refs[i].description
        return rec

    def _level_records(self, records: list[dict]) -> list[dict]:
        fused = {g.level: g for g in self.fused.grades.discs} if self.fused is not None else {}
        by_name = {r["level"]: r for r in records}
        out = []
        for name in _all_disc_names(records, fused):
            rec = dict(by_name.get(name) or {"level": name, "confidence": None, "measurements": {}})
            rec.pop("grades", None)
            rec.pop("sequences", None)
            g = fused.get(name)
            if g is not None:
                rec["sequences"] = self.fused.sequences[name]
                rec["grades"] = grade_record(g)
                rec.pop("not_graded", None)
            elif "not_graded" not in rec:
                rec["not_graded"] = "the study has no T1 or T2 series" if self.fused is None else "not graded on a T1 or T2 series"
            per_series = {self.folder(i): {t: int(v) for t, v in self.results[i].grades[name].grades.items()}
                          for i in self.analysed if self.results[i].grades is not None and name in self.results[i].grades.levels}
            if per_series:
                rec["grades_by_series"] = per_series
            if rec.get("confidence") is None:  # a disc found on another series only: its naming confidence there
                rec["confidence"] = self._confidence_elsewhere(name)
                rec["not_measured"] = "not found on the primary series (measurements come from it)"
            out.append(rec)
        return out

    def _confidence_elsewhere(self, name: str) -> float:
        found = [d.confidence for i in self.analysed for d in self.results[i].levels.discs if d.name == name]
        return round(float(max(found)), 4) if found else 0.0

    def levels_columns(self) -> list[str]:
        """The columns of :meth:`levels_rows`: the usual ones, then the RSNA severities when they were asked for."""
        extra = [f"rsna_{c}" for c in _rsna_conditions()] if self.rsna is not None else []
        return list(levels_csv_columns()) + extra

    def levels_rows(self) -> list[dict]:
        """``levels.csv``: the primary series' rows with the fused grade columns and ``sequences`` (and the RSNA
        severities of each disc when an RSNA model was configured)."""
        rows = self._levels_rows()
        if self.rsna is not None:
            rows = [{**r, **{c: "" for c in self.levels_columns()[len(levels_csv_columns()):]},
                     **self.rsna.level_columns(r["level"])} for r in rows]
        return rows

    def _levels_rows(self) -> list[dict]:
        rows = self.primary_result.levels_rows()
        if self.single:
            return rows
        fused = {g.level: g.row() for g in self.fused.grades.discs} if self.fused is not None else {}
        by_name = {r["level"]: r for r in rows}
        out = []
        for name in _all_disc_names(rows, fused):
            row = {c: "" for c in levels_csv_columns()}
            row.update(by_name.get(name, {}))
            grade_columns = fused.get(name)
            if grade_columns is not None:
                row.update(grade_columns)
                row["sequences"] = self.fused.sequences[name]
                if name not in by_name:
                    row["confidence"] = self._confidence_elsewhere(name)
            else:  # no fused grade: no single-series grade shown in its place either
                row.update({c: "" for c in CSV_COLUMNS if c != "level"})
                row["sequences"] = ""
            out.append({c: row.get(c, "") for c in levels_csv_columns()})
        return out


def _rsna_conditions() -> tuple[str, ...]:
    from lumbarkit.rsna.format import CONDITIONS

    return CONDITIONS


def _all_disc_names(records: list[dict], fused: dict) -> list[str]:
    from lumbarkit.levels import disc_id

    names = [r["level"] for r in records] + [n for n in fused if n not in {r["level"] for r in records}]
    return sorted(names, key=disc_id)

