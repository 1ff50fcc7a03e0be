"""Level naming from class probabilities: exact phantoms turned into one-hot probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from lumbarkit.stages.s2_localize import localize, midline_slices
from lumbarkit.seg_classes import BODY, CANAL, DISC, SACRUM
from lumbarkit.phantom import make_phantom

from level_probs import named_correctly, one_hot_probabilities  # noqa: E402 (tests/stages/ helper)


@pytest.mark.parametrize("kwargs", [
    {},
    {"tilt_deg": 25.0, "lordosis_deg": 40.0},
    {"slip_mm": {"L4": 8.0}, "wedge": {"L1": 0.6}},
    {"in_plane_rotation_deg": 20.0},
    {"vertebrae": ("T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1")},
])
def test_every_level_named_on_phantom(kwargs):
    ph = make_phantom(noise_sigma=0.0, **kwargs)
    levels = localize(ph.scan, one_hot_probabilities(ph.labels))
    names = named_correctly(levels, ph.labels)
    assert names == {k: k for k in names}
    assert levels.sacrum_found
    assert not levels.warnings
    assert all(i.confidence > 0.5 for i in levels.instances)


def test_single_slice_scan_is_named():
    ph = make_phantom(noise_sigma=0.0, n_slices=1)
    levels = localize(ph.scan, one_hot_probabilities(ph.labels))
    assert [d.name for d in levels.discs] == ["T12/L1", "L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1"]


def test_without_sacrum_lowest_body_is_l5_with_low_confidence_and_warning():
    from lumbarkit.scan import Scan

    ph = make_phantom(noise_sigma=0.0)
    # the field of view ends just below L5's inferior endplate: neither L5/S1 nor the sacrum is seen
    l5_rows = np.nonzero((ph.labels == 24).any(axis=(0, 2)))[0]
    cut = l5_rows.max() + 2
    labels = ph.labels[:, :cut].copy()
    labels[labels == 124] = 0
    labels[labels == 26] = 0
    scan = Scan(ph.scan.array[:, :cut].copy(), ph.scan.affine, ph.scan.metadata)
    levels = localize(scan, one_hot_probabilities(labels))
    assert not levels.sacrum_found
    assert any("sacrum not seen" in w for w in levels.warnings)
    names = named_correctly(levels, labels)
    assert names["L5"] == "L5" and names["L4/L5"] == "L4/L5"
    assert max(i.confidence for i in levels.instances) <= 0.3


def test_long_bone_below_the_lowest_disc_is_taken_as_s1():
    ph = make_phantom(noise_sigma=0.0)
    labels = ph.labels.copy()
    s1 = labels == 26
    for shift in range(1, int(45 / ph.scan.spacing_mm[1])):  # the sacrum reaching 45 mm further down
        labels[:, shift:][s1[:, :-shift] & (labels[:, shift:] == 0)] = 26
    probs = one_hot_probabilities(labels)
    sac = labels == 26
    probs[:, SACRUM][sac], probs[:, BODY][sac] = probs[:, BODY][sac], probs[:, SACRUM][sac]  # sacrum classed as body
    levels = localize(ph.scan, probs)
    names = named_correctly(levels, ph.labels)
    assert names == {k: k for k in names}
    assert any("taken as S1" in w for w in levels.warnings)


def test_a_vertebra_cut_off_below_the_lowest_disc_is_taken_as_s1():
    """The field of view ends 12 mm into S1, whose top the segmentation calls 'body': that bone is S1, not L5."""
    from lumbarkit.scan import Scan

    ph = make_phantom(noise_sigma=0.0)
    s1_rows = np.nonzero((ph.labels == 26).any(axis=(0, 2)))[0]
    cut = s1_rows.min() + int(12 / ph.scan.spacing_mm[1])
    labels = ph.labels[:, :cut].copy()
    scan = Scan(ph.scan.array[:, :cut].copy(), ph.scan.affine, ph.scan.metadata)
    probs = one_hot_probabilities(labels)
    sac = labels == 26
    probs[:, SACRUM][sac], probs[:, BODY][sac] = probs[:, BODY][sac], probs[:, SACRUM][sac]
    levels = localize(scan, probs)
    names = named_correctly(levels, labels)
    assert names == {k: k for k in names}
    assert any("runs off the image" in w for w in levels.warnings)
    assert max(i.confidence for i in levels.instances) <= 0.45


def test_a_body_sized_bone_below_the_lowest_disc_stays_l5():
    """A field of view ending below L5 (no L5/S1 disc, no sacrum): the lowest bone is one vertebra long, so L5."""
    ph = make_phantom(noise_sigma=0.0)
    labels = ph.labels.copy()
    labels[np.isin(labels, (124, 26))] = 0
    levels = localize(ph.scan, one_hot_probabilities(labels))
    names = named_correctly(levels, labels)
    assert names["L5"] == "L5" and names["L4/L5"] == "L4/L5"
    assert not any("taken as S1" in w for w in levels.warnings)
    assert any("sacrum not seen" in w for w in levels.warnings)


def test_a_missed_disc_keeps_the_levels_above_named_and_warns():
    ph = make_phantom(noise_sigma=0.0)
    labels = ph.labels.copy()
    labels[labels == 122] = 0  # the L3/L4 disc is not detected: L3 and L4 merge into one gap
    levels = localize(ph.scan, one_hot_probabilities(labels))
    names = named_correctly(levels, labels)
    assert any("missed" in w for w in levels.warnings)
    for name in ("L1", "L2", "T12/L1", "L1/L2", "L2/L3", "L4/L5", "L5/S1", "L5", "S1"):
        assert names[name] == name


def test_unsegmented_sacrum_is_inferred_below_a_disc_with_bone_only_above():
    ph = make_phantom(noise_sigma=0.0)
    labels = ph.labels.copy()
    labels[labels == 26] = 0  # sacrum missed by the segmentation, L5/S1 disc still found
    levels = localize(ph.scan, one_hot_probabilities(labels))
    names = named_correctly(levels, labels)
    assert names == {k: k for k in names}
    assert "L5/S1" in [d.name for d in levels.discs]
    assert any("inferred" in w for w in levels.warnings)
    assert max(i.confidence for i in levels.instances) <= 0.6


def test_disc_like_tissue_on_a_lateral_slice_does_not_move_the_midline():
    """Large spurious 'disc' on the outermost slice (as lateral muscle can look): the mid-sagittal slab stays central."""
    ph = make_phantom(noise_sigma=0.0)
    probs = one_hot_probabilities(ph.labels)
    n = probs.shape[0]
    mid = midline_slices(probs)
    edge = probs[-1]
    edge[:] = 0.02
    edge[DISC, : edge.shape[1] // 2] = 0.9  # half the outermost slice looks like disc
    assert probs[-1, DISC].sum() > max(probs[k, DISC].sum() + probs[k, CANAL].sum() for k in mid)
    assert midline_slices(probs) == mid and n - 1 not in mid
    names = named_correctly(localize(ph.scan, probs), ph.labels)
    assert names == {k: k for k in names}


def test_not_a_spine_reasons():
    """A phantom spine passes; discs with bone slivers but no vertebral body, or a lone disc, are not a spine."""
    from scipy import ndimage as ndi

    from lumbarkit.pipeline import not_a_spine

    ph = make_phantom(noise_sigma=0.0)
    probs = one_hot_probabilities(ph.labels)
    assert not_a_spine(ph.scan, localize(ph.scan, probs), probs) is None

    discs = ph.labels >= 110
    near_disc = np.stack([ndi.binary_dilation(d, iterations=int(2 / ph.scan.spacing_mm[1])) for d in discs])
    slivers = ph.labels.copy()
    slivers[(slivers > 0) & (slivers < 100) & ~near_disc] = 0  # only 2 mm of bone left above and below each disc
    probs = one_hot_probabilities(slivers)
    levels = localize(ph.scan, probs)
    assert len(levels.discs) >= 2 and not [v for v in levels.vertebrae if v.name != "S1"]
    assert "no vertebral body" in not_a_spine(ph.scan, levels, probs)

    one_disc = ph.labels.copy()
    one_disc[(one_disc >= 110) & (one_disc != 123)] = 0
    probs = one_hot_probabilities(one_disc)
    assert "1 intervertebral disc" in not_a_spine(ph.scan, localize(ph.scan, probs), probs)


def test_midline_mass_of_float16_probabilities_does_not_overflow():
    """Probabilities are float16 (stage 1 keeps them so); their per-slice mass on a large slice passes 65504."""
    probs = np.zeros((5, 6, 400, 400), dtype=np.float16)
    probs[:, CANAL] = 0.3
    probs[3, CANAL] = 0.9
    assert 3 in midline_slices(probs) and 0 not in midline_slices(probs)
