"""Submission rows for RSNA-format studies: the trained model where a crop exists, else the fallback, with reasons.

Every study gets all 25 rows, whatever is missing: a row without a crop takes the model's label prior; without a
model, spinal canal stenosis comes from the canal measurement rule (:mod:`lumbarkit.rsna.rule`) and the other
conditions from the uniform distribution.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from lumbarkit.rsna.format import CONDITIONS, LEVELS, SEVERITIES, row_id


def study_probabilities(crops, model) -> tuple[np.ndarray, list[str]]:
    """(25, 3) probabilities of one study's :class:`~lumbarkit.rsna.crops.StudyCrops`, and why rows fell back."""
    from lumbarkit.rsna.rule import UNIFORM, canal_probabilities

    reasons = []
    if model is not None:
        probs = np.where(crops.present[:, None], model.predict(crops.crops), model.prior)
        missing = [f"{CONDITIONS[i // len(LEVELS)]} {LEVELS[i % len(LEVELS)]}" for i in np.flatnonzero(~crops.present)]
        if missing:
            reasons.append(f"label prior for {len(missing)} row(s) without a crop ({', '.join(missing[:3])}"
                           f"{', ...' if len(missing) > 3 else ''})")
        return probs, reasons
    probs = np.tile(UNIFORM, (len(CONDITIONS) * len(LEVELS), 1))
    for li, level in enumerate(LEVELS):
        if level in crops.canal_ap_mm:
            probs[li] = canal_probabilities(crops.canal_ap_mm[level])
    reasons.append("no RSNA model: spinal canal stenosis from the canal AP rule where measured, other conditions uniform")
    return probs, reasons


def write_submission(rows: dict[str, dict[str, np.ndarray]], path: Path) -> Path:
    """``row_id,normal_mild,moderate,severe`` for every study (study id -> condition_level -> probabilities)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row_id", *SEVERITIES])
        for sid in sorted(rows):
            probs = rows[sid]
            for ci, c in enumerate(CONDITIONS):
                for li, lv in enumerate(LEVELS):
                    w.writerow([row_id(sid, c, lv), *(f"{v:.6f}" for v in probs[ci * len(LEVELS) + li])])
    tmp.replace(path)
    return path


def read_submission(path: Path) -> dict[str, np.ndarray]:
    """Row id -> (normal_mild, moderate, severe) of a submission CSV; an InputError on a malformed one."""
    from lumbarkit.errors import InputError

    import pandas as pd

    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read submission {Path(path).name}: {type(exc).__name__}") from None
    missing = [c for c in ("row_id", *SEVERITIES) if c not in table.columns]
    if missing:
        raise InputError(f"submission {Path(path).name} lacks column(s) {', '.join(missing)}")
    values = table[list(SEVERITIES)].to_numpy(dtype=float)
    if not np.all(np.isfinite(values)) or (values < 0).any():
        raise InputError(f"submission {Path(path).name} holds negative or non-finite probabilities")
    return dict(zip(table["row_id"].astype(str), values))
