"""Pairing SPIDER gradings with localised discs (bottom-up counting, exclusion reasons)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lumbarkit.training.grade import data as gd

LUMBAR = ["L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1"]


def _graded(*ivd_labels):
    # distinct Pfirrmann index per IVD label so a shifted pairing shows
    return {k: {"pfirrmann": k % 5, "modic": 0} for k in ivd_labels}


def test_ivd_labels_count_from_the_bottom():
    pairs, reason = gd.pair_series(LUMBAR, [], _graded(1, 2, 3, 4, 5))
    assert reason is None
    assert pairs["L5/S1"]["pfirrmann"] == 1 % 5
    assert pairs["L4/L5"]["pfirrmann"] == 2 % 5
    assert pairs["L1/L2"]["pfirrmann"] == 5 % 5
    assert set(pairs) == set(LUMBAR)


def test_t12_l1_paired_only_when_named_and_thoracic_or_zero_labels_ignored():
    pairs, reason = gd.pair_series(["T11/T12", "T12/L1", *LUMBAR], [], _graded(0, 1, 2, 3, 4, 5, 6, 7))
    assert reason is None
    assert pairs["T12/L1"]["pfirrmann"] == 6 % 5
    assert "T11/T12" not in pairs  # IVD label 7 is outside the lumbar crops
    pairs, _ = gd.pair_series(LUMBAR, [], _graded(1, 2, 3, 4, 5, 6))
    assert "T12/L1" not in pairs and len(pairs) == 5


def test_order_of_names_does_not_matter():
    a, _ = gd.pair_series(LUMBAR, [], _graded(1, 2, 3))
    b, _ = gd.pair_series(LUMBAR[::-1], [], _graded(1, 2, 3))
    assert a == b and set(a) == {"L5/S1", "L4/L5", "L3/L4"}


@pytest.mark.parametrize(
    ("names", "warnings", "graded", "reason"),
    [
        (["L1/L2", "L2/L3", "L3/L4", "L4/L5"], ["sacrum not seen: the lowest vertebral body was called L5"],
         _graded(1, 2), gd.LOWEST_NOT_L5S1),
        (LUMBAR, ["a disc seems missed between detected discs 2 and 3 from the top"], _graded(1, 2), gd.MISSED),
        ([], [], _graded(1), gd.NO_DISCS),
        (LUMBAR, [], {}, gd.NO_GRADINGS),
        (["T10/T11", "T11/T12"], [], _graded(1), gd.LOWEST_NOT_L5S1),
    ],
)
def test_exclusion_reasons(names, warnings, graded, reason):
    pairs, why = gd.pair_series(names, warnings, graded)
    assert why == reason and pairs == {}


def test_inferred_sacrum_is_kept():
    pairs, reason = gd.pair_series(LUMBAR, ["sacrum not segmented: inferred below the lowest disc"], _graded(1, 2))
    assert reason is None and set(pairs) == {"L5/S1", "L4/L5"}


def test_read_gradings_drops_label_zero(tmp_path):
    (tmp_path / "gradings.csv").write_text(
        "Patient,IVD label,Modic,UP endplate,LOW endplate,Spondylolisthesis,Disc herniation,Disc narrowing,Disc bulging,Pfirrman grade\n"
        "7,0,0,0,0,0,0,0,0,2\n7,1,2,1,0,0,1,1,1,4\n8,1,0,0,0,0,0,0,0,1\n")
    g = gd.read_gradings(tmp_path)
    assert set(g) == {"7", "8"} and set(g["7"]) == {1}
    assert g["7"][1]["pfirrmann"] == 3 and g["7"][1]["modic"] == 2 and g["7"][1]["herniation"] == 1


def test_summary_counts_reasons():
    rows = [
        {"series": "1_t1", "patient": "1", "sequence": "t1", "reason": None, "paired": 5, "warnings": []},
        {"series": "1_t2", "patient": "1", "sequence": "t2", "reason": None, "paired": 6,
         "warnings": ["sacrum not segmented: inferred"]},
        {"series": "2_t2", "patient": "2", "sequence": "t2", "reason": gd.MISSED, "paired": 0, "warnings": []},
        {"series": "3_t2", "patient": "3", "sequence": "t2", "reason": gd.MISSED, "paired": 0, "warnings": []},
    ]
    c = gd.summarise_pairing(rows)["counts"]
    assert c["series_kept"] == 2 and c["discs_paired"] == 11 and c["patients_kept"] == 1
    assert c["series_excluded"] == {gd.MISSED: 2}
    assert c["series_kept_sacrum_inferred"] == 1


def test_sequence_of_series_names():
    assert gd.sequence_of("12_t2_SPACE") == "t2_SPACE" and gd.sequence_of("3_t1") == "t1"


def test_build_on_a_few_real_series(shared_data, tmp_path):
    """Stage 1 + crops + pairing on the first SPIDER series; the cache round-trips."""
    path = gd.build_grade_dataset(shared_data / "spider", tmp_path, limit=3)
    data = gd.load_grade_dataset(tmp_path)
    assert path.is_file() and (tmp_path / gd.REPORT_NAME).is_file() and (tmp_path / gd.MONTAGE_NAME).is_file()
    assert len(data) == data.meta["counts"]["discs_paired"] > 0
    assert data.images.shape[1:] == (data.spec.n_slices, *data.spec.shape_px)
    assert np.all((data.images >= 0) & (data.images <= 1))
    assert set(data.level) <= {"T12/L1", *LUMBAR} and "L5/S1" in set(data.level)
    assert set(np.unique(data.labels["pfirrmann"])) <= {-1, 0, 1, 2, 3, 4}


def test_cache_is_rebuilt_for_another_segmentation_model(shared_data, tmp_path):
    """A cache cut by a different stage-1 model is not reused (its disc positions and pairings differ)."""
    path = gd.build_grade_dataset(shared_data / "spider", tmp_path, limit=2)
    sha = gd.load_grade_dataset(tmp_path).meta["seg_model_sha256"]
    stamp = path.stat().st_mtime_ns
    gd.build_grade_dataset(shared_data / "spider", tmp_path, limit=2)
    assert path.stat().st_mtime_ns == stamp  # same model and spec: reused
    z = dict(np.load(path))
    meta = json.loads(str(z["meta"]))
    z["meta"] = np.array(json.dumps({**meta, "seg_model_sha256": "0" * 64}))
    np.savez_compressed(path, **z)
    gd.build_grade_dataset(shared_data / "spider", tmp_path, limit=2)
    assert gd.load_grade_dataset(tmp_path).meta["seg_model_sha256"] == sha
