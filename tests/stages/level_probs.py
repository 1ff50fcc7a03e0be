"""Test helper: exact label maps (phantoms) as class probabilities, and names read back at the truth's voxels."""

from __future__ import annotations

import numpy as np

from lumbarkit.levels import CANAL_ID, label_name, lumbar_count_of
from lumbarkit.seg_classes import BACKGROUND, BODY, CANAL, DISC, NUM_CLASSES, SACRUM


def one_hot_probabilities(labels: np.ndarray, p: float = 0.9) -> np.ndarray:
    """Semantic probabilities from a VerSe label map: S1 as sacrum, bodies, discs, canal."""
    cls = np.full(labels.shape, BACKGROUND)
    cls[(labels > 0) & (labels < 100)] = BODY
    cls[labels == 26] = SACRUM
    cls[labels > CANAL_ID] = DISC
    cls[labels == CANAL_ID] = CANAL
    probs = np.full((labels.shape[0], NUM_CLASSES) + labels.shape[1:], (1 - p) / (NUM_CLASSES - 1), dtype=np.float32)
    for c in range(NUM_CLASSES):
        probs[:, c][cls == c] = p
    return probs


def named_correctly(levels, truth_labels: np.ndarray) -> dict[str, str]:
    """Truth name -> predicted name at the majority of its voxels."""
    out = {}
    lumbar = lumbar_count_of(int(v) for v in np.unique(truth_labels) if v and v != CANAL_ID)
    for lid in np.unique(truth_labels):
        if lid in (0, CANAL_ID):
            continue
        vals = levels.segmentation.labels[truth_labels == lid]
        vals = vals[vals > 0]
        out[label_name(int(lid), lumbar)] = label_name(int(np.bincount(vals).argmax()), lumbar) if len(vals) else "missed"
    return out
