"""Stage 1 output: per-voxel class probabilities of the segmentation network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SemanticSegmentation:
    """Per-voxel class probabilities on the scan grid (classes in :mod:`seg_classes`)."""

    probabilities: np.ndarray  # (slices, classes, rows, cols) float32
    model_name: str = ""
    model_sha256: str = ""

    @property
    def classes(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1).astype(np.uint8)
