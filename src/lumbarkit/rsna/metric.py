"""The RSNA 2024 competition score, as the host's scoring code computes it.

Per condition group (spinal, foraminal, subarticular): a sample-weighted log loss over that group's labelled
rows, weight 1 / 2 / 4 for a true normal-mild / moderate / severe row. Plus ``any_severe_spinal`` per study:
label = any spinal level severe, prediction = the largest P(severe) over the study's spinal rows, weight = the
largest sample weight among them; a binary log loss. The score is the plain mean of the four. Predictions are
clipped to [eps, 1 - eps] (eps of float64) and each row renormalised, as scikit-learn's ``log_loss`` did when the
metric was written; rows whose label is blank are not scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumbarkit.rsna.format import CONDITIONS, GROUPS, LABEL_VALUES, LEVELS, SAMPLE_WEIGHTS, SEVERITIES, group_of, row_id

EPS = float(np.finfo(np.float64).eps)


def weighted_log_loss(truth: np.ndarray, probs: np.ndarray, weights: np.ndarray) -> float:
    """Mean of ``-weight * log p(true class)`` over rows divided by the summed weights; ``probs`` (N, K) are
    clipped to [eps, 1 - eps] and renormalised per row first."""
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1 - EPS)
    p = p / p.sum(axis=1, keepdims=True)
    w = np.asarray(weights, dtype=np.float64)
    return float(np.sum(-w * np.log(p[np.arange(len(p)), np.asarray(truth, dtype=int)])) / np.sum(w))


@dataclass(frozen=True)
class Score:
    """The competition score and its four parts (log losses; lower is better) with the rows each part scored."""

    score: float
    spinal: float
    foraminal: float
    subarticular: float
    any_severe_spinal: float
    rows: dict[str, int]

    def to_dict(self) -> dict:
        return {"score": self.score, "spinal": self.spinal, "foraminal": self.foraminal,
                "subarticular": self.subarticular, "any_severe_spinal": self.any_severe_spinal, "rows": dict(self.rows)}


def labels_long(train) -> dict[str, int]:
    """``row id -> severity index`` of every non-blank label of a ``train.csv`` table (pandas DataFrame)."""
    out = {}
    for _, row in train.iterrows():
        for condition in CONDITIONS:
            for level in LEVELS:
                value = row.get(f"{condition}_{level}")
                if isinstance(value, str) and value in LABEL_VALUES:
                    out[row_id(row["study_id"], condition, level)] = LABEL_VALUES[value]
    return out


def score(predictions: dict[str, np.ndarray], truth: dict[str, int]) -> Score:
    """The score of ``predictions`` (row id -> 3 probabilities) against ``truth`` (row id -> 0/1/2).

    Every labelled row must be predicted (a missing one is a ValueError naming it), as in the host's code."""
    missing = sorted(set(truth) - set(predictions))
    if missing:
        raise ValueError(f"{len(missing)} labelled row(s) have no prediction, e.g. {missing[0]}")
    ids = sorted(truth)
    y = np.array([truth[i] for i in ids])
    p = np.array([np.asarray(predictions[i], dtype=np.float64) for i in ids]).reshape(len(ids), len(SEVERITIES))
    w = np.array(SAMPLE_WEIGHTS)[y]
    groups = np.array([group_of(_condition(i)) for i in ids])
    parts, rows = {}, {}
    for g in GROUPS:
        sel = groups == g
        parts[g] = weighted_log_loss(y[sel], p[sel], w[sel]) if sel.any() else float("nan")
        rows[g] = int(sel.sum())
    studies: dict[str, list[int]] = {}
    for n, i in enumerate(ids):
        if groups[n] == "spinal":
            studies.setdefault(i.split("_spinal_canal_stenosis_")[0], []).append(n)
    label = np.array([int((y[idx] == 2).any()) for idx in studies.values()])
    pred = np.array([p[idx, 2].max() for idx in studies.values()])
    weight = np.array([w[idx].max() for idx in studies.values()])
    two = np.stack([1 - pred, pred], axis=1)
    parts["any_severe_spinal"] = weighted_log_loss(label, two, weight) if len(label) else float("nan")
    rows["any_severe_spinal"] = len(label)
    total = float(np.mean([parts[k] for k in ("spinal", "foraminal", "subarticular", "any_severe_spinal")]))
    return Score(total, parts["spinal"], parts["foraminal"], parts["subarticular"], parts["any_severe_spinal"], rows)


def _condition(rid: str) -> str:
    from lumbarkit.rsna.format import split_row_id

    return split_row_id(rid)[1]
