"""Typed results of every stage, in the order the pipeline makes them.

=====================  ==========================================  ==============================
stage                  result                                      module
=====================  ==========================================  ==============================
1 segment              :class:`SemanticSegmentation` (probabilities) :mod:`.segmentation`
2 localize             :class:`Levels` with a :class:`LabelMap`     :mod:`.levels`, :mod:`.labelmap`
3 measure              :class:`SpineMeasurements`                   :mod:`.measurements`
4 crops                :class:`DiscCrops` (cut by a :class:`CropSpec`) :mod:`.crops`
5 grade                :class:`DiscGrades`                          :mod:`.grades`
6 hotspots             evidence maps per (disc, task)               (arrays in :class:`ScanResult`)
all                    :class:`ScanResult` (``result.json``, CSVs)  :mod:`.scan_result`
=====================  ==========================================  ==============================

Every result is an immutable dataclass; units are in the field names or docstrings (mm, deg, mm3).
``schemas/result.schema.json`` describes :meth:`ScanResult.to_dict` and is tested against it.
"""

from lumbarkit.results.crops import CropGeometry, CropSpec, DiscCrop, DiscCrops
from lumbarkit.results.grades import DiscGrade, DiscGrades
from lumbarkit.results.labelmap import LabelMap
from lumbarkit.results.levels import LevelInstance, Levels
from lumbarkit.results.measurements import (DiscMeasurements, Measure, MeasuredLine, SpineMeasurements,
                                            VertebraMeasurements)
from lumbarkit.results.scan_result import ModelInfo, ScanResult
from lumbarkit.results.segmentation import SemanticSegmentation

__all__ = ["CropGeometry", "CropSpec", "DiscCrop", "DiscCrops", "DiscGrade", "DiscGrades", "DiscMeasurements", "LabelMap",
           "LevelInstance", "Levels", "Measure", "MeasuredLine", "ModelInfo", "ScanResult", "SemanticSegmentation",
           "SpineMeasurements", "VertebraMeasurements"]
