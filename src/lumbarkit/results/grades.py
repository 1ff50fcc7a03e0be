"""Stage 5 output: per disc the class probabilities and graded value of every task, and the ``levels.csv`` grade columns."""

from __future__ import annotations

from dataclasses import dataclass, field

from lumbarkit.tasks import FINDINGS_ORDER, get_task

BINARY_COLUMNS = FINDINGS_ORDER


CSV_COLUMNS: tuple[str, ...] = (
    "level", "pfirrmann", *[f"pfirrmann_prob_{g}" for g in range(1, 6)], "ldd_3class",
    "modic", *[f"modic_prob_{g}" for g in range(4)],
    *[c for name in BINARY_COLUMNS for c in (name, f"{name}_prob")],
)


@dataclass(frozen=True)
class DiscGrade:
    """Grades of one disc: per task the class probabilities (in the task's class order) and the graded value."""

    level: str
    probabilities: dict[str, tuple[float, ...]]
    grades: dict[str, int]
    ldd: str  # "mild" / "moderate" / "severe"
    ldd_probabilities: tuple[float, float, float]

    def row(self) -> dict:
        """One ``levels.csv`` row (columns :data:`CSV_COLUMNS`)."""
        r: dict = {"level": self.level}
        if "pfirrmann" in self.grades:
            r["pfirrmann"] = self.grades["pfirrmann"]
            for g, p in zip(get_task("pfirrmann").classes, self.probabilities["pfirrmann"]):
                r[f"pfirrmann_prob_{g}"] = round(float(p), 4)
            r["ldd_3class"] = self.ldd
        if "modic" in self.grades:
            r["modic"] = self.grades["modic"]
            for g, p in zip(get_task("modic").classes, self.probabilities["modic"]):
                r[f"modic_prob_{g}"] = round(float(p), 4)
        for name in BINARY_COLUMNS:
            if name in self.grades:
                r[name] = self.grades[name]
                r[f"{name}_prob"] = round(float(self.probabilities[name][1]), 4)
        return {c: r.get(c, "") for c in CSV_COLUMNS}


@dataclass(frozen=True)
class DiscGrades:
    """Grades of every cropped disc (top to bottom), discs not graded with reasons, and provenance."""

    discs: tuple[DiscGrade, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    model_name: str = ""
    model_sha256: str = ""
    tta: bool = True
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.discs)

    def __getitem__(self, level: str) -> DiscGrade:
        for d in self.discs:
            if d.level == level:
                return d
        raise KeyError(level)

    @property
    def levels(self) -> list[str]:
        return [d.level for d in self.discs]

    def rows(self) -> list[dict]:
        return [d.row() for d in self.discs]

    def write_csv(self, path) -> None:
        """Write ``levels.csv`` (one row per disc, columns :data:`CSV_COLUMNS`)."""
        import csv

        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS))
            w.writeheader()
            w.writerows(self.rows())
