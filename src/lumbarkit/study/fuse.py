"""One grade per disc from the whole study: the T1 and T2 crops of the disc go into the study grader together.

The study grader (packaged ``grade_study``, see its model card) takes per disc a stack of crops in its
``architecture.sequences`` order (T1, T2): each crop is cut from its own series exactly as the
single-series grader's, and a sequence the study lacks is an all-zero channel (the model was trained
with sequence dropout for this). The T2 channel is the 2D T2 series, else T2 SPACE. STIR and other
sequences are analysed per series but do not enter the fused grade. Without a study grader, the fused
grade is the single-series grade of the T2 series (else T1), so nothing is invented.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumbarkit.results.grades import DiscGrade, DiscGrades
from lumbarkit.tasks import get_task, ldd_probabilities, pfirrmann_to_ldd

CHANNEL_SEQUENCES = {"T1": ("T1",), "T2": ("T2", "T2_SPACE")}  # series sequence(s) that fill each channel, preferred first
DEFAULT_STUDY_MODEL = "grade_study"


@dataclass(frozen=True)
class FusedGrades:
    """Fused grades of a study and, per disc, the sequences they used (``"T1+T2"``, ``"T2"``, ...)."""

    grades: DiscGrades
    sequences: dict[str, str]  # disc -> sequences used
    series_used: dict[str, int]  # channel sequence -> index of the series that filled it
    model: str  # "study grader <name>" or "single-series grader (T2 series)"


def channel_series(sequences: list[str], excluded=()) -> dict[str, int]:
    """Which series (index into ``sequences``) fills each channel: the first of the preferred sequence."""
    out = {}
    for channel, wanted in CHANNEL_SEQUENCES.items():
        for kind in wanted:
            hit = next((i for i, s in enumerate(sequences) if s == kind and i not in excluded), None)
            if hit is not None:
                out[channel] = hit
                break
    return out


def disc_order(results: list, used: dict[str, int]) -> list[str]:
    """Disc names top to bottom: those of the T2 series, then any only the T1 series has, in its order."""
    names: list[str] = []
    for channel in ("T2", "T1"):
        if channel in used:
            names += [d.name for d in results[used[channel]].levels.discs if d.name not in names]
    from lumbarkit.levels import disc_id

    return sorted(names, key=disc_id)  # VerSe ids grow from head to feet


def fuse_grades(results: list, sequences: list[str], model, tta: bool = True, excluded=()) -> FusedGrades | None:
    """Fused grades of the series ``results`` (their ``sequences``), or None when no series is T1 or T2.

    ``model`` is a loaded study grader (:class:`ModelFolder`) or None for the single-series fallback;
    ``excluded`` are series indices whose level names disagree with the others."""
    used = channel_series(sequences, excluded)
    if not used:
        return None
    if model is None:
        primary = used.get("T2", used.get("T1"))
        grades = results[primary].grades
        if grades is None:
            return None
        seq = sequences[primary].replace("T2_SPACE", "T2")
        return FusedGrades(grades, {d.level: seq for d in grades.discs}, {seq: primary}, "single-series grader")
    return _study_grader(results, used, model, tta)


def _study_grader(results: list, used: dict[str, int], model, tta: bool) -> FusedGrades:
    from lumbarkit.stages.s5_grade import model_crops, predict_probabilities

    channels = list(model.spec.architecture.get("sequences") or ("T1", "T2"))
    crops = {ch: {c.name: c for c in model_crops(results[i].scan, results[i].levels, model).crops} for ch, i in used.items()}
    names = [n for n in disc_order(results, used) if any(n in crops[ch] for ch in crops)]
    shape = tuple(model.spec.crop_spec.shape_px)
    stack = np.zeros((len(names), len(channels), *shape), dtype=np.float32)
    present: dict[str, list[str]] = {}
    for k, name in enumerate(names):
        for c, ch in enumerate(channels):
            crop = crops.get(ch, {}).get(name)
            if crop is not None:
                stack[k, c] = crop.image[0]
                present.setdefault(name, []).append(ch)
    probs = predict_probabilities(model, stack, tta)
    discs = []
    for k, name in enumerate(names):
        p = {t: tuple(float(v) for v in probs[t][k]) for t in probs}
        g = {t: get_task(t).decode(int(np.argmax(probs[t][k]))) for t in probs}
        ldd = pfirrmann_to_ldd(g["pfirrmann"]) if "pfirrmann" in g else ""
        ldd_p = tuple(float(v) for v in ldd_probabilities(probs["pfirrmann"][k])) if "pfirrmann" in probs else (float("nan"),) * 3
        discs.append(DiscGrade(name, p, g, ldd, ldd_p))
    skipped = tuple((n, "not cropped on any T1 or T2 series") for n in disc_order(results, used) if n not in names)
    grades = DiscGrades(tuple(discs), skipped, model.name, model.onnx_sha256, bool(tta))
    return FusedGrades(grades, {n: "+".join(present[n]) for n in names}, dict(used), f"study grader {model.name}")
