"""The whole analysis of one scan: segment -> name levels -> measure -> crop + grade -> hotspots.

``Pipeline`` loads each model once, on first use, so one instance serves many scans (the batch
command keeps one per worker). ``lumbarkit.analyze(path)`` is the one-call form.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Callable

from lumbarkit.errors import InputError, ModelError
from lumbarkit.io.checks import check_label_convention, check_scan
from lumbarkit.results.scan_result import ModelInfo, ScanResult
from lumbarkit.scan import Scan
from lumbarkit.tasks import HOTSPOT_TASKS

log = logging.getLogger(__name__)

PFIRRMANN_SEQUENCES = ("T2", "T2_SPACE")
MIN_DISCS = 2  # a sagittal lumbar spine image shows several discs; fewer means no spine was found
# Not a spine when both hold: small bodies (median body area: 5th percentile 389 mm2 on the 360 SPIDER slices,
# minimum 636 mm2 on the 67 volumes) and a low mean winning-class probability over body/disc pixels (5th
# percentile 0.80 on SPIDER, minimum 0.82 on the volumes; 0.64-0.78 on seeded noise, stripe and disk images).
# `python benchmarks/not_a_spine.py` reproduces these figures and counts false alarms and misses.
SMALL_BODY_AREA_MM2 = 450.0
LOW_SPINE_CONFIDENCE = 0.76


@dataclass(frozen=True)
class PipelineConfig:
    """Options of an analysis (also readable from a YAML file with these keys).

    segment_model / grade_model : model folder paths (default: the packaged models).
    study_model : the study grader (T1 and T2 crops together) for studies of several series (default: packaged).
    tta : test-time augmentation in the grader.
    hotspots : compute occlusion evidence maps for ``hotspot_tasks``.
    lumbar_vertebrae : 4, 5 or 6 when the spine's lumbar count is known (transitional anatomy); None assumes 5.
    onnx_provider : where the networks run: cpu (default), cuda, auto, ... (:mod:`lumbarkit.models.runtime`).
    rsna_model : a trained RSNA severity model folder (``lumbarkit rsna train``): a DICOM study then also gets the 25
        RSNA 2024 severities (:mod:`lumbarkit.rsna.analysis`).
    """

    segment_model: str | None = None
    grade_model: str | None = None
    study_model: str | None = None
    tta: bool = True
    hotspots: bool = True
    hotspot_tasks: tuple[str, ...] = HOTSPOT_TASKS
    hotspot_method: str = "occlusion"
    lumbar_vertebrae: int | None = None
    onnx_provider: str = "cpu"
    rsna_model: str | None = None

    @classmethod
    def from_yaml(cls, path: str | Path) -> "PipelineConfig":
        """Read a config file; unknown keys or wrong types are an :class:`InputError`."""
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"cannot read config {path.name}: {type(exc).__name__}") from None
        if not isinstance(data, dict):
            raise InputError(f"config {path.name} must be a mapping of option: value")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InputError(f"config {path.name}: unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")
        cfg = cls()
        for key, value in data.items():
            default = getattr(cfg, key)
            if isinstance(default, bool) and not isinstance(value, bool):
                raise InputError(f"config {path.name}: {key} must be true or false")
            if key == "hotspot_method":
                from lumbarkit.stages.s6_hotspots import METHODS

                if value not in METHODS:
                    raise InputError(f"config {path.name}: hotspot_method must be one of {', '.join(METHODS)}")
            if key == "rsna_model" and value is not None:
                from lumbarkit.errors import ModelError
                from lumbarkit.rsna.model import RsnaModel

                try:
                    RsnaModel.load(value)
                except ModelError as exc:
                    raise InputError(f"config {path.name}: rsna_model: {exc}") from None
                value = str(value)
            if key == "onnx_provider":
                from lumbarkit.models.runtime import check_provider

                value = check_provider(value)
            if key == "lumbar_vertebrae" and value not in (None, 4, 5, 6):
                raise InputError(f"config {path.name}: lumbar_vertebrae must be 4, 5 or 6")
            if key == "hotspot_tasks":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise InputError(f"config {path.name}: hotspot_tasks must be a list of task names")
                value = tuple(value)
            cfg = replace(cfg, **{key: value})
        return cfg


STAGES = ("segment", "measure", "grade", "hotspots")  # the chain, in order; ``until`` names the last one run


class Pipeline:
    """Runs the stage chain on scans with models loaded once (lazily).

    The chain: ``segment`` (segmentation and level names: :class:`Levels`), ``measure``
    (:class:`SpineMeasurements`), ``grade`` (disc crops and :class:`DiscGrades`) and ``hotspots``
    (evidence maps). :meth:`run` runs any prefix of it; :meth:`analyze` runs all of it.
    """

    def __init__(self, config: PipelineConfig | None = None, threads: int | None = None):
        """``threads``: ONNX Runtime threads per model (None: the default of :class:`ModelFolder`)."""
        self.config = config or PipelineConfig()
        self.threads = threads
        self._segmenter = None
        self._optional: dict[str, object] = {}  # packaged default name -> loaded folder, or None when not installed

    @property
    def segmenter(self):
        """The segmentation :class:`ModelFolder` (loaded on first use)."""
        if self._segmenter is None:
            from lumbarkit.models.folder import load_model

            self._segmenter = load_model(self.config.segment_model, "segment_2d", self.threads, self.config.onnx_provider)
        return self._segmenter

    def _optional_model(self, path: str | None, default: str):
        """The model folder at ``path`` (an error when it is unusable), else the packaged ``default`` or None when
        that is not installed; loaded once."""
        if default not in self._optional:
            from lumbarkit.models.folder import load_model

            try:
                self._optional[default] = load_model(path, default, self.threads, self.config.onnx_provider)
            except ModelError:
                if path is not None:
                    raise
                self._optional[default] = None
        return self._optional[default]

    @property
    def grader(self):
        """The grader :class:`ModelFolder`, or None when none is installed (grading is then skipped)."""
        return self._optional_model(self.config.grade_model, "grade_2d")

    @property
    def study_grader(self):
        """The study grader :class:`ModelFolder`, or None when none is installed (the T2 series' grades are then used)."""
        return self._optional_model(self.config.study_model, "grade_study")

    def analyze(self, source, spacing_mm=None, series: str | None = None, keep_phi: bool = False,
                lumbar_vertebrae: int | None = None) -> ScanResult:
        """Analyse a scan (a :class:`Scan` or a path :func:`lumbarkit.load_scan` reads) with every stage.

        With ``keep_phi`` the patient/study identifiers of a DICOM source are kept in the result.

        Raises
        ------
        InputError : unreadable input, or no spine found on it.
        ModelError : a model folder is missing or corrupt.
        """
        return self.run(source, spacing_mm=spacing_mm, series=series, keep_phi=keep_phi, lumbar_vertebrae=lumbar_vertebrae)

    def run(self, source, *, until: str = "hotspots", spacing_mm=None, series: str | None = None, keep_phi: bool = False,
            labels=None, require_spine: bool = True, on_stage: Callable[[str], None] | None = None,
            lumbar_vertebrae: int | None = None, sequence: str | None = None) -> ScanResult:
        """Run the chain up to and including the stage ``until`` (one of :data:`STAGES`).

        ``labels`` (a :class:`LabelMap` or array of VerSe ids on the scan's grid) replaces the segment stage: its
        ids name the levels. ``require_spine=False`` skips the not-a-spine check (training data keeps every series).
        Stages after ``until`` are None / empty in the result; hotspots also need ``config.hotspots``.
        ``on_stage`` is called with each stage's name as it starts ("load", "segment", ...): the CLI shows it.
        ``lumbar_vertebrae`` (4, 5 or 6) overrides ``config.lumbar_vertebrae`` for this scan; ``sequence`` ("T1", "T2",
        ...) the sequence read from the input's tags, sidecar or name.
        """
        if until not in STAGES:
            raise ValueError(f"until must be one of {', '.join(STAGES)}, got {until!r}")
        last = STAGES.index(until)
        stage = on_stage or (lambda name: None)
        timings: dict[str, float] = {}
        stage("load")
        t0 = time.perf_counter()
        scan = self._load(source, spacing_mm, series)
        if sequence is not None:  # the user says what the tags do not (or say wrongly)
            scan = replace(scan, metadata=replace(scan.metadata, sequence=sequence))
        check_scan(scan)
        identifiers = _identifiers(source, scan) if keep_phi and not isinstance(source, Scan) else {}
        timings["load"] = time.perf_counter() - t0
        models: list[ModelInfo] = []
        if labels is None:
            stage("segment")
            levels = self._segment(scan, timings, require_spine, lumbar_vertebrae or self.config.lumbar_vertebrae)
            models.append(ModelInfo("segmentation", self.segmenter.name, self.segmenter.version, self.segmenter.onnx_sha256))
        else:
            from lumbarkit.results.labelmap import LabelMap
            from lumbarkit.results.levels import Levels

            label_map = LabelMap.on_grid_of(scan, labels)
            check_label_convention(label_map.present_labels)
            levels = Levels.from_label_map(scan, label_map)
        warnings = list(scan.metadata.notes) + self.runtime_notes() + list(levels.user_warnings())
        measurements = grades = crops = None
        hotspots: dict = {}
        if last >= STAGES.index("measure"):
            from lumbarkit.stages.s3_measure import measure

            stage("measure")
            t = time.perf_counter()
            measurements = measure(scan, levels.segmentation)
            timings["measure"] = time.perf_counter() - t
        if last >= STAGES.index("grade"):
            stage("grade")
            crops, grades, hotspots = self._grade(scan, levels, models, warnings, timings, last >= STAGES.index("hotspots"))
        timings["total"] = time.perf_counter() - t0
        return ScanResult(scan, levels, measurements, grades, crops, hotspots, tuple(models), tuple(warnings),
                          timings, identifiers)

    def runtime_notes(self) -> list[str]:
        """A note when the requested ONNX provider is missing and the networks fall back to the CPU."""
        if self.config.onnx_provider == "cpu":
            return []
        from lumbarkit.models.runtime import session_providers

        note = session_providers(self.config.onnx_provider)[1]
        return [note] if note else []

    @staticmethod
    def _load(source, spacing_mm, series) -> Scan:
        from lumbarkit.io import load_scan

        return source if isinstance(source, Scan) else load_scan(source, spacing_mm=spacing_mm, series=series)

    def _segment(self, scan: Scan, timings: dict[str, float], require_spine: bool, lumbar_vertebrae: int | None):
        """Stages 1-2: class probabilities, then named levels; a scan that is not a spine is an InputError."""
        from lumbarkit.stages.s1_segment import segment
        from lumbarkit.stages.s2_localize import localize

        t = time.perf_counter()
        semantic = segment(scan, model=self.segmenter)
        timings["segment"] = time.perf_counter() - t
        t = time.perf_counter()
        levels = localize(scan, semantic.probabilities, lumbar_vertebrae=lumbar_vertebrae)
        timings["localize"] = time.perf_counter() - t
        reason = not_a_spine(scan, levels, semantic.probabilities) if require_spine else None
        if reason:
            raise InputError(reason)
        return levels

    def _grade(self, scan: Scan, levels, models: list, warnings: list, timings: dict[str, float], with_hotspots: bool):
        """Stages 4-6: crops as the grader expects, grades, and (when configured) hotspots; (crops, grades, maps)."""
        grader = self.grader
        if grader is None:
            warnings.append("discs not graded: no grader model is installed (set grade_model in --config)")
            return None, None, {}
        from lumbarkit.stages.s5_grade import grade, model_crops

        models.append(ModelInfo("grading", grader.name, grader.version, grader.onnx_sha256))
        t = time.perf_counter()
        crops = model_crops(scan, levels, grader)
        grades = grade(scan, levels, model=grader, tta=self.config.tta, crops=crops)
        timings["grade"] = time.perf_counter() - t
        warnings += list(grades.warnings) + [f"{n} not graded: {r}" for n, r in grades.skipped]
        seq = scan.metadata.sequence
        if len(grades) and seq not in PFIRRMANN_SEQUENCES:
            warnings.append(f"Pfirrmann grades are defined on T2-weighted images; this sequence is {seq}")
        hotspots: dict = {}
        if with_hotspots and self.config.hotspots and len(crops):
            from lumbarkit.stages.s6_hotspots import hotspot_maps

            t = time.perf_counter()
            maps = hotspot_maps(grader, crops.stack(), self.config.hotspot_method, self.config.hotspot_tasks)
            hotspots = {(crops.crops[i].name, task): m for (i, task), m in maps.items()}
            timings["hotspots"] = time.perf_counter() - t
        return crops, grades, hotspots


def not_a_spine(scan: Scan, levels, probabilities) -> str | None:
    """Why the segmented scan is not a sagittal lumbar spine (a one-line message), or None when it is one.

    ``benchmarks/not_a_spine.py`` measures the two thresholds on real scans and on non-spine images."""
    if len(levels.discs) < MIN_DISCS:
        return f"{len(levels.discs)} intervertebral disc(s) found: is this a sagittal lumbar spine MRI?"
    if not any(v.name != "S1" for v in levels.vertebrae):
        return f"{len(levels.discs)} disc-like regions but no vertebral body found: is this a sagittal lumbar spine MRI?"
    body_area, confidence = median_named_body_area_mm2(scan, levels), spine_confidence(probabilities)
    if body_area < SMALL_BODY_AREA_MM2 and confidence < LOW_SPINE_CONFIDENCE:
        return (f"no convincing spine: small vertebral bodies (median {body_area:.0f} mm2 on a sagittal slice; "
                f"lumbar bodies cover ~700-1400 mm2) segmented with low confidence ({confidence:.2f}): "
                "is this a sagittal lumbar spine MRI?")
    return None


def median_named_body_area_mm2(scan: Scan, levels) -> float:
    """Median area (mm2) of the named vertebral bodies (not S1) on the slice holding most of each; inf if none."""
    import numpy as np

    pixel_mm2 = float(np.prod(scan.spacing_mm[1:]))
    areas = [float((levels.segmentation.labels[v.slice_index] == v.label).sum()) * pixel_mm2
             for v in levels.vertebrae if v.name != "S1"]
    return float(np.median(areas)) if areas else float("inf")


def spine_confidence(probabilities) -> float:
    """Mean winning-class probability over the voxels classed vertebral body or disc (0 if none)."""
    import numpy as np

    from lumbarkit.seg_classes import BODY, DISC
    from lumbarkit.stages.s1_segment import winning_class

    total, count = 0.0, 0
    for k in range(probabilities.shape[0]):  # slice by slice: no volume-sized temporaries
        winner, top = winning_class(probabilities[k])
        spine = (winner == BODY) | (winner == DISC)
        total += float(top[spine].astype(np.float64).sum())
        count += int(spine.sum())
    return total / count if count else 0.0


def _identifiers(source, scan: Scan) -> dict:
    """Patient/study identifiers of a DICOM source or a NIfTI's sidecar (only written with keep_phi)."""
    if scan.metadata.source_format == "nifti":
        from lumbarkit.io.sidecar import sidecar_identifiers

        return sidecar_identifiers(Path(source))
    if scan.metadata.source_format != "dicom":
        return {}
    try:
        from lumbarkit.report.dicom import source_datasets

        ds = source_datasets(Path(source), scan.metadata.series_uid, headers_only=True)[0]
    except Exception:  # identifiers are optional extras
        return {}
    keys = ("PatientName", "PatientID", "PatientBirthDate", "StudyDate", "AccessionNumber", "InstitutionName",
            "StudyInstanceUID", "SeriesInstanceUID")
    return {k: str(getattr(ds, k, "")) for k in keys if str(getattr(ds, k, ""))}


def analyze(source, spacing_mm=None, series: str | None = None, config: PipelineConfig | None = None,
            keep_phi: bool = False) -> ScanResult:
    """Analyse one scan with a fresh :class:`Pipeline` (use a Pipeline directly for many scans)."""
    return Pipeline(config).analyze(source, spacing_mm=spacing_mm, series=series, keep_phi=keep_phi)
