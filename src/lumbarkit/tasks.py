"""Disc grading tasks as data: the grader's heads, losses and metrics are built from this list.

Each task has class *values* as graded (Pfirrmann 1-5, Modic 0-3, binary 0/1); the network
predicts class *indices* ``0 .. n_classes-1`` in the same order (``Task.encode`` /
``Task.decode``). Label ``-1`` (index) means missing. Binary tasks have two classes (two logits,
softmax), so every head is handled the same way. No torch here: inference imports this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

MISSING = -1


@dataclass(frozen=True)
class Task:
    """One grading head.

    Parameters
    ----------
    name : output name (ONNX output, CSV column), e.g. ``"pfirrmann"``.
    classes : graded values in class-index order, e.g. ``(1, 2, 3, 4, 5)``.
    kind : ``"ordinal"``, ``"nominal"`` or ``"binary"``.
    column : column of SPIDER's ``gradings.csv`` holding the grade.
    class_names : display name of each class.
    """

    name: str
    classes: tuple[int, ...]
    kind: str
    column: str
    class_names: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def encode(self, value) -> int:
        """Class index of a graded value; ``MISSING`` (-1) for NaN, None or a value outside ``classes``."""
        if value is None:
            return MISSING
        try:
            v = float(value)
        except (TypeError, ValueError):
            return MISSING
        if math.isnan(v) or v != round(v) or int(v) not in self.classes:
            return MISSING
        return self.classes.index(int(v))

    def decode(self, index: int) -> int:
        """Graded value of a class index (inverse of :meth:`encode`)."""
        return self.classes[int(index)]


def _binary(name: str, column: str) -> Task:
    return Task(name, (0, 1), "binary", column, ("absent", "present"))


TASKS: tuple[Task, ...] = (
    Task("pfirrmann", (1, 2, 3, 4, 5), "ordinal", "Pfirrman grade", ("I", "II", "III", "IV", "V")),
    Task("modic", (0, 1, 2, 3), "nominal", "Modic", ("none", "type 1", "type 2", "type 3")),
    _binary("endplate_upper", "UP endplate"),
    _binary("endplate_lower", "LOW endplate"),
    _binary("spondylolisthesis", "Spondylolisthesis"),
    _binary("herniation", "Disc herniation"),
    _binary("narrowing", "Disc narrowing"),
    _binary("bulging", "Disc bulging"),
)
TASK_NAMES: tuple[str, ...] = tuple(t.name for t in TASKS)
# The order in which tables and reports list the binary findings (levels.csv columns, report.html, the CLI).
FINDINGS_ORDER: tuple[str, ...] = ("endplate_upper", "endplate_lower", "narrowing", "bulging", "herniation", "spondylolisthesis")
assert set(FINDINGS_ORDER) == {t.name for t in TASKS if t.kind == "binary"}, "every binary task is listed once"
HOTSPOT_TASKS: tuple[str, ...] = ("pfirrmann", "modic", "herniation")  # evidence maps drawn by default
_BY_NAME = {t.name: t for t in TASKS}


def get_task(name: str) -> Task:
    """The task called ``name``; raises ``KeyError`` listing the known names."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(TASK_NAMES)}") from None


def select_tasks(names=None) -> tuple[Task, ...]:
    """Tasks in ``names`` order (all tasks when ``names`` is None)."""
    return TASKS if names is None else tuple(get_task(n) for n in names)


def encode_row(row: Mapping, tasks=None) -> dict[str, int]:
    """Class indices of one gradings row (a mapping column -> value); missing -> -1."""
    return {t.name: t.encode(row.get(t.column)) for t in select_tasks(tasks)}


# ---------------------------------------------------------------- Pfirrmann -> 3-class LDD

LDD_CLASSES: tuple[str, ...] = ("mild", "moderate", "severe")
PFIRRMANN_TO_LDD: dict[int, int] = {1: 0, 2: 0, 3: 1, 4: 2, 5: 2}  # grade -> LDD index
_LDD_OF_INDEX = np.array([PFIRRMANN_TO_LDD[g] for g in (1, 2, 3, 4, 5)])  # Pfirrmann class index -> LDD index


def pfirrmann_to_ldd(grade: int) -> str:
    """3-class lumbar disc degeneration of a Pfirrmann grade: I-II mild, III moderate, IV-V severe."""
    try:
        return LDD_CLASSES[PFIRRMANN_TO_LDD[int(grade)]]
    except KeyError:
        raise ValueError(f"Pfirrmann grade must be 1..5, got {grade!r}") from None


def ldd_index(pfirrmann_index: np.ndarray) -> np.ndarray:
    """LDD class indices (0 mild, 1 moderate, 2 severe) of Pfirrmann class indices (0..4); -1 stays -1."""
    idx = np.asarray(pfirrmann_index, dtype=int)
    return np.where(idx < 0, MISSING, _LDD_OF_INDEX[np.clip(idx, 0, 4)])


def ldd_probabilities(pfirrmann_prob: np.ndarray) -> np.ndarray:
    """3-class LDD probabilities ``(..., 3)`` summed from Pfirrmann probabilities ``(..., 5)``."""
    p = np.asarray(pfirrmann_prob, dtype=float)
    return np.stack([p[..., 0] + p[..., 1], p[..., 2], p[..., 3] + p[..., 4]], axis=-1)
