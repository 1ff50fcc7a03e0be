"""The RSNA track end to end on generated Kaggle-format studies: check -> train -> predict -> score."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rsna_synth import make_rsna  # noqa: E402 (tests/rsna/ helper)

CLI = [sys.executable, "-c", "from lumbarkit.cli.main import run; run()"]


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def rsna_sets(tmp_path_factory):
    """20 training studies and 6 held-out ones (other noise and severities), in the competition's layout."""
    root = tmp_path_factory.mktemp("rsna")
    (root / "train").mkdir()
    (root / "held").mkdir()
    make_rsna(root / "train", 20, seed=0)
    make_rsna(root / "held", 6, seed=1, first_id=2000)
    return root


@pytest.fixture(scope="module")
def trained(rsna_sets):
    out = rsna_sets / "model"
    proc = run_cli("rsna", "train", rsna_sets / "train", "-o", out, "--folds", 3, "--epochs", 25)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.slow  # writes 26 studies, trains a small CNN
def test_trained_model_beats_the_label_prior_on_held_out_studies(rsna_sets, trained):
    import json

    doc = json.loads((trained / "model.json").read_text())
    cv, prior = doc["metrics"]["cv"]["score"], doc["metrics"]["prior_only"]["score"]
    assert cv["score"] < prior["score"] - 0.1  # out-of-fold, on the training studies
    sub = rsna_sets / "held.csv"
    proc = run_cli("rsna", "predict", rsna_sets / "held", "-o", sub, "--model", trained, "--split", "train")
    assert proc.returncode == 0, proc.stderr
    with open(sub) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 * 25 and all(abs(sum(float(r[k]) for k in ("normal_mild", "moderate", "severe")) - 1) < 1e-4 for r in rows)
    model_score = _score(sub, rsna_sets / "held" / "train.csv")
    # the label prior of the training studies, written as a submission for the held-out ones
    prior_rows = np.asarray(doc["prior"])
    prior_sub = rsna_sets / "prior.csv"
    with open(prior_sub, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row_id", "normal_mild", "moderate", "severe"])
        for r, row in enumerate(rows):
            w.writerow([row["row_id"], *prior_rows[r % 25]])
    assert model_score < _score(prior_sub, rsna_sets / "held" / "train.csv") - 0.2
    level = doc["metrics"]["level_distance_mm"]
    assert set(level) == {"l1_l2", "l2_l3", "l3_l4", "l4_l5", "l5_s1"}
    assert all(v["p90_si_mm"] < 5.0 for v in level.values())  # levels found where the labels put them
    assert (trained / "MODEL_CARD.md").read_text().count("|") > 20


def _score(sub: Path, labels: Path) -> float:
    proc = run_cli("rsna", "score", sub, "--labels", labels)
    assert proc.returncode == 0, proc.stderr
    return float(proc.stdout.split()[1])


@pytest.mark.slow
def test_damaged_studies_are_reported_and_still_get_all_rows(tmp_path, trained):
    make_rsna(tmp_path, 3, seed=5, split="test", skip={0: ("Axial T2",)})
    study = sorted(p for p in (tmp_path / "test_images").iterdir())[1]
    t1 = sorted(study.iterdir())[1]
    sorted(t1.glob("*.dcm"))[0].write_bytes(b"not a dicom file")  # a corrupt instance
    (study / "999").mkdir()  # a series folder the descriptions do not list
    with open(tmp_path / "test_series_descriptions.csv", "a") as fh:
        fh.write(f"{sorted(p.name for p in (tmp_path / 'test_images').iterdir())[2]},77,Coronal STIR\n")
    check = run_cli("rsna", "check", tmp_path)
    assert check.returncode == 0, check.stderr
    out = check.stdout
    assert "test data: 3 studies" in out
    assert "no usable Axial T2 series" in out and "not in test_series_descriptions.csv" in out
    assert "unknown description 'Coronal STIR'" in out
    sub = tmp_path / "sub.csv"
    proc = run_cli("rsna", "predict", tmp_path, "-o", sub, "--model", trained)
    assert proc.returncode == 0, proc.stderr
    with open(sub) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * 25
    assert "label prior for 10 row(s) without a crop" in proc.stderr  # the study without axial images


@pytest.mark.slow
def test_without_a_model_the_canal_rule_grades_spinal_stenosis_only(tmp_path):
    make_rsna(tmp_path, 1, seed=7, split="test")
    sub = tmp_path / "sub.csv"
    proc = run_cli("rsna", "predict", tmp_path, "-o", sub)
    assert proc.returncode == 0, proc.stderr
    assert "no RSNA model" in proc.stderr
    with open(sub) as fh:
        rows = {r["row_id"]: [float(r[k]) for k in ("normal_mild", "moderate", "severe")] for r in csv.DictReader(fh)}
    assert len(rows) == 25
    others = [v for k, v in rows.items() if "spinal" not in k]
    assert all(np.allclose(v, 1 / 3, atol=1e-5) for v in others)
    spinal = [v for k, v in rows.items() if "spinal" in k]
    assert any(not np.allclose(v, 1 / 3, atol=1e-3) for v in spinal)  # measured canals give the rule's answer


def test_canal_rule_follows_the_sac_thresholds():
    from lumbarkit.rsna.rule import canal_probabilities

    wide, relative, absolute = canal_probabilities(14.0), canal_probabilities(9.0), canal_probabilities(5.0)
    for p in (wide, relative, absolute):
        assert abs(p.sum() - 1) < 1e-12 and p.min() >= 0.2 / 3 - 1e-12  # never near-certain
    assert wide.argmax() == 0 and relative.argmax() == 1 and absolute.argmax() == 2


def test_axial_images_are_assigned_to_the_nearest_disc_in_patient_mm():
    from lumbarkit.rsna.geometry import ImagePlane, assign_axial

    def plane(z, frame="F"):
        return ImagePlane(Path(f"{z}.dcm"), int(z), np.array([50.0, 40.0, z]), np.array([-1.0, 0, 0]),
                          np.array([0, -1.0, 0]), (0.8, 0.8), frame)

    discs = {"l3_l4": np.array([0, 10.0, 0.0]), "l4_l5": np.array([0, 8.0, -35.0]), "l5_s1": np.array([0, 0.0, -70.0])}
    planes = [plane(z) for z in (2.0, -3.0, -33.0, -36.0, -90.0)]
    got, note = assign_axial(planes, discs, "F")
    assert note is None
    assert {k: v.origin[2] for k, v in got.items()} == {"l3_l4": 2.0, "l4_l5": -36.0}  # L5/S1: nearest is 20 mm away
    other = [plane(z, "G") for z in (100.0, 65.0, 30.0)]
    got, note = assign_axial(other, discs, "F")
    assert "another frame of reference" in note
    assert {k: v.origin[2] for k, v in got.items()} == {"l3_l4": 100.0, "l4_l5": 65.0, "l5_s1": 30.0}


@pytest.mark.slow
def test_analyze_adds_the_rsna_severities_of_a_study(tmp_path, trained):
    """``analyze`` of one study folder with ``rsna_model`` in the config: the same 25 severities as ``rsna predict``,
    in result.json (schema-valid), levels.csv and the report."""
    import json

    import jsonschema

    make_rsna(tmp_path / "data", 1, seed=11, split="test")
    study = next((tmp_path / "data" / "test_images").iterdir())
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"rsna_model: {trained}\nhotspots: false\n")
    proc = run_cli("analyze", study, "-o", tmp_path / "out", "--config", cfg)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    schema = json.loads((Path(__file__).resolve().parents[2] / "src/lumbarkit/schemas/result.schema.json").read_text())
    jsonschema.validate(doc, schema)
    rsna = doc["rsna"]
    assert sorted(rsna["levels"]) == ["L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1"]
    assert all(len(v) == 5 and all(c["from"] == "crop" for c in v.values()) for v in rsna["levels"].values())
    sub = tmp_path / "sub.csv"
    assert run_cli("rsna", "predict", tmp_path / "data", "-o", sub, "--model", trained).returncode == 0
    with open(sub) as fh:
        predicted = {r["row_id"].split("_", 1)[1]: r for r in csv.DictReader(fh)}
    for disc, conditions in rsna["levels"].items():
        level = disc.lower().replace("/", "_")
        for condition, entry in conditions.items():
            row = predicted[f"{condition}_{level}"]
            assert abs(entry["probabilities"]["severe"] - float(row["severe"])) < 1e-3
    with open(tmp_path / "out" / "levels.csv") as fh:
        levels = {r["level"]: r for r in csv.DictReader(fh)}
    assert levels["L4/L5"]["rsna_spinal_canal_stenosis"] == rsna["levels"]["L4/L5"]["spinal_canal_stenosis"]["severity"]
    assert "RSNA 2024 severities" in (tmp_path / "out" / "report.html").read_text()
