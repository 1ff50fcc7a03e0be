"""Measurements against independent truth: the phantom's polygons, real ground-truth masks, and the CLI."""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from measure_shapes import Grid, stack_bodies  # noqa: E402 (tests/stages/ helper)
from lumbarkit.stages.s3_measure import (
    SpineMeasurements,
    genant_grade,
    measure,
    meyerding_grade,
)

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"


# ---------------------------------------------------------------- synthetic phantom (lumbarkit.phantom)


def _expected_genant(truth, name):
    v = truth.vertebrae[name]
    names = list(truth.vertebrae)
    i = names.index(name)
    refs = [truth.vertebrae[n].posterior_height_mm for n in names[max(i - 1, 0) : i + 2] if n not in (name, "L5", "S1")]
    ha, hm, hp = v.anterior_height_mm, v.middle_height_mm, v.posterior_height_mm
    within = 1 - min(ha, hm) / hp
    crush = 1 - max(ha, hm, hp) / float(np.mean(refs)) if refs else 0.0
    loss = 100 * max(0.0, within, crush)
    return genant_grade(loss), loss


PHANTOMS = [
    dict(spacing_mm=(3.0, 0.5, 0.5), lordosis_deg=40.0, wedge={"L1": 0.75, "L3": 0.64}, slip_mm={"L4": 6.0}),
    dict(spacing_mm=(3.0, 0.47, 0.47), lordosis_deg=30.0, tilt_deg=10.0, in_plane_rotation_deg=-18.0, wedge={"L2": 0.44}, slip_mm={"L5": 12.0}),
    dict(spacing_mm=(3.0, 0.6, 0.45), lordosis_deg=50.0, tilt_deg=-6.0, in_plane_rotation_deg=24.0, slip_mm={"L3": -4.0}),
    dict(spacing_mm=(3.0, 0.5, 0.55), lordosis_deg=35.0, in_plane_rotation_deg=172.0, wedge={"T12": 0.7}),  # flipped rows/cols
    dict(spacing_mm=(4.0, 0.55, 0.5), n_slices=1, lordosis_deg=45.0, tilt_deg=4.0, slip_mm={"L4": 9.0}),  # 2D
]


@pytest.mark.parametrize("params", PHANTOMS, ids=[f"phantom{i}" for i in range(len(PHANTOMS))])
def test_phantom_against_truth(params):
    from lumbarkit.phantom import CANAL_DEPTH_MM, make_phantom

    ph = make_phantom(noise_sigma=0.0, **{"n_slices": 3, **params})
    m = measure(ph.scan, ph.labels)
    truth = ph.truth
    for v in m.vertebrae:
        t = truth.vertebrae[v.name]
        assert v.missing_reason is None, v.name
        assert v.height_anterior.value == pytest.approx(t.anterior_height_mm, abs=0.5), v.name
        assert v.height_middle.value == pytest.approx(t.middle_height_mm, abs=0.5), v.name
        assert v.height_posterior.value == pytest.approx(t.posterior_height_mm, abs=0.5), v.name
        assert v.depth_ap.value == pytest.approx(t.depth_mm, abs=0.6), v.name
        assert v.superior_endplate_angle.value == pytest.approx(t.superior_endplate_deg, abs=1.0), v.name
        assert v.inferior_endplate_angle.value == pytest.approx(t.inferior_endplate_deg, abs=1.0), v.name
        assert math.dist(v.centroid_mm[1:], t.centroid_ras[1:]) < 1.0
        if v.name in ("L5", "S1"):  # morphometry covers T4-L4
            assert not v.genant_grade.ok
        else:
            grade, loss = _expected_genant(truth, v.name)
            assert v.genant_grade.value == grade, (v.name, loss, v.height_loss.value)
        if v.slice_index in truth.canal_slices:
            assert v.canal_ap.value == pytest.approx(CANAL_DEPTH_MM, abs=0.6), v.name
    assert m.lordosis_method == "L1-S1"
    assert m.lordosis_deg == pytest.approx(truth.lordosis_deg, abs=1.0)
    for d in m.discs:
        t = truth.discs[d.name]
        assert d.height_anterior.value == pytest.approx(t.anterior_height_mm, abs=0.5), d.name
        assert d.height_middle.value == pytest.approx(t.middle_height_mm, abs=0.5), d.name
        assert d.height_posterior.value == pytest.approx(t.posterior_height_mm, abs=0.5), d.name
        slip = truth.vertebrae[d.upper].slip_percent
        assert d.slip_percent.value == pytest.approx(slip, abs=2.0), d.name
        assert d.meyerding_grade.value == meyerding_grade(slip), (d.name, slip)


def test_phantom_without_disc_labels_and_coarse_grid():
    from lumbarkit.phantom import make_phantom

    ph = make_phantom(spacing_mm=(3.0, 1.0, 1.0), n_slices=3, noise_sigma=0.0, lordosis_deg=40.0, tilt_deg=7.0, slip_mm={"L5": 8.0})
    labels = np.where((ph.labels > 100) & (ph.labels < 130), 0, ph.labels)
    m = measure(ph.scan, labels)
    for d in m.discs:
        t = ph.truth.discs[d.name]
        assert d.source == "vertebral bodies"
        assert d.height_middle.value == pytest.approx(t.middle_height_mm, abs=1.0), d.name
    for v in m.vertebrae:
        t = ph.truth.vertebrae[v.name]
        assert v.height_posterior.value == pytest.approx(t.posterior_height_mm, abs=1.0), v.name


# ---------------------------------------------------------------- real ground-truth masks


@pytest.mark.shared
@pytest.mark.skipif(not (SHARED / "volumes" / "index.csv").exists(), reason=f"shared data not found at {SHARED}")
def test_real_body_masks_give_plausible_values():
    from lumbarkit.io import load_scan
    from lumbarkit.io.volume import read_label_volume

    volumes = SHARED / "volumes"
    with open(volumes / "index.csv") as fh:
        cases = [r["case"] for r in csv.DictReader(fh) if r["dataset"] in ("vb1", "vb2", "vb3")]
    before = sorted(p.name for p in REPO.iterdir())
    measured, lumbar = 0, 0
    for case in cases:
        m = measure(load_scan(volumes / f"{case}_image.nii.gz"), read_label_volume(volumes / f"{case}_label.nii.gz"))
        assert isinstance(m, SpineMeasurements)
        for v in m.vertebrae:
            if not v.name.startswith("L"):
                continue
            lumbar += 1
            if v.height_anterior.ok:
                measured += 1
                for h in (v.height_anterior, v.height_middle, v.height_posterior):
                    assert 15.0 <= h.value <= 40.0, (case, v.name, h)
                # 25-55 mm is the textbook range; small vb3 subjects reach 23 mm (checked on the QC overlay)
                assert 20.0 <= v.depth_ap.value <= 55.0, (case, v.name, v.depth_ap.value)
            else:
                assert v.height_anterior.missing_reason
    assert measured >= 0.95 * lumbar
    assert sorted(p.name for p in REPO.iterdir()) == before  # nothing written into the repo


# ---------------------------------------------------------------- command line


def _run_cli(monkeypatch, capsys, *args):
    from lumbarkit.cli.main import run

    monkeypatch.setattr(sys, "argv", ["lumbarkit", *map(str, args)])
    with pytest.raises(SystemExit) as exc:
        run()
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_cli_measure_nifti(tmp_path, monkeypatch, capsys):
    from lumbarkit.io.volume import write_nifti

    g = Grid(rows=360, cols=260, slices=3)
    stack_bodies(g, slip_mm=6.0, canal_mm=12.0)
    write_nifti(np.random.default_rng(0).random(g.shape).astype(np.float32), g.affine, tmp_path / "img.nii.gz")
    write_nifti(g.labels.astype(np.int16), g.affine, tmp_path / "lab.nii.gz")
    code, out, err = _run_cli(monkeypatch, capsys, "measure", tmp_path / "img.nii.gz", "--labels", tmp_path / "lab.nii.gz", "-o", tmp_path / "out")
    assert code == 0, err
    with open(tmp_path / "out" / "vertebrae.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["vertebra"] for r in rows] == ["L3", "L4", "L5"]
    assert float(rows[0]["height_middle_mm"]) == pytest.approx(26.0, abs=0.5)
    assert rows[0]["meyerding_grade"] == "1" and rows[0]["retrolisthesis_mm"] == "0.0"
    # a uniform 12 mm sac: measured at the body and the disc, no stenosis (that needs a focal narrowing)
    assert float(rows[0]["canal_ap_mm"]) == pytest.approx(12.0, abs=0.6) and rows[0]["canal_stenosis"] == ""
    assert float(rows[0]["disc_canal_ratio"]) == pytest.approx(1.0, abs=0.1) and rows[0]["disc_canal_stenosis"] == "none"
    assert (tmp_path / "out" / "qc_measurements.png").stat().st_size > 10_000
    assert (tmp_path / "out" / "measurements.json").exists()
    assert "L3" in out


def test_cli_measure_png_and_grid_mismatch(tmp_path, monkeypatch, capsys):
    import imageio.v3 as iio

    g = Grid(rows=360, cols=260, row_mm=0.6, col_mm=0.6)
    stack_bodies(g)
    iio.imwrite(tmp_path / "img.png", (g.labels[0] > 0).astype(np.uint8) * 200)
    iio.imwrite(tmp_path / "lab.png", g.labels[0].astype(np.uint8))
    code, _, err = _run_cli(monkeypatch, capsys, "measure", tmp_path / "img.png", "--labels", tmp_path / "lab.png",
                            "--spacing", 0.6, 0.6, "-o", tmp_path / "out")
    assert code == 0, err
    with open(tmp_path / "out" / "vertebrae.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert float(rows[1]["depth_ap_mm"]) == pytest.approx(34.0, abs=0.6)
    iio.imwrite(tmp_path / "small.png", g.labels[0, :200].astype(np.uint8))
    code, _, err = _run_cli(monkeypatch, capsys, "measure", tmp_path / "img.png", "--labels", tmp_path / "small.png",
                            "--spacing", 0.6, 0.6, "-o", tmp_path / "out2")
    assert code == 2 and err.count("\n") == 1 and "label image" in err


def test_cli_measure_without_labels_and_without_a_model(tmp_path, monkeypatch, capsys):
    from lumbarkit.errors import ModelError
    from lumbarkit.io.volume import write_nifti

    def no_model(*args, **kwargs):
        raise ModelError("the packaged model 'segment_2d' is not installed")

    import lumbarkit.stages.s1_segment as segment_module

    monkeypatch.setattr(segment_module, "segment", no_model)
    g = Grid(slices=3)
    noise = np.random.default_rng(0).random(g.shape).astype(np.float32)  # an image with signal: the model is reached
    write_nifti(noise, g.affine, tmp_path / "img.nii.gz")
    code, _, err = _run_cli(monkeypatch, capsys, "measure", tmp_path / "img.nii.gz", "-o", tmp_path / "out")
    assert code == 2
    assert err.count("\n") == 1 and "automatic segmentation is not available" in err and "--labels" in err
    assert not (tmp_path / "out").exists()
