"""Study-level analysis: every sagittal series of a patient visit, levels matched across series, one fused grade per disc.

Modules: :mod:`.inputs` (what the inputs hold: DICOM study folders, BIDS folders, several files),
:mod:`.match` (level names and disc centres compared across series), :mod:`.fuse` (the study grader),
:mod:`.result` (:class:`StudyResult`, ``result.json`` / ``levels.csv`` of a study).

:func:`analyze_study` runs the single-series pipeline on each series (a series that fails is reported
and the others go on; if every series fails, the first error is raised), checks the levels, then fuses
the grades of the series whose names agree with the others.
"""

from __future__ import annotations

from typing import Callable

from lumbarkit.errors import InputError
from lumbarkit.study.inputs import SeriesRef, StudyInputs, find_study
from lumbarkit.study.result import StudyResult


def _frame_of_reference(result) -> str:
    return result.scan.metadata.frame_of_reference_uid if result is not None else ""


def analyze_study(study: StudyInputs, pipeline, *, keep_phi: bool = False, lumbar_vertebrae: int | None = None,
                  on_stage: Callable[[str], None] | None = None, spacing_mm=None) -> StudyResult:
    """Analyse every series of ``study`` with ``pipeline`` (a :class:`lumbarkit.pipeline.Pipeline`) and fuse the grades.

    ``spacing_mm`` is the pixel spacing of a study of one 2D image."""
    if spacing_mm is not None and not study.single:
        raise InputError("--spacing is for one 2D image; a study of several series carries its spacing in each file")
    from lumbarkit.results.scan_result import ModelInfo
    from lumbarkit.study.fuse import fuse_grades
    from lumbarkit.study.match import check_levels

    results, errors = [], {}
    for i, ref in enumerate(study.series):
        stage = (lambda name, i=i: on_stage(f"series {i + 1}/{len(study.series)}: {name}")) if on_stage and not study.single else on_stage
        try:
            results.append(pipeline.run(ref.source, series=ref.series_uid, keep_phi=keep_phi, spacing_mm=spacing_mm,
                                        lumbar_vertebrae=lumbar_vertebrae, on_stage=stage, sequence=ref.declared))
        except InputError as exc:
            if study.single:
                raise
            results.append(None)
            errors[i] = str(exc)
    if not any(r is not None for r in results):
        raise InputError(f"no series of the study could be analysed: {errors[0]}")
    if study.single:
        return StudyResult(study.series, tuple(results), rsna=_rsna(study, results, pipeline, on_stage))
    labels = [f"series {i + 1} ({r.scan.metadata.sequence if r is not None else ref.sequence})"
              for i, (r, ref) in enumerate(zip(results, study.series))]
    analysed = [i for i, r in enumerate(results) if r is not None]
    check = check_levels([results[i] for i in analysed], [_frame_of_reference(results[i]) for i in analysed],
                         [labels[i] for i in analysed])
    outliers = {analysed[k] for k in check.outliers}
    sequences = [r.scan.metadata.sequence if r is not None else "failed" for r in results]
    model = pipeline.study_grader
    tasks = pipeline.config.hotspot_tasks if pipeline.config.hotspots and pipeline.config.hotspot_method == "occlusion" else ()
    fused = fuse_grades(results, sequences, model, tta=pipeline.config.tta, excluded=outliers, hotspot_tasks=tasks)
    notes = list(study.notes) + [f"{labels[i]} failed: {errors[i]}" for i in sorted(errors)]
    notes += [f"{labels[i]} names the levels unlike the other series; its grades are not fused" for i in sorted(outliers)]
    notes += [f"series {i + 1}: its sequence is unknown (no tag, sidecar or name says it): analysed, not fused; "
              "declare it with --sequence" for i, seq in enumerate(sequences) if seq == "unknown"]
    if fused is None:
        notes.append("no T1 or T2 series in the study: discs not graded (sequences: " + ", ".join(sorted(set(sequences))) + ")")
    used_model = model is not None and fused is not None and fused.model.startswith("study grader")
    models = (ModelInfo("study grading", model.name, model.version, model.onnx_sha256),) if used_model else ()
    return StudyResult(study.series, tuple(results), errors, fused, check, tuple(notes), models,
                       _rsna(study, results, pipeline, on_stage))


def _rsna(study: StudyInputs, results: list, pipeline, on_stage):
    """The RSNA severities of a DICOM study when the pipeline's config names an RSNA model, else None (the series
    already analysed are not read or segmented again)."""
    if not getattr(pipeline.config, "rsna_model", None):
        return None
    from lumbarkit.rsna.analysis import rsna_for_study

    if on_stage:
        on_stage("RSNA severities")
    source = study.series[0].source
    dicom = source.is_dir() and all(ref.series_uid is not None and ref.source == source for ref in study.series)
    analysed = {ref.series_uid: r for ref, r in zip(study.series, results) if r is not None and ref.series_uid}
    return rsna_for_study(source if dicom else None, pipeline, analysed)


__all__ = ["SeriesRef", "StudyInputs", "StudyResult", "analyze_study", "find_study"]
