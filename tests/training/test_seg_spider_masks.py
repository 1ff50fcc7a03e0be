"""SPIDER mid-sagittal masks (spider_masks/) as segmentation training targets and evaluation truth."""

from __future__ import annotations

import numpy as np
import pytest

from lumbarkit.seg_classes import BODY, POSTERIOR, SACRUM
from lumbarkit.training.segment.data import ALLOWED_SETS, BELOW_LOWEST_LABEL, spider_mask_codes
from lumbarkit.training.segment.evaluate import disc_detection, disc_ids_from_bottom, spider_mask_region


def _mask() -> np.ndarray:
    """Three vertebrae (1) with two discs (2) between them, a canal (3) behind, and unlabelled
    bone (the sacrum) below the lowest disc: rows grow inferior."""
    m = np.zeros((120, 60), dtype=np.uint8)
    m[10:30, 10:30] = 1
    m[34:54, 10:30] = 1
    m[58:78, 10:30] = 1
    m[30:34, 10:30] = 2  # upper disc
    m[54:58, 10:30] = 2  # lowest disc
    m[5:80, 36:40] = 3
    m[12:26, 44:54] = 1  # posterior elements behind the canal
    m[12:26, 30:36] = 1  # bone reaching the canal's front edge
    return m


def test_codes_keep_sacrum_unknown_below_the_lowest_disc_and_labelled_vertebrae_not_sacral():
    codes = spider_mask_codes(_mask())
    assert ALLOWED_SETS[codes[20, 20]] == frozenset({BODY})  # in front of the canal: the body, never sacrum
    assert ALLOWED_SETS[codes[20, 50]] == frozenset({POSTERIOR})  # behind the canal
    assert ALLOWED_SETS[codes[20, 35]] == frozenset({BODY, POSTERIOR})  # at the canal's front edge: either
    assert codes[31, 20] == 3 and codes[50, 38] == 4
    assert codes[100, 20] == BELOW_LOWEST_LABEL  # unlabelled bone under L5/S1: anything but a body
    assert BODY not in ALLOWED_SETS[codes[100, 20]]
    assert ALLOWED_SETS[codes[5, 50]] == {0}  # background above the lowest disc stays background
    assert SACRUM in ALLOWED_SETS[codes[68, 20]]  # the labelled vertebra below the lowest disc is sacral


def test_discs_are_named_from_the_bottom_and_detection_counts_misses_and_extras():
    truth = _mask()
    ids = disc_ids_from_bottom(truth)
    assert ids[55, 20] == 124 and ids[31, 20] == 123  # L5/S1, then L4/L5
    pred = np.zeros_like(ids)
    pred[55, 12:28] = 124
    assert disc_detection(pred, ids, spider_mask_region(truth))["discs_found"] == 1
    pred[31, 12:28] = 123
    assert disc_detection(pred, ids, spider_mask_region(truth))["discs_all_found"]
    pred[5, 12:28] = 122  # a disc where none is labelled
    det = disc_detection(pred, ids, spider_mask_region(truth))
    assert det["discs_extra"] == 1 and not det["discs_all_found"]
    pred[110, 12:28] = 121  # in the unlabelled sacrum: not counted as an error
    assert disc_detection(pred, ids, spider_mask_region(truth))["discs_extra"] == 1


def test_real_spider_masks_are_listed_with_their_spacing_and_give_every_code(shared_data):
    from lumbarkit.training.segment.data import list_cases, load_case_slices

    cases = [c for c in list_cases(shared_data) if c["source"] == "spider_masks"]
    if not cases:
        pytest.skip("../shared/data has no spider_masks/")
    assert {c["sequence"] for c in cases} >= {"t1", "t2"}
    assert all(0.2 < c["spacing_mm"][0] < 1.5 for c in cases)
    space = {c["patient"] for c in list_cases(shared_data) if c["source"] == "spider_space"}
    assert any(c["patient"] in space for c in cases)  # same patient id as that patient's SPACE volume
    sl = load_case_slices(cases[0], 1.0)[0]
    present = set(np.unique(sl.codes))
    assert {1, 2, 3, 4, 14, BELOW_LOWEST_LABEL} <= present
