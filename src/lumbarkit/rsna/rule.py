"""Spinal canal stenosis without a trained RSNA model: a rule on lumbarkit's own canal measurement.

The AP diameter of the dural sac at each disc level (mm, :mod:`lumbarkit.stages.s3_measure`) against the sac
thresholds of the measurements' stenosis flags (:mod:`lumbarkit.results.measurements`, where their sources and the
flag rates on healthy spines are given): under 8 mm absolute stenosis (-> severe), 8-10 mm relative (-> moderate). Turned into probabilities with logistic ramps ``RAMP_MM`` wide around each
threshold (a measurement is not exact), mixed ``1 - FLOOR`` : ``FLOOR`` with the uniform distribution: the rule is
not calibrated against radiologists' grades, so no call is made with near certainty (a wrong one costs at most
-log(FLOOR / 3) in the log loss). The other four conditions need a trained model; without one their rows
get the uniform distribution, and the output says so.
"""

from __future__ import annotations

import numpy as np

from lumbarkit.results.measurements import CANAL_ABSOLUTE_MM, CANAL_RELATIVE_MM

UNIFORM = np.full(3, 1.0 / 3.0)
RAMP_MM = 1.0
FLOOR = 0.2


def canal_probabilities(ap_mm: float) -> np.ndarray:
    """(normal/mild, moderate, severe) probabilities of spinal canal stenosis for a canal AP diameter in mm."""
    severe = 1.0 / (1.0 + np.exp((ap_mm - CANAL_ABSOLUTE_MM) / RAMP_MM))
    at_least_moderate = max(severe, 1.0 / (1.0 + np.exp((ap_mm - CANAL_RELATIVE_MM) / RAMP_MM)))
    rule = np.array([1.0 - at_least_moderate, at_least_moderate - severe, severe])
    return (1.0 - FLOOR) * rule + FLOOR * UNIFORM
