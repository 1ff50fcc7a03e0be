"""Patient-level cross-validation folds and seeding, shared by the segmentation and grading trainers.

Both fold rules put every series of a patient in one fold; they are kept exactly as the published
cross-validations assigned them (the model cards' numbers depend on it):

* :func:`patient_folds` (grader): a seeded permutation of the sorted patient ids, dealt round-robin;
* :func:`source_balanced_folds` (segmentation): per source, a seeded shuffle dealt round-robin with
  an offset that carries on from the previous source, so every fold gets a share of every source.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np


def patient_folds(patients: Iterable, n_folds: int, seed: int) -> dict[str, int]:
    """Patient id -> fold (0..n_folds-1), a seeded permutation of the sorted patient ids dealt round-robin."""
    ids = sorted(set(str(p) for p in patients))
    order = np.random.default_rng(seed).permutation(len(ids))
    return {ids[i]: int(k % n_folds) for k, i in enumerate(order)}


def source_balanced_folds(cases: list[dict], n_folds: int, seed: int) -> dict[str, int]:
    """Patient -> fold for cases with ``source`` and ``patient`` keys, balanced within each source."""
    rng = np.random.default_rng(seed)
    folds: dict[str, int] = {}
    by_source: dict[str, list[str]] = {}
    for c in cases:
        by_source.setdefault(c["source"], [])
        if c["patient"] not in by_source[c["source"]]:
            by_source[c["source"]].append(c["patient"])
    offset = 0
    for source in sorted(by_source):
        patients = sorted(by_source[source])
        rng.shuffle(patients)
        for i, p in enumerate(patients):
            folds.setdefault(p, (i + offset) % n_folds)
        offset += len(patients)
    return folds


def set_seeds(seed: int, monai_determinism: bool = False) -> None:
    """Seed Python's, NumPy's and torch's generators (and MONAI's determinism when asked)."""
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if monai_determinism:
        from monai.utils import set_determinism

        set_determinism(seed=seed)
