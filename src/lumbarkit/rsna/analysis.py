"""RSNA severities inside ``lumbarkit analyze``: with ``rsna_model`` in the config, a DICOM study with sagittal
T1, sagittal T2/STIR and axial T2 series gets the 25 RSNA severities (5 conditions x 5 levels)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lumbarkit.rsna.format import AXIAL_T2, CONDITIONS, DISC_NAMES, LEVELS, SAGITTAL_T1, SAGITTAL_T2, SEVERITIES


@dataclass(frozen=True)
class RsnaSeverities:
    """Probabilities (25, 3) in target order, which rows came from a crop (else the model's prior), and notes."""

    model: str
    onnx_sha256: str
    probabilities: np.ndarray
    from_crop: np.ndarray
    notes: tuple[str, ...] = ()

    def of(self, condition: str, level: str) -> np.ndarray:
        return self.probabilities[CONDITIONS.index(condition) * len(LEVELS) + LEVELS.index(level)]

    def severity(self, condition: str, level: str) -> str:
        return SEVERITIES[int(np.argmax(self.of(condition, level)))]

    def to_dict(self) -> dict:
        levels = {}
        for lv in LEVELS:
            levels[DISC_NAMES[lv]] = {c: {"severity": self.severity(c, lv),
                                          "probabilities": {s: round(float(p), 4) for s, p in zip(SEVERITIES, self.of(c, lv))},
                                          "from": "crop" if self.from_crop[CONDITIONS.index(c) * len(LEVELS) + LEVELS.index(lv)] else "prior"}
                                      for c in CONDITIONS}
        return {"model": self.model, "onnx_sha256": self.onnx_sha256, "levels": levels, "notes": list(self.notes)}

    def level_columns(self, disc: str) -> dict[str, str]:
        """``rsna_<condition>`` -> severity of one disc (named as lumbarkit names it, "L4/L5"); empty for other discs."""
        level = {v: k for k, v in DISC_NAMES.items()}.get(disc)
        return {f"rsna_{c}": self.severity(c, level) for c in CONDITIONS} if level else {}


def rsna_description(plane: str, sequence: str) -> str | None:
    """The RSNA series type of a DICOM series (its plane and sequence), or None."""
    if plane == "sagittal" and sequence == "T1":
        return SAGITTAL_T1
    if plane == "sagittal" and sequence in ("T2", "T2_SPACE", "STIR"):
        return SAGITTAL_T2
    if plane == "axial" and sequence in ("T2", "unknown"):
        return AXIAL_T2
    return None


def rsna_study(folder: Path):
    """The series of a DICOM study folder as an :class:`~lumbarkit.rsna.dataset.RsnaStudy`."""
    from lumbarkit.io.dicom.series import collect_frames, group_series
    from lumbarkit.rsna.dataset import RsnaSeries, RsnaStudy

    frames, _ = collect_frames(Path(folder))
    study = RsnaStudy("study")
    for s in group_series(frames):
        desc = None if s.is_localizer else rsna_description(s.plane, s.sequence)
        if desc is None:
            continue
        files = tuple(sorted({f.path for f in s.frames}))
        study.series.append(RsnaSeries("study", s.uid, desc, Path(folder), len(files), s.uid, files))
    for d in (SAGITTAL_T1, SAGITTAL_T2, AXIAL_T2):
        if not study.of(d):
            study.problems.append(f"no {d} series: its conditions take the model's prior")
    return study


def rsna_for_study(folder: Path | None, pipeline, analysed: dict | None = None) -> RsnaSeverities:
    """The 25 severities of the DICOM study in ``folder`` with the pipeline's ``rsna_model``; ``analysed``
    (SeriesInstanceUID -> ScanResult) are the series ``analyze`` has already read and segmented."""
    from lumbarkit.rsna.crops import study_crops
    from lumbarkit.rsna.model import RsnaModel
    from lumbarkit.rsna.predict import study_probabilities

    model = RsnaModel.load(pipeline.config.rsna_model)
    name, sha = model.doc.get("name", "rsna_severity"), model.doc["onnx_sha256"]
    if folder is None:
        return RsnaSeverities(name, sha, model.prior, np.zeros(len(model.prior), bool),
                              ("RSNA severities need a DICOM study (sagittal T1, sagittal T2/STIR, axial T2): the model's prior",))
    study = rsna_study(folder)
    crops = study_crops(study, pipeline, analysed=analysed)
    probs, reasons = study_probabilities(crops, model)
    return RsnaSeverities(name, sha, probs, crops.present.copy(), tuple(study.problems + crops.notes + reasons))
