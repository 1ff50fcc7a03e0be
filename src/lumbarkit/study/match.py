"""Levels matched across the series of a study: by name, and in patient millimetres where series share a frame.

Series of one DICOM study that share a FrameOfReferenceUID are in one patient coordinate system, so a
disc has the same centre (up to patient motion between series) on each. For every pair of such series,
each disc of one is paired with the nearest disc centre of the other: a pair farther apart than
:data:`CENTRE_TOLERANCE_MM` in the sagittal plane, or named differently, is a disagreement. The names
of a series that disagrees with the majority of the others are reported (never silently merged);
grades are fused only from series whose names agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CENTRE_TOLERANCE_MM = 8.0  # disc centres of two series of one frame of reference, in the sagittal plane (y, z)


@dataclass(frozen=True)
class LevelCheck:
    """How the level names of the series of a study agree."""

    compared: tuple[tuple[int, int], ...] = ()  # pairs of series indices checked in patient mm
    disagreements: tuple[str, ...] = ()  # one line each
    outliers: tuple[int, ...] = ()  # series whose names disagree with the majority
    offsets_mm: dict = field(default_factory=dict)  # "i-j" -> {disc: sagittal-plane distance of the centres in mm}

    def as_dict(self) -> dict:
        return {"compared_series": [list(p) for p in self.compared], "disagreements": list(self.disagreements),
                "outlier_series": list(self.outliers), "centre_offsets_mm": self.offsets_mm}


def _disc_centres(result) -> dict[str, np.ndarray]:
    return {d.name: np.asarray(d.centroid_mm, dtype=float) for d in result.levels.discs}


def _compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> tuple[dict[str, float], list[str]]:
    """Sagittal-plane (y, z) offsets of the discs of ``a`` to the nearest disc of ``b``, and the disagreements."""
    offsets, problems = {}, []
    if not a or not b:
        return offsets, problems
    names_b = list(b)
    centres_b = np.array([b[n][1:] for n in names_b])
    for name, centre in a.items():
        distances = np.linalg.norm(centres_b - centre[1:], axis=1)
        k = int(np.argmin(distances))
        offsets[name] = round(float(distances[k]), 1)
        if distances[k] > CENTRE_TOLERANCE_MM:
            problems.append(f"{name}: no disc within {CENTRE_TOLERANCE_MM:g} mm on the other series (nearest {distances[k]:.0f} mm)")
        elif names_b[k] != name:
            problems.append(f"the disc named {name} is named {names_b[k]} on the other series")
    return offsets, problems


def check_levels(results: list, frames: list[str], labels: list[str]) -> LevelCheck:
    """Compare the disc names and centres of ``results`` (one per series; ``frames`` their FrameOfReferenceUIDs,
    ``labels`` how to name each series in a message)."""
    compared, lines, offsets = [], [], {}
    disagree = np.zeros((len(results), len(results)), dtype=bool)
    centres = [_disc_centres(r) for r in results]
    for i in range(len(results)):
        for j in range(i + 1, len(results)):
            if not frames[i] or frames[i] != frames[j]:
                continue
            compared.append((i, j))
            off, problems = _compare(centres[i], centres[j])
            offsets[f"{i}-{j}"] = off
            if problems:
                disagree[i, j] = disagree[j, i] = True
                lines.append(f"{labels[i]} and {labels[j]} disagree on the levels: " + "; ".join(problems[:3]))
    outliers = []
    if len(results) >= 3:
        for i in range(len(results)):
            partners = [j for j in range(len(results)) if j != i and ((min(i, j), max(i, j)) in compared)]
            if len(partners) >= 2 and sum(disagree[i, j] for j in partners) > len(partners) / 2:
                outliers.append(i)
    return LevelCheck(tuple(compared), tuple(lines), tuple(outliers), offsets)
