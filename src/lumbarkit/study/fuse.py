"""One grade per disc from the whole study: the T1 and T2 crops of the disc go into the study grader together.

The study grader (packaged ``grade_study``, see its model card) takes per disc a stack of crops in its
``architecture.sequences`` order (T1, T2): each crop is cut from its own series exactly as the
single-series grader's, and a sequence the study lacks is an all-zero channel (the model was trained
with sequence dropout for this). The T2 channel is the 2D T2 series, else T2 SPACE. STIR and other
sequences are analysed per series but do not enter the fused grade. A study with only one of T1 and T2
(or without a study grader installed) takes the single-series grades of that series: the model card's
ablation shows the study grader given one sequence is not better than the single-series grader.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lumbarkit.results.grades import DiscGrades

CHANNEL_SEQUENCES = {"T1": ("T1",), "T2": ("T2", "T2_SPACE")}  # series sequence(s) that fill each channel, preferred first
DEFAULT_STUDY_MODEL = "grade_study"


@dataclass(frozen=True)
class FusedGrades:
    """Fused grades of a study and, per disc, the sequences they used (``"T1+T2"``, ``"T2"``, ...)."""

    grades: DiscGrades
    sequences: dict[str, str]  # disc -> sequences used
    series_used: dict[str, int]  # channel sequence -> index of the series that filled it
    model: str  # "study grader <name>" or "single-series grader"
    hotspots: dict = field(default_factory=dict)  # (disc, task) -> occlusion evidence of the fused grade (crop grid)


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


def fuse_grades(results: list, sequences: list[str], model, tta: bool = True, excluded=(), hotspot_tasks=()) -> FusedGrades | None:
    """Fused grades of the series ``results`` (their ``sequences``), or None when no series is T1 or T2.

    ``model`` is a loaded study grader (:class:`ModelFolder`) or None for the single-series fallback;
    ``excluded`` are series indices whose level names disagree with the others; ``hotspot_tasks`` get occlusion
    evidence maps of the fused grade (the fallback keeps the T2 series' own maps)."""
    used = channel_series(sequences, excluded)
    if not used:
        return None
    if model is None or len(used) == 1:  # one sequence: the single-series grader (the CV table: not worse than it)
        primary = used.get("T2", used.get("T1"))
        grades = results[primary].grades
        if grades is None:
            return None
        seq = sequences[primary].replace("T2_SPACE", "T2")
        return FusedGrades(grades, {d.level: seq for d in grades.discs}, {seq: primary}, "single-series grader",
                           dict(results[primary].hotspots))
    return _study_grader(results, used, model, tta, tuple(hotspot_tasks))


def _study_grader(results: list, used: dict[str, int], model, tta: bool, hotspot_tasks: tuple[str, ...]) -> FusedGrades:
    from lumbarkit.stages.s5_grade import disc_grade, model_crops, predict_probabilities

    channels = list(model.spec.architecture.get("sequences") or ("T1", "T2"))
    crops = {ch: {c.name: c for c in _crops(results[i], model, model_crops).crops} for ch, i in used.items()}
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
        own = _single_series_grade(results, used, present[name], name)
        if own is not None:  # a disc on one sequence only: that series' own grade, as for a one-sequence study
            discs.append(own)
            continue
        discs.append(disc_grade(name, probs, k))
    skipped = tuple((n, "not cropped on any T1 or T2 series") for n in disc_order(results, used) if n not in names)
    grades = DiscGrades(tuple(discs), skipped, model.name, model.onnx_sha256, bool(tta))
    maps = {}
    if hotspot_tasks and len(stack):
        from lumbarkit.stages.s6_hotspots import occlusion_maps

        both = [i for i, n in enumerate(names) if len(present[n]) > 1]
        maps = {(names[both[i]], task): m for (i, task), m in occlusion_maps(model, stack[both], hotspot_tasks).items()}
        for i, n in enumerate(names):  # one-sequence discs: their series' own evidence
            if len(present[n]) == 1:
                maps.update({key: m for key, m in results[used[present[n][0]]].hotspots.items() if key[0] == n})
    return FusedGrades(grades, {n: "+".join(present[n]) for n in names}, dict(used), f"study grader {model.name}", maps)


def _crops(result, model, cut):
    """The series' crops as the study grader expects them: those its own grading cut when the specs agree."""
    if result.crops is not None and result.crops.spec == model.spec.crop_spec:
        return result.crops
    return cut(result.scan, result.levels, model)


def _single_series_grade(results: list, used: dict[str, int], present: list[str], name: str):
    """The own grade of disc ``name`` on the one series that shows it, when only one channel has it; else None."""
    if len(present) != 1:
        return None
    grades = results[used[present[0]]].grades
    return grades[name] if grades is not None and name in grades.levels else None
