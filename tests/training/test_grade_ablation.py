"""The grader ablation on a tiny synthetic crop cache: folds, screening, table, best configuration."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from lumbarkit.stages.s4_crops import CropSpec  # noqa: E402
from lumbarkit.tasks import TASKS  # noqa: E402
from lumbarkit.training.grade import ablation as ga  # noqa: E402
from lumbarkit.training.grade.data import CACHE_NAME  # noqa: E402
from lumbarkit.training.grade.train import GradeTrainConfig  # noqa: E402


@pytest.fixture
def tiny_cache(tmp_path):
    """48 random 'crops' of 12 patients whose Pfirrmann grade sets the crop brightness (learnable)."""
    rng = np.random.default_rng(0)
    spec = CropSpec(shape_px=(16, 32), size_mm=(9.0, 18.0))
    n = 48
    pf = rng.integers(0, 5, n)
    images = (rng.random((n, 1, 16, 32)) * 0.2 + pf[:, None, None, None] * 0.15).astype(np.float32)
    labels = np.stack([pf if t.name == "pfirrmann" else rng.integers(0, t.n_classes, n) for t in TASKS], axis=1)
    meta = {"crop_spec": spec.to_dict(), "limit": None}
    path = tmp_path / "cache" / CACHE_NAME
    path.parent.mkdir()
    np.savez_compressed(path, images=images, labels=labels.astype(np.int8), task_names=np.array([t.name for t in TASKS]),
                        patient=np.array([f"p{i % 12}" for i in range(n)]), series=np.array([f"s{i % 12}" for i in range(n)]),
                        sequence=np.array(["t2"] * n), level=np.array(["L4/L5"] * n), meta=np.array(json.dumps(meta)))
    return path.parent


def test_screen_drops_trunks_far_below_the_best():
    rows = [{"trunk": "a", "score": 0.70}, {"trunk": "a", "score": 0.50}, {"trunk": "b", "score": 0.65},
            {"trunk": "c", "score": 0.55}, {"trunk": "d"}]
    assert ga.screen(rows, margin=0.1) == {"c"}
    assert ga.screen(rows, margin=0.01) == {"b", "c"}
    assert ga.screen(rows, margin=0.5) == set()


def test_ablation_folds_screening_table_and_best(tiny_cache, tmp_path, monkeypatch):
    trunks, losses = ("vggm", "resnet"), ("focal", "cb_ce")
    base = GradeTrainConfig(epochs=1, batch_size=16, n_folds=2)
    out = tmp_path / "ablation"

    def resnet_loses(cache, out_dir, cfg, t=ga.TRUNKS, lo=ga.LOSSES):
        """As if resnet had scored far below vggm once every configuration finished fold 0."""
        first_fold_done = all((out_dir / f"{a}__{b}" / "fold0.npz").exists() for a in t for b in lo)
        return {"resnet"} if first_fold_done and "vggm" in t else set()  # resnet alone is compared with nothing

    monkeypatch.setattr(ga, "screened_out", resnet_loses)
    md = ga.run_ablation(tiny_cache, out, base, trunks=trunks, losses=losses)
    for loss in losses:
        assert (out / f"vggm__{loss}" / "fold1.npz").is_file()
        assert (out / f"resnet__{loss}" / "fold0.npz").is_file()
        assert not (out / f"resnet__{loss}" / "fold1.npz").exists()
    rows = ga.ablation_rows(tiny_cache, out, base, trunks, losses)
    assert len(rows) == 8  # 2 trunks x 2 losses x TTA off/on
    for r in rows:
        assert r["screened_out"] == (r["trunk"] == "resnet")
        assert r["folds"] == ("0" if r["screened_out"] else "0,1")
    assert {r["n_discs"] for r in rows if not r["screened_out"]} == {48}
    assert 0 < min(r["n_discs"] for r in rows if r["screened_out"]) < 48  # fold 0 only
    best = json.loads((out / "ablation_best.json").read_text())
    assert best["trunk"] == "vggm"
    text = md.read_text()
    assert "*screened out*" in text and "folds pooled: 0,1 (2 of 2)" in text

    # the screened-out trunk run on the remaining fold after all: pooled like the others
    ga.run_ablation(tiny_cache, out, base, folds=[1], trunks=("resnet",), losses=losses)
    rows = ga.ablation_rows(tiny_cache, out, base, trunks, losses)
    assert all(not r["screened_out"] and r["folds"] == "0,1" and r["n_discs"] == 48 for r in rows)
    assert "none (every trunk has every pooled fold)" in ga.write_table(tiny_cache, out, base, trunks, losses).read_text()
