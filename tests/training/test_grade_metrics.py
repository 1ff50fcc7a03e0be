"""Grading metrics against hand-computed examples; the task list and the Pfirrmann -> LDD mapping."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("sklearn")

from lumbarkit.tasks import MISSING, TASK_NAMES, encode_row, get_task, ldd_index, ldd_probabilities, pfirrmann_to_ldd  # noqa: E402
from lumbarkit.training.grade.metrics import (  # noqa: E402
    auc,
    balanced_accuracy,
    bootstrap_ci,
    cohen_kappa,
    confusion,
    evaluate_grades,
    evaluate_task,
    lins_ccc,
    pairwise_auc,
    per_class,
    save_confusion_png,
)


def _from_table(table) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) realising a confusion table (rows true, columns predicted)."""
    t, p = [], []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            t += [i] * count
            p += [j] * count
    return np.array(t), np.array(p)


def one_hot(pred: np.ndarray, n: int, sharp: float = 0.9) -> np.ndarray:
    prob = np.full((len(pred), n), (1 - sharp) / (n - 1))
    prob[np.arange(len(pred)), pred] = sharp
    return prob


# ---------------------------------------------------------------- hand-computed values


def test_kappa_of_a_two_by_two_table():
    # po = 35/50 = 0.7, pe = (25*30 + 25*20) / 50^2 = 0.5  ->  kappa = 0.4
    y, p = _from_table([[20, 5], [10, 15]])
    assert cohen_kappa(y, p, 2) == pytest.approx(0.4)
    assert confusion(y, p, 2).tolist() == [[20, 5], [10, 15]]
    pc = per_class(y, p, 2)
    assert pc[1]["sensitivity"] == pytest.approx(15 / 25) and pc[1]["specificity"] == pytest.approx(20 / 25)
    assert pc[1]["f1"] == pytest.approx(2 * 15 / (2 * 15 + 5 + 10))
    assert balanced_accuracy(y, p) == pytest.approx((20 / 25 + 15 / 25) / 2)


def test_weighted_kappas_by_hand():
    # observed O = [[1,0,0],[0,0,1],[0,0,1]]; row sums 1,1,1, column sums 1,0,2, so expected E = outer / 3.
    # quadratic w = (i-j)^2/4: sum wO = 1/4, sum wE = (2 + 3/4 + 1)/3 = 5/4  ->  1 - (1/4)/(5/4) = 0.8
    # linear    w = |i-j|/2:   sum wO = 1/2, sum wE = (2 + 3/2 + 1)/3 = 3/2  ->  1 - (1/2)/(3/2) = 2/3
    y, p = np.array([0, 1, 2]), np.array([0, 2, 2])
    assert cohen_kappa(y, p, 3) == pytest.approx(0.5)  # po 2/3, pe 1/3
    assert cohen_kappa(y, p, 3, "linear") == pytest.approx(1 - 0.5 / 1.5)
    assert cohen_kappa(y, p, 3, "quadratic") == pytest.approx(1 - 0.25 / 1.25)


def test_lins_ccc():
    x = np.array([1.0, 2.0, 3.0])
    assert lins_ccc(x, x) == pytest.approx(1.0)
    assert lins_ccc(x, x + 1) == pytest.approx(4 / 7)  # 2*(2/3) / (2/3 + 2/3 + 1)
    assert np.corrcoef(x, x + 1)[0, 1] == pytest.approx(1.0)  # correlated perfectly, yet CCC < 1
    assert math.isnan(lins_ccc([1.0], [1.0]))


def test_auc_matches_sklearn_with_ties_and_pairwise_auc():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    score = np.round(rng.random(200) + 0.3 * y, 1)  # many ties
    assert auc(y, score) == pytest.approx(roc_auc_score(y, score))
    assert math.isnan(auc(np.ones(5), np.arange(5)))
    prob = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]])
    yt = np.array([0, 0, 1, 2])
    assert pairwise_auc(yt, prob, 0, 1) == pytest.approx(1.0)
    assert pairwise_auc(yt, prob, 1, 2) == pytest.approx(1.0)


def test_perfect_predictions():
    y = np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
    r = evaluate_task(get_task("pfirrmann"), y, one_hot(y, 5), n_boot=0)
    m = r["metrics"]
    for key in ("accuracy", "balanced_accuracy", "kappa", "kappa_linear", "kappa_quadratic", "ccc", "auc_macro",
                "ldd_accuracy", "ldd_auc_mild_vs_moderate", "ldd_auc_mild_vs_severe", "ldd_auc_moderate_vs_severe"):
        assert m[key] == pytest.approx(1.0), key
    assert r["confusion"] == np.diag([2] * 5).tolist()
    assert r["ldd_confusion"] == [[4, 0, 0], [0, 2, 0], [0, 0, 4]]


def test_missing_labels_are_dropped_and_undefined_values_are_none():
    t = get_task("herniation")
    y = np.array([0, 0, MISSING, 0])
    r = evaluate_task(t, y, one_hot(np.array([0, 1, 1, 0]), 2), n_boot=0)
    assert r["n"] == 3
    assert r["metrics"]["auc"] is None  # one class only
    json.dumps(r, allow_nan=False)


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_point_estimate_and_is_seeded():
    rng = np.random.default_rng(1)
    n = 300
    patients = np.repeat(np.arange(60), 5)
    y = rng.integers(0, 5, n)
    noisy = np.clip(y + rng.integers(-1, 2, n), 0, 4)
    prob = one_hot(noisy, 5, sharp=0.6)
    t = get_task("pfirrmann")
    r = evaluate_task(t, y, prob, patients, n_boot=200, seed=0)
    assert r["ci_resampling"] == "patients"
    for key, (lo, hi) in r["ci95"].items():
        point = r["metrics"][key]
        assert lo <= point <= hi, key
    assert r["ci95"] == evaluate_task(t, y, prob, patients, n_boot=200, seed=0)["ci95"]
    disc_level = bootstrap_ci(t, y, prob, None, n_boot=200, seed=0)
    assert disc_level["kappa_quadratic"][1] - disc_level["kappa_quadratic"][0] > 0


def test_evaluate_grades_breakdown_and_modic_any():
    rng = np.random.default_rng(2)
    n = 80
    tasks = [get_task("pfirrmann"), get_task("modic")]
    y = {"pfirrmann": rng.integers(0, 5, n), "modic": rng.integers(0, 4, n)}
    prob = {k: one_hot(v, len(get_task(k).classes)) for k, v in y.items()}
    res = evaluate_grades(tasks, y, prob, patient_ids=np.arange(n) // 4, n_boot=20,
                          breakdown={"level": np.where(np.arange(n) % 2, "L4/L5", "L5/S1")})
    assert res["overall"]["modic"]["metrics"]["any_balanced_accuracy"] == pytest.approx(1.0)
    assert set(res["by"]["level"]) == {"L4/L5", "L5/S1"}
    assert res["by"]["level"]["L4/L5"]["pfirrmann"]["n"] == n // 2
    json.dumps(res, allow_nan=False)


def test_confusion_png(tmp_path):
    path = save_confusion_png([[3, 1], [0, 4]], ["absent", "present"], tmp_path / "cm.png", title="herniation")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- tasks


def test_task_list_and_encoding():
    assert TASK_NAMES == ("pfirrmann", "modic", "endplate_upper", "endplate_lower", "spondylolisthesis",
                          "herniation", "narrowing", "bulging")
    pf = get_task("pfirrmann")
    assert pf.kind == "ordinal" and pf.column == "Pfirrman grade" and pf.encode(3) == 2 and pf.decode(4) == 5
    assert pf.encode(float("nan")) == MISSING and pf.encode(7) == MISSING and pf.encode(None) == MISSING
    row = {"Pfirrman grade": 4, "Modic": 2, "UP endplate": 1, "LOW endplate": 0, "Spondylolisthesis": 0,
           "Disc herniation": 1, "Disc narrowing": 1, "Disc bulging": float("nan")}
    assert encode_row(row) == {"pfirrmann": 3, "modic": 2, "endplate_upper": 1, "endplate_lower": 0,
                               "spondylolisthesis": 0, "herniation": 1, "narrowing": 1, "bulging": MISSING}
    with pytest.raises(KeyError):
        get_task("pfirrman")


def test_pfirrmann_to_ldd():
    assert [pfirrmann_to_ldd(g) for g in (1, 2, 3, 4, 5)] == ["mild", "mild", "moderate", "severe", "severe"]
    with pytest.raises(ValueError):
        pfirrmann_to_ldd(0)
    assert ldd_index(np.array([0, 1, 2, 3, 4, -1])).tolist() == [0, 0, 1, 2, 2, -1]
    p = np.array([[0.1, 0.2, 0.3, 0.25, 0.15]])
    assert np.allclose(ldd_probabilities(p), [[0.3, 0.3, 0.4]])


def test_ldd_from_the_grade_shown_is_scored_from_the_confusion():
    from lumbarkit.training.grade.card import ldd_from_grade_line

    c = [[2, 2, 0, 0, 0], [0, 2, 0, 0, 0], [0, 0, 2, 2, 0], [0, 0, 0, 2, 0], [0, 0, 0, 0, 2]]
    # I->II stays mild (right), III->IV is moderate->severe (wrong): 12 of 14 right; per class 6/6, 2/4, 4/4
    line = ldd_from_grade_line(c)
    assert "accuracy 0.857" in line and "balanced accuracy 0.833" in line
