"""Levels across the series of a study: names compared where disc centres coincide in patient millimetres."""

from __future__ import annotations

from types import SimpleNamespace

from lumbarkit.study.match import CENTRE_TOLERANCE_MM, check_levels

NAMES = ["L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1"]


def _series(names, shift_mm=(0.0, 0.0, 0.0)):
    """A series whose discs lie 35 mm apart along z (head up), named ``names`` top to bottom."""
    discs = [SimpleNamespace(name=n, centroid_mm=(shift_mm[0], 10.0 + shift_mm[1], 100.0 - 35.0 * k + shift_mm[2]))
             for k, n in enumerate(names)]
    return SimpleNamespace(levels=SimpleNamespace(discs=discs))


def test_agreeing_series_of_one_frame():
    check = check_levels([_series(NAMES), _series(NAMES, (12.0, 2.0, -1.5))], ["1.2.3", "1.2.3"], ["T2", "T1"])
    assert check.compared == ((0, 1),) and check.disagreements == () and check.outliers == ()
    assert check.offsets_mm["0-1"]["L3/L4"] == 2.5  # sagittal-plane distance only: the slice offset (x) does not count


def test_names_shifted_by_one_level_are_a_disagreement():
    shifted = ["T12/L1", "L1/L2", "L2/L3", "L3/L4", "L4/L5"]  # same discs, named one level higher
    check = check_levels([_series(NAMES), _series(shifted)], ["f", "f"], ["series 1 (T2)", "series 2 (T1)"])
    assert len(check.disagreements) == 1
    assert "series 1 (T2) and series 2 (T1) disagree" in check.disagreements[0] and "named L1/L2" in check.disagreements[0]


def test_far_centres_are_a_disagreement():
    check = check_levels([_series(NAMES), _series(NAMES, (0.0, 0.0, CENTRE_TOLERANCE_MM + 4))], ["f", "f"], ["a", "b"])
    assert check.disagreements and "no disc within" in check.disagreements[0]


def test_other_frames_are_not_compared_in_mm():
    check = check_levels([_series(NAMES), _series(NAMES, (0, 0, 50))], ["f", "g"], ["a", "b"])
    assert check.compared == () and check.disagreements == ()


def test_the_series_unlike_the_majority_is_reported():
    shifted = ["T12/L1", "L1/L2", "L2/L3", "L3/L4", "L4/L5"]
    check = check_levels([_series(NAMES), _series(shifted), _series(NAMES)], ["f"] * 3, ["a", "b", "c"])
    assert check.outliers == (1,)
    assert len(check.disagreements) == 2
