"""Phantom anatomy defaults: typical adult body and disc sizes (mm), intensities, canal and sacrum shape."""

from __future__ import annotations

import numpy as np

DEFAULT_VERTEBRAE = ("T12", "L1", "L2", "L3", "L4", "L5", "S1")


DEFAULT_BODY_HEIGHT_MM = {"T10": 22.0, "T11": 22.5, "T12": 23.5, "L1": 25.0, "L2": 26.0, "L3": 27.0, "L4": 27.0, "L5": 26.0, "L6": 25.0, "S1": 28.0}


DEFAULT_BODY_DEPTH_MM = {"T10": 28.0, "T11": 29.0, "T12": 30.0, "L1": 32.0, "L2": 33.0, "L3": 34.0, "L4": 35.0, "L5": 35.0, "L6": 35.0, "S1": 38.0}


DEFAULT_DISC_HEIGHT_MM = {
    "T10/T11": 6.0, "T11/T12": 6.5, "T12/L1": 7.0, "L1/L2": 8.0, "L2/L3": 9.0, "L3/L4": 10.0, "L4/L5": 11.0, "L5/S1": 10.0,
    "L5/L6": 10.5, "L6/S1": 9.0, "L4/S1": 10.0,  # transitional spines (six or four lumbar vertebrae)
}


# Arbitrary MR signal units (0..~1000), typical contrasts: T2 fluid and fat bright, T1 fluid dark, fat and
# fatty marrow bright. ``disc`` is the nucleus, ``canal`` the cord and nerve roots, ``background`` muscle
# (the soft tissue around the spine), ``cortex`` cortical bone and ligaments.
DEFAULT_INTENSITIES = {
    "T2": {"body": 350.0, "disc": 720.0, "annulus": 200.0, "canal": 300.0, "csf": 900.0, "background": 160.0,
           "fat": 620.0, "cortex": 45.0, "air": 0.0},
    "T1": {"body": 500.0, "disc": 290.0, "annulus": 230.0, "canal": 320.0, "csf": 120.0, "background": 250.0,
           "fat": 800.0, "cortex": 60.0, "air": 0.0},
}


BODY_HALF_WIDTH_MM = 20.0  # lateral half extent of bodies and discs


CANAL_HALF_WIDTH_MM = 8.0  # lateral half extent of the canal


CANAL_GAP_MM = 1.6  # posterior wall -> canal (posterior longitudinal ligament)


CANAL_DEPTH_MM = 15.0  # AP depth of the canal


MARGIN_MM = 20.0  # automatic field of view: margin above the top labelled body and below S3


ANTERIOR_VIEW_MM = 45.0  # automatic field of view: soft tissue shown in front of the bodies


SUPERSAMPLE = 4


GRID_NUDGE_MM = 1e-4


BOTTOM_CENTROID_MM = np.array([0.0, 110.0])  # plane (a, b) of the lowest body's centroid: RAS (0, 0, -110)


EXTRA_ABOVE = 3  # unlabelled vertebrae drawn above the top labelled one


# Below S1: name, AP depth at the superior / inferior endplate and posterior height as fractions of S1's depth and
# height, turn (deg) of the inferior endplate against the superior one, negative = posterior end down (the sacrum is
# concave in front: it runs down and back from S1, then curves down and forward), gap (mm) to the segment above.
SACRAL_SEGMENTS = (
    ("S2", 1.00, 0.76, 0.80, -16.0, 2.0),
    ("S3", 0.76, 0.62, 0.68, -16.0, 1.8),
    ("S4", 0.62, 0.50, 0.58, -14.0, 1.6),
    ("S5", 0.50, 0.40, 0.50, -14.0, 1.5),
)


FUSED = ("S1", "S2", "S3", "S4", "S5")  # drawn as one bone


SACRAL_CANAL_MM = (15.0, 12.0, 9.5, 9.0, 6.5, 6.0, 3.5, 0.5, 0.0)  # sacral canal depth: S1 IP, S2 SP, S2 IP, ... S5 IP


SACRAL_WALL_MM = (7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 5.0, 2.5)  # posterior sacral wall: S1 SP, S1 IP, S2 SP, ... S5 IP


PE_MARROW = 0.65  # marrow signal of posterior elements and the posterior sacrum relative to ``body``


REMNANT = 0.9  # signal of the S1/S2 remnant disc relative to the sacral marrow (a faint line)


SACRAL_MARROW = 0.85  # median signal of S1 relative to ``body`` (real S1 / L3 marrow ratios: about 0.7-1.3)


CORTEX_MM = 1.0  # cortical rim of bodies (posterior elements and the posterior sacral wall: 1.8 mm)


SKIN_MM = {"lumbar": 70.0, "S1": 60.0, "S2": 52.0, "S3": 46.0, "S4": 44.0}  # skin behind the posterior walls


SPINOUS_MM = {"lumbar": (31.0, 15.0, 0.0), "thoracic": (26.0, 11.0, 8.0)}  # length, tip height, tip drop


Point = tuple[float, float, float]
