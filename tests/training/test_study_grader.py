"""The study grader's data and net: T1/T2 crops as channels, missing sequences blanked, late fusion that ignores them."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from lumbarkit.results.crops import CropSpec  # noqa: E402
from lumbarkit.tasks import TASKS  # noqa: E402
from lumbarkit.training.grade.data import GradeDataset  # noqa: E402
from lumbarkit.training.grade.study_data import keep_channels, study_dataset  # noqa: E402

H, W = 8, 16


def _dataset() -> GradeDataset:
    """p1: t1, t2 and t2_SPACE of L4/L5; p2: only t2_SPACE of L4/L5; p3: only t1 of L5/S1. Each crop a constant = its row."""
    rows = [("p1", "p1_t1", "t1", "L4/L5"), ("p1", "p1_t2", "t2", "L4/L5"), ("p1", "p1_t2_SPACE", "t2_SPACE", "L4/L5"),
            ("p2", "p2_t2_SPACE", "t2_SPACE", "L4/L5"), ("p3", "p3_t1", "t1", "L5/S1")]
    images = np.stack([np.full((1, H, W), 0.1 * (k + 1), np.float32) for k in range(len(rows))])
    pf = {"p1": 2, "p2": 4, "p3": 0}
    labels = {t.name: np.array([pf[r[0]] if t.name == "pfirrmann" else 0 for r in rows]) for t in TASKS}
    cols = list(zip(*rows))
    return GradeDataset(images, labels, *(np.array(c) for c in cols), CropSpec())


def test_study_samples_stack_t1_and_t2_per_patient_and_disc():
    study = study_dataset(_dataset())
    assert list(zip(study.patient, study.level, study.sequence)) == [("p1", "L4/L5", "T1+T2"), ("p2", "L4/L5", "T2"), ("p3", "L5/S1", "T1")]
    np.testing.assert_allclose(study.images[0, :, 0, 0], [0.1, 0.2])  # the 2D T2 is preferred over SPACE
    np.testing.assert_allclose(study.images[1, :, 0, 0], [0.0, 0.4])  # SPACE fills T2 when there is no 2D T2
    np.testing.assert_allclose(study.images[2, :, 0, 0], [0.5, 0.0])
    assert list(study.series) == ["p1_t1|p1_t2", "|p2_t2_SPACE", "p3_t1|"]
    assert list(study.labels["pfirrmann"]) == [2, 4, 0]


def test_keep_channels_blanks_the_others():
    study = study_dataset(_dataset())
    t2 = keep_channels(study.images, ("T2",))
    assert not t2[:, 0].any() and np.array_equal(t2[:, 1], study.images[:, 1])
    assert study.images[:, 0].any()  # a copy


def test_sequence_dropout_never_blanks_every_sequence():
    from lumbarkit.training.grade.train import _RandSequenceDropout

    drop = _RandSequenceDropout(1.0, np.random.default_rng(0))
    for _ in range(20):
        x = drop(torch.ones(2, H, W))
        assert int((x.abs().amax(dim=(1, 2)) > 0).sum()) == 1
    only_t2 = torch.stack([torch.zeros(H, W), torch.ones(H, W)])
    assert torch.equal(drop(only_t2.clone()), only_t2)


def test_augmentation_keeps_a_missing_sequence_blank():
    from lumbarkit.training.grade.train import make_augment

    augment = make_augment(0, 2, sequence_dropout=0.0001)
    x = torch.stack([torch.zeros(32, 64), torch.rand(32, 64) * 0.8 + 0.1])
    for _ in range(5):
        y = augment(x.clone())
        assert float(y[0].abs().max()) == 0.0 and float(y[1].abs().max()) > 0


def test_late_fusion_ignores_a_blank_sequence():
    """Late fusion averages the features of the channels present: (a, blank) grades exactly like (a, a)."""
    from lumbarkit.nets.grader import build_grader, default_spec

    torch.manual_seed(0)
    net = build_grader({**default_spec("resnet", 2, (64, 128)), "fusion": "late"}).eval()
    a = torch.rand(3, 1, 64, 128)
    with torch.no_grad():
        both_a, a_blank, blank_a = net(torch.cat([a, a], 1)), net(torch.cat([a, 0 * a], 1)), net(torch.cat([0 * a, a], 1))
        other = net(torch.cat([a, torch.rand(3, 1, 64, 128)], 1))
    for task in both_a:
        torch.testing.assert_close(a_blank[task], both_a[task])
        torch.testing.assert_close(blank_a[task], both_a[task])
        assert not torch.allclose(other[task], both_a[task])
    early = build_grader(default_spec("resnet", 2, (64, 128))).eval()
    with torch.no_grad():
        assert not torch.allclose(early(torch.cat([a, 0 * a], 1))["pfirrmann"], early(torch.cat([a, a], 1))["pfirrmann"])
