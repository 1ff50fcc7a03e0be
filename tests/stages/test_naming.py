"""Level names that can be trusted: ``spine.naming.uncertain`` exactly when cues disagree, transitional spines.

Probabilities are exact phantoms (known truth) turned one-hot; each failure the issue names is drawn into
them: two discs read as one, a missed disc, the sacrum out of view, six and four lumbar vertebrae.
"""

from __future__ import annotations

import numpy as np
import pytest

from lumbarkit.levels import disc_id, vertebra_id
from lumbarkit.phantom import make_phantom
from lumbarkit.scan import Scan
from lumbarkit.seg_classes import BACKGROUND, BODY, DISC
from lumbarkit.stages.s2_localize import localize

from level_probs import named_correctly, one_hot_probabilities  # noqa: E402 (tests/stages/ helper)

SIX = ("T12", "L1", "L2", "L3", "L4", "L5", "L6", "S1")
FOUR = ("T12", "L1", "L2", "L3", "L4", "S1")


def _wrong(levels, labels) -> dict[str, str]:
    """Truth name -> predicted name for every found level named otherwise."""
    return {k: v for k, v in named_correctly(levels, labels).items() if v not in (k, "missed")}


def test_usual_spine_is_named_right_and_not_uncertain():
    ph = make_phantom(noise_sigma=0.0)
    levels = localize(ph.scan, one_hot_probabilities(ph.labels))
    assert not _wrong(levels, ph.labels)
    assert levels.naming.uncertain is False and levels.naming.reasons == ()
    assert levels.naming.anchor == "sacrum" and levels.naming.lumbar_vertebrae == 5
    assert levels.user_warnings() == []


def test_missed_disc_is_counted_in_and_marked_uncertain():
    ph = make_phantom(noise_sigma=0.0)
    probs = one_hot_probabilities(ph.labels)
    gone = ph.labels == disc_id("L2/L3")
    probs[:, DISC][gone], probs[:, BACKGROUND][gone] = probs[:, BACKGROUND][gone], probs[:, DISC][gone]
    levels = localize(ph.scan, probs)
    assert not _wrong(levels, ph.labels)  # the names above the gap are not shifted
    assert levels.naming.uncertain
    assert any("gap" in r for r in levels.naming.reasons)


def test_two_discs_read_as_one_never_pass_silently():
    ph = make_phantom(noise_sigma=0.0)
    probs = one_hot_probabilities(ph.labels)
    merged = np.isin(ph.labels, [disc_id("L2/L3"), vertebra_id("L3"), disc_id("L3/L4")])
    probs[:, DISC][merged], probs[:, BODY][merged] = 0.9, 0.02
    levels = localize(ph.scan, probs)
    assert levels.naming.uncertain, levels.naming
    assert any("larger" in r or "spacing" in r or "gap" in r for r in levels.naming.reasons)


@pytest.mark.parametrize("keep_mm", [0.0, 8.0, 20.0])
def test_sacrum_out_of_view_is_named_right_or_uncertain(keep_mm):
    ph = make_phantom(noise_sigma=0.0)
    rows = np.argwhere(ph.labels == disc_id("L5/S1"))[:, 1]
    cut = int(rows.max() + keep_mm / ph.scan.spacing_mm[1]) + 1
    scan = Scan(np.ascontiguousarray(ph.scan.array[:, :cut]), ph.scan.affine, ph.scan.metadata)
    labels = ph.labels[:, :cut]
    levels = localize(scan, one_hot_probabilities(labels))
    assert not _wrong(levels, labels) or levels.naming.uncertain


def test_six_lumbar_vertebrae_are_named_when_declared():
    ph = make_phantom(noise_sigma=0.0, vertebrae=SIX)
    levels = localize(ph.scan, one_hot_probabilities(ph.labels), lumbar_vertebrae=6)
    names = named_correctly(levels, ph.labels)
    assert names == {k: k for k in names}
    assert {"L6", "L5/L6", "L6/S1"} <= set(names)
    assert levels.naming.lumbar_vertebrae == 6 and levels.naming.lumbar_declared and not levels.naming.uncertain


def test_four_lumbar_vertebrae_are_named_when_declared():
    ph = make_phantom(noise_sigma=0.0, vertebrae=FOUR)
    levels = localize(ph.scan, one_hot_probabilities(ph.labels), lumbar_vertebrae=4)
    names = named_correctly(levels, ph.labels)
    assert names == {k: k for k in names}
    assert "L4/S1" in names and "L5" not in [i.name for i in levels.instances]


def test_rudimentary_lowest_disc_is_reported_not_renamed():
    ph = make_phantom(noise_sigma=0.0, vertebrae=SIX, disc_height_mm={"L6/S1": 2.5})
    levels = localize(ph.scan, one_hot_probabilities(ph.labels))
    assert levels.naming.lumbar_vertebrae == 5 and not levels.naming.lumbar_declared
    assert "L6" not in [i.name for i in levels.instances]  # usual anatomy assumed, not silently renamed
    assert levels.naming.uncertain
    assert any("transitional" in r for r in levels.naming.reasons)
    declared = localize(ph.scan, one_hot_probabilities(ph.labels), lumbar_vertebrae=6)
    assert not any("transitional" in r for r in declared.naming.reasons)
    assert "L6/S1" in [d.name for d in declared.discs]


def test_unknown_lumbar_count_is_refused():
    ph = make_phantom(noise_sigma=0.0, n_slices=1)
    with pytest.raises(ValueError, match="4, 5, 6|lumbar"):
        localize(ph.scan, one_hot_probabilities(ph.labels), lumbar_vertebrae=7)
