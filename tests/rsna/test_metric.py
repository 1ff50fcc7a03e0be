"""The RSNA 2024 score against values computed by hand and against scikit-learn's log_loss."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lumbarkit.rsna.format import split_row_id, target_columns
from lumbarkit.rsna.metric import labels_long, score, weighted_log_loss


def _train_table() -> pd.DataFrame:
    row1 = {c: np.nan for c in target_columns()} | {"study_id": "11"}
    row1.update({"spinal_canal_stenosis_l1_l2": "Severe", "spinal_canal_stenosis_l2_l3": "Normal/Mild",
                 "left_neural_foraminal_narrowing_l1_l2": "Moderate", "right_subarticular_stenosis_l3_l4": "Normal/Mild"})
    row2 = {c: np.nan for c in target_columns()} | {"study_id": "22", "spinal_canal_stenosis_l1_l2": "Normal/Mild"}
    return pd.DataFrame([row1, row2])


def test_score_of_a_small_table_by_hand():
    truth = labels_long(_train_table())
    assert len(truth) == 5  # blank labels are not scored
    pred = {rid: np.array([1 / 3] * 3) for rid in truth}
    pred.update({"11_spinal_canal_stenosis_l1_l2": [0.2, 0.3, 0.5], "11_spinal_canal_stenosis_l2_l3": [0.7, 0.2, 0.1],
                 "22_spinal_canal_stenosis_l1_l2": [0.6, 0.3, 0.1],
                 "11_left_neural_foraminal_narrowing_l1_l2": [0.5, 0.25, 0.25],
                 "11_right_subarticular_stenosis_l3_l4": [0.9, 0.05, 0.05],
                 "22_spinal_canal_stenosis_l2_l3": [0.0, 0.0, 1.0]})  # an extra, unlabelled row is ignored
    s = score({k: np.asarray(v) for k, v in pred.items()}, truth)
    spinal = (4 * -math.log(0.5) + 1 * -math.log(0.7) + 1 * -math.log(0.6)) / 6  # weights 4 (severe), 1, 1
    foraminal = -math.log(0.25)
    subarticular = -math.log(0.9)
    any_severe = (4 * -math.log(0.5) + 1 * -math.log(1 - 0.1)) / 5  # study 11: severe, max P 0.5, weight 4; study 22
    assert s.spinal == pytest.approx(spinal, abs=1e-12)
    assert s.foraminal == pytest.approx(foraminal, abs=1e-12)
    assert s.subarticular == pytest.approx(subarticular, abs=1e-12)
    assert s.any_severe_spinal == pytest.approx(any_severe, abs=1e-12)
    assert s.score == pytest.approx((spinal + foraminal + subarticular + any_severe) / 4, abs=1e-12)
    assert s.rows == {"spinal": 3, "foraminal": 1, "subarticular": 1, "any_severe_spinal": 2}


def test_probabilities_are_clipped_and_renormalised():
    assert weighted_log_loss([0], [[0.4, 0.2, 0.2]], [1.0]) == pytest.approx(-math.log(0.5))  # rows summing to 0.8
    assert weighted_log_loss([2], [[1.0, 0.0, 0.0]], [4.0]) == pytest.approx(-math.log(np.finfo(float).eps), rel=1e-9)


def test_weighted_log_loss_is_sklearns():
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(0)
    p = rng.dirichlet([2, 1, 1], size=200)
    y = rng.integers(0, 3, 200)
    w = np.array([1.0, 2.0, 4.0])[y]
    assert weighted_log_loss(y, p, w) == pytest.approx(log_loss(y, p, sample_weight=w, labels=[0, 1, 2]), abs=1e-12)


def test_a_labelled_row_without_prediction_is_an_error():
    truth = labels_long(_train_table())
    with pytest.raises(ValueError, match="no prediction"):
        score({}, truth)


def test_row_ids_split_back():
    assert split_row_id("4003253_left_neural_foraminal_narrowing_l5_s1") == ("4003253", "left_neural_foraminal_narrowing", "l5_s1")
    with pytest.raises(ValueError):
        split_row_id("4003253_spinal_l5_s1")
