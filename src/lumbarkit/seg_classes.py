"""Semantic classes predicted by the segmentation network, shared by training and inference."""

from __future__ import annotations

BACKGROUND, BODY, DISC, CANAL, POSTERIOR, SACRUM = range(6)
CLASS_NAMES = ("background", "vertebral_body", "disc", "spinal_canal", "posterior_elements", "sacrum")
NUM_CLASSES = len(CLASS_NAMES)
