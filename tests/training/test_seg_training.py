"""Partial-label targets, marginal losses and patient-level folds of the segmentation training."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training tests need the [train] extra (torch)")

from lumbarkit.seg_classes import BACKGROUND, BODY, DISC, NUM_CLASSES, POSTERIOR, SACRUM  # noqa: E402
from lumbarkit.training.folds import source_balanced_folds  # noqa: E402
from lumbarkit.training.segment.data import (  # noqa: E402
    ALLOWED_SETS,
    IGNORE,
    allowed_table,
    codes_volume,
)
from lumbarkit.training.segment.losses import (  # noqa: E402
    determinate_dice_loss,
    marginal_cross_entropy,
)


def _logits_for(cls: int, shape=(1, 4, 4), strength=12.0) -> torch.Tensor:
    logits = torch.zeros((shape[0], NUM_CLASSES) + shape[1:])
    logits[:, cls] = strength
    return logits


def _allowed(code: int, shape=(1, 4, 4)) -> tuple[torch.Tensor, torch.Tensor]:
    table = torch.as_tensor(allowed_table()) > 0
    codes = torch.full(shape, code, dtype=torch.long)
    return table[codes].permute(0, 3, 1, 2), codes != IGNORE


def test_marginal_ce_is_small_for_any_allowed_class_and_large_otherwise():
    code = ALLOWED_SETS.index(frozenset(set(range(NUM_CLASSES)) - {BODY}))  # body-only source, unlabelled pixel
    allowed, valid = _allowed(code)
    for cls in (BACKGROUND, DISC, POSTERIOR):
        assert marginal_cross_entropy(_logits_for(cls), allowed, valid) < 1e-3
    assert marginal_cross_entropy(_logits_for(BODY), allowed, valid) > 5.0


def test_ignored_pixels_do_not_contribute():
    allowed, valid = _allowed(IGNORE)
    loss = marginal_cross_entropy(_logits_for(BODY), allowed, valid)
    assert float(loss) == 0.0
    assert torch.isfinite(loss)


def test_determinate_dice_ignores_ambiguous_membership():
    spider_vertebra = ALLOWED_SETS.index(frozenset({1, 4, 5}))
    allowed, valid = _allowed(spider_vertebra)
    # all mass on body or on posterior elements: both fit "vertebra", no class is known positive
    assert float(determinate_dice_loss(_logits_for(BODY), allowed, valid)) == 0.0
    body_code = ALLOWED_SETS.index(frozenset({BODY}))
    allowed, valid = _allowed(body_code)
    assert float(determinate_dice_loss(_logits_for(BODY), allowed, valid)) < 0.01
    assert float(determinate_dice_loss(_logits_for(DISC), allowed, valid)) > 0.9


def test_codes_are_limited_to_the_labelled_extent():
    labels = np.zeros((3, 20, 10), dtype=int)
    labels[1, 5:8, 2:6] = 20  # L1
    labels[1, 12:15, 2:6] = 24  # L5
    codes = codes_volume(labels, "vb3")
    assert (codes[0] == IGNORE).all() and (codes[2] == IGNORE).all()  # slices without labels
    assert (codes[1, :5] == IGNORE).all()  # above the top labelled body: unlabelled vertebrae may be there
    assert all(BODY not in ALLOWED_SETS[c] and SACRUM in ALLOWED_SETS[c] for c in codes[1, 15:].ravel())  # below L5: no body
    assert ALLOWED_SETS[codes[1, 6, 3]] == {BODY}
    assert BODY not in ALLOWED_SETS[codes[1, 10, 3]] and DISC in ALLOWED_SETS[codes[1, 10, 3]]


def test_gap_between_adjacent_bodies_is_disc_but_not_between_distant_ones():
    labels = np.zeros((1, 120, 60), dtype=int)
    labels[0, 10:35, 15:45] = 22  # L3
    labels[0, 45:70, 17:47] = 23  # L4, 10 px below and slightly posterior
    labels[0, 95:118, 15:45] = 26  # S1 below a gap with no L5 label: not neighbours of L4
    codes = codes_volume(labels, "vb3")
    disc = codes[0] == 3
    assert disc[38:42, 20:40].all()  # the middle of the L3/L4 gap
    assert not disc[35:37].any() and not disc[43:45].any()  # eroded away from both endplates
    assert not disc[72:93].any()  # L4 and S1 are not adjacent: nothing claimed between them
    assert not disc[:, :15].any() and not disc[:, 48:].any()  # never outside the bodies' AP extent


def test_folds_never_split_a_patient_and_cover_every_source():
    cases = [{"case": f"{s}_{i}", "patient": f"{s}_{i // 2}", "source": s} for s in ("a", "b") for i in range(20)]
    folds = source_balanced_folds(cases, 5, seed=0)
    assert set(folds.values()) == set(range(5))
    for s in ("a", "b"):
        assert {folds[c["patient"]] for c in cases if c["source"] == s} == set(range(5))


def test_series_sharing_a_mask_geometry_are_one_patient(tmp_path):
    import nibabel as nib

    from lumbarkit.training.segment.data import group_same_patients

    def write(name, shift):
        lab = np.zeros((40, 40, 5), dtype=np.int16)
        lab[5 + shift:15 + shift, 10:20, 1:4] = 20
        lab[20 + shift:30 + shift, 10:20, 1:4] = 21
        path = tmp_path / f"{name}_label.nii.gz"
        nib.save(nib.Nifti1Image(lab, np.diag([1.0, 1.0, 3.0, 1.0])), path)
        return {"case": name, "patient": name, "source": "vb3", "label": path}

    cases = [write("a", 0), write("b", 1), write("c", 9), {**write("d", 0), "source": "vb2"}]
    patients = [c["patient"] for c in group_same_patients(cases)]
    assert patients == ["a", "a", "c", "d"]  # 1 mm apart: same patient; 9 mm: another; other source: another
