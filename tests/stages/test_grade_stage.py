"""Stage 3 (disc grading) through onnxruntime: outputs, levels.csv columns, ONNX vs torch."""

from __future__ import annotations

import ast
import csv
import subprocess
import sys

import numpy as np
import pytest

from lumbarkit.stages import s5_grade as grade_stage
from lumbarkit.stages.s4_crops import CropSpec
from lumbarkit.tasks import TASKS

# The issue's levels.csv columns, spelled out (not derived from the code under test).
ISSUE_COLUMNS = [
    "level", "pfirrmann", "pfirrmann_prob_1", "pfirrmann_prob_2", "pfirrmann_prob_3", "pfirrmann_prob_4",
    "pfirrmann_prob_5", "ldd_3class", "modic", "modic_prob_0", "modic_prob_1", "modic_prob_2", "modic_prob_3",
    "endplate_upper", "endplate_upper_prob", "endplate_lower", "endplate_lower_prob", "narrowing", "narrowing_prob",
    "bulging", "bulging_prob", "herniation", "herniation_prob", "spondylolisthesis", "spondylolisthesis_prob",
]
CLI = [sys.executable, "-c", "from lumbarkit.cli.main import run; run()"]


def test_csv_columns_match_the_issue():
    assert list(grade_stage.CSV_COLUMNS) == ISSUE_COLUMNS


def test_tta_variants_keep_shape_and_identity_first():
    x = np.random.default_rng(0).random((3, 1, 16, 32), dtype=np.float32)
    variants = grade_stage.tta_variants(x)
    assert len(variants) == len(grade_stage.TTA_NAMES)
    assert all(v.shape == x.shape and v.dtype == np.float32 for v in variants)
    np.testing.assert_array_equal(variants[0], x)
    assert not np.allclose(variants[1], x)
    # a 2-row shift moves content down and zero-fills the top
    np.testing.assert_array_equal(variants[1][..., 2:, :], x[..., :-2, :])
    assert np.all(variants[1][..., :2, :] == 0)


@pytest.mark.slow  # a subprocess
def test_inference_module_does_not_import_torch():
    code = "import sys, lumbarkit.stages.s5_grade, lumbarkit.cli.grade; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A random, tiny grader exported as a model folder (no dependence on the shipped model)."""
    pytest.importorskip("torch", reason="exporting a model needs the [train] extra")
    import torch

    from lumbarkit.nets.grader import build_grader, default_spec
    from lumbarkit.training.grade.data import GradeDataset
    from lumbarkit.training.grade.export import export_grader
    from lumbarkit.training.grade.train import GradeTrainConfig

    torch.manual_seed(0)
    spec = CropSpec()
    arch = {**default_spec("vggm", 1, spec.shape_px), "width": 0.25, "hidden": 16}
    net = build_grader(arch)
    n = 4
    labels = {t.name: np.zeros(n, dtype=np.int64) for t in TASKS}
    data = GradeDataset(np.zeros((n, 1, *spec.shape_px), np.float32), labels, np.array(["1", "1", "2", "2"]),
                        np.array(["1_t2"] * 2 + ["2_t2"] * 2), np.array(["t2"] * n), np.array(["L4/L5", "L5/S1"] * 2), spec, {})
    out = tmp_path_factory.mktemp("grader")
    export_grader(net, GradeTrainConfig(), data, out)
    from lumbarkit.models.folder import ModelFolder

    return ModelFolder.load(out), net


def _truth_levels(phantom):
    """Levels straight from the phantom's VerSe label map (no segmentation model involved)."""
    from lumbarkit.levels import DISC_OFFSET, label_name
    from lumbarkit.results.labelmap import LabelMap
    from lumbarkit.stages.s2_localize import LevelInstance, Levels

    scan, labels = phantom.scan, phantom.labels
    instances = []
    for lid in sorted(int(v) for v in np.unique(labels) if v and v != 100):
        idx = np.argwhere(labels == lid)
        kind = "disc" if lid > DISC_OFFSET else "vertebra"
        centroid = tuple(float(v) for v in scan.voxel_to_mm(idx.mean(axis=0)))
        instances.append(LevelInstance(label_name(lid), lid, kind, centroid, float(len(idx)), 1.0,
                                       int(np.bincount(idx[:, 0]).argmax())))
    return Levels(tuple(instances), LabelMap(labels=labels.astype(np.int16), affine=scan.affine), sacrum_found=True)


def test_grade_outputs_probabilities_and_rows(tiny_model, phantom):
    folder, _ = tiny_model
    scan, levels = phantom.scan, _truth_levels(phantom)
    for tta in (False, True):
        result = grade_stage.grade(scan, levels, model=folder, tta=tta)
        assert len(result) > 0 and result.tta is tta
        for d in result.discs:
            for t in TASKS:
                p = np.array(d.probabilities[t.name])
                assert p.shape == (t.n_classes,) and np.all(p >= 0)
                assert p.sum() == pytest.approx(1.0, abs=1e-5)
                assert d.grades[t.name] == t.classes[int(p.argmax())]
            assert sum(d.ldd_probabilities) == pytest.approx(1.0, abs=1e-5)
            assert d.ldd in ("mild", "moderate", "severe")
            assert d.ldd == {1: "mild", 2: "mild", 3: "moderate", 4: "severe", 5: "severe"}[d.grades["pfirrmann"]]  # never contradicts
        rows = result.rows()
        assert all(list(r) == ISSUE_COLUMNS for r in rows)
        assert [r["level"] for r in rows] == result.levels
    with pytest.raises(Exception):
        result.discs[0].level = "x"  # immutable


def test_grade_of_no_crops_is_empty(tiny_model):
    folder, _ = tiny_model
    probs = grade_stage.predict_probabilities(folder, np.zeros((0, 1, *CropSpec().shape_px), np.float32))
    assert all(v.shape[0] == 0 for v in probs.values())


def test_tiny_model_onnx_matches_torch(tiny_model):
    import torch

    folder, net = tiny_model
    x = np.random.default_rng(1).random((3, 1, *CropSpec().shape_px), dtype=np.float32)
    with torch.no_grad():
        expected = {k: torch.softmax(v, 1).numpy() for k, v in net(torch.as_tensor(x)).items()}
    got = grade_stage.predict_probabilities(folder, x, tta=False)
    for k in expected:
        np.testing.assert_allclose(got[k], expected[k], atol=1e-4)


def _shipped():
    from lumbarkit.models.folder import packaged_model

    return packaged_model(grade_stage.DEFAULT_MODEL)  # shipped in the package: its absence is a failure


def test_shipped_grader_onnx_matches_torch():
    torch = pytest.importorskip("torch", reason="needs the [train] extra")
    from safetensors.torch import load_file

    from lumbarkit.nets.grader import build_grader

    folder = _shipped()
    net = build_grader(dict(folder.spec.architecture))
    net.load_state_dict(load_file(str(folder.path / "weights.safetensors")))
    net.eval()
    shape = folder.spec.crop_spec
    x = np.random.default_rng(0).random((4, shape.n_slices, *shape.shape_px), dtype=np.float32)
    with torch.no_grad():
        expected = {k: torch.softmax(v, 1).numpy() for k, v in net(torch.as_tensor(x)).items()}
    got = grade_stage.predict_probabilities(folder, x, tta=False)
    assert set(got) == {t.name for t in TASKS}
    for k in expected:
        np.testing.assert_allclose(got[k], expected[k], atol=1e-4)


def test_shipped_grader_card_and_size():
    folder = _shipped()
    card = (folder.path / "MODEL_CARD.md").read_text()
    assert "lumbarkit train grade" in card and "Cross-validated" in card
    assert (folder.path / "model.onnx").stat().st_size < 20e6
    assert (folder.path / "weights.safetensors").stat().st_size < 20e6
    assert folder.spec.training["data"]["discs"] > 1000
    assert "cv" in folder.spec.document["metrics"]
    assert folder.spec.document["metrics"]["cv"]["folds_done"] == [0, 1, 2, 3, 4]  # a complete patient-level CV
    assert "## Ablation" in card and "(5 of 5)" in card


@pytest.mark.slow  # a subprocess
def test_grade_cli_writes_levels_csv_on_a_spider_slice(shared_data, tmp_path):
    import pandas as pd

    _shipped()
    table = pd.read_csv(shared_data / "spider" / "series.csv").set_index("series")
    row, col = ast.literal_eval(table.loc["1_t2", "PixelSpacing"])
    src = shared_data / "spider" / "images" / "1_t2.png"
    res = subprocess.run(CLI + ["grade", str(src), "--spacing", str(row), str(col), "-o", str(tmp_path)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    with open(tmp_path / "levels.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        # one levels.csv format (issue 12): the grade columns, the sequences they come from (issue 15), then naming
        # confidence, whether the names are uncertain (issue 24) and disc measurements as `analyze`
        assert reader.fieldnames[: len(ISSUE_COLUMNS)] == ISSUE_COLUMNS
        assert reader.fieldnames[len(ISSUE_COLUMNS):len(ISSUE_COLUMNS) + 4] == [
            "sequences", "confidence", "naming_uncertain", "disc_height_anterior_mm"]
        rows = list(reader)
    assert {r["sequences"] for r in rows} == {"unknown"}  # a PNG names no sequence
    assert {"L4/L5", "L5/S1"} <= {r["level"] for r in rows}
    for r in rows:
        assert int(r["pfirrmann"]) in range(1, 6) and r["ldd_3class"] in ("mild", "moderate", "severe")
        assert r["ldd_3class"] == {1: "mild", 2: "mild", 3: "moderate", 4: "severe", 5: "severe"}[int(r["pfirrmann"])]
        assert sum(float(r[f"pfirrmann_prob_{g}"]) for g in range(1, 6)) == pytest.approx(1.0, abs=1e-3)
        assert sum(float(r[f"modic_prob_{g}"]) for g in range(4)) == pytest.approx(1.0, abs=1e-3)
        assert r["herniation"] in ("0", "1") and 0.0 <= float(r["herniation_prob"]) <= 1.0
