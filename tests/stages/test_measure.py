"""Stage 4 measurements: exact rasterised shapes, the synthetic phantom, real ground-truth masks, CLI.

Binary masks locate an edge only to about half a pixel, so the 0.5 mm / 1 degree checks use
in-plane spacings of 0.45-0.6 mm (typical of lumbar T2 MRI); coarser grids get a tolerance of
one pixel.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from lumbarkit.errors import InputError
from lumbarkit.scan import Scan, to_canonical
from lumbarkit.stages.s3_measure import (
    CSV_COLUMNS,
    SpineMeasurements,
    canal_stenosis,
    genant_grade,
    measure,
    meyerding_grade,
)

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"


# ---------------------------------------------------------------- grades


def test_genant_grade_bins():
    assert [genant_grade(x) for x in (0, 19.9, 20, 24.9, 25, 39.9, 40.1, 80)] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_meyerding_grade_bins_and_sign():
    assert [meyerding_grade(x) for x in (0, 3, 12, 25, 26, 50, 51, 75, 76, 100, 101)] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
    assert meyerding_grade(-30) == 2  # retrolisthesis graded by its size, sign kept in slip_percent


def test_canal_flags():
    assert (canal_stenosis(9.9), canal_stenosis(10), canal_stenosis(12.9), canal_stenosis(13)) == ("absolute", "relative", "relative", "none")


# ---------------------------------------------------------------- exact rasterised shapes (no phantom module)
# Plane coordinates (a, b): a towards posterior, b towards inferior, mm; RAS y = -a, z = -b.


class Grid:
    """One- or few-slice canonical grid, in-plane rotated by ``rot_deg`` (oblique acquisition)."""

    def __init__(self, rows=260, cols=220, row_mm=0.5, col_mm=0.5, rot_deg=0.0, slices=1, centre=(0.0, 0.0)):
        phi = math.radians(rot_deg)
        self.r_hat = np.array([-math.sin(phi), math.cos(phi)])
        self.c_hat = np.array([math.cos(phi), math.sin(phi)])
        self.shape = (slices, rows, cols)
        self.row_mm, self.col_mm = row_mm, col_mm
        self.origin = np.asarray(centre) - (rows - 1) / 2 * row_mm * self.r_hat - (cols - 1) / 2 * col_mm * self.c_hat
        aff = np.eye(4)
        aff[:3, 0] = (-3.0, 0, 0)
        aff[:3, 1] = (0, -row_mm * self.r_hat[0], -row_mm * self.r_hat[1])
        aff[:3, 2] = (0, -col_mm * self.c_hat[0], -col_mm * self.c_hat[1])
        aff[:3, 3] = (3.0 * (slices // 2), -self.origin[0], -self.origin[1])
        self.affine = aff
        self.labels = np.zeros(self.shape, dtype=np.int32)

    def paint(self, polygon, value: int, slices=None) -> None:
        from skimage.draw import polygon as fill

        rel = np.asarray(polygon, dtype=float) - self.origin
        rr, cc = fill(rel @ self.r_hat / self.row_mm, rel @ self.c_hat / self.col_mm, self.shape[1:])
        for k in range(self.shape[0]) if slices is None else slices:
            self.labels[k, rr, cc] = value

    def scan(self) -> Scan:
        return Scan(np.zeros(self.shape, dtype=np.float32), self.affine)


def body(centre, depth, h_ant, h_post, tilt_deg=0.0, dent=0.0):
    """Symmetric trapezoid: anterior edge ``h_ant``, posterior edge ``h_post``, endplate dents of depth ``dent``
    between 30 % and 70 % of the depth; the endplates' mid-line turned ``tilt_deg`` (posterior end up)."""
    pts = [(0, -h_ant / 2), (0.3 * depth, None), (0.4 * depth, "d"), (0.6 * depth, "d"), (0.7 * depth, None), (depth, -h_post / 2)]

    def top(x):
        return -(h_ant + (h_post - h_ant) * x / depth) / 2

    upper = [(x, top(x) + (dent if y == "d" else 0.0)) for x, y in pts]
    lower = [(x, -top(x) - (dent if y == "d" else 0.0)) for x, y in pts][::-1]
    poly = np.array(upper + lower) - (depth / 2, 0)
    t = math.radians(tilt_deg)
    rot = np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])  # posterior axis turned up by t
    return poly @ rot.T + np.asarray(centre)


def chord(depth, h_ant, h_post, f):
    return h_ant + (h_post - h_ant) * f


@pytest.mark.parametrize(
    "row_mm,col_mm,rot,tilt",
    [(0.5, 0.5, 0.0, 0.0), (0.45, 0.6, 17.0, -8.0), (0.6, 0.5, -23.0, 12.0), (0.5, 0.5, 8.0, 31.0)],
)
def test_trapezoid_heights_depth_angles(row_mm, col_mm, rot, tilt):
    g = Grid(row_mm=row_mm, col_mm=col_mm, rot_deg=rot)
    d, ha, hp = 34.0, 18.0, 28.0
    g.paint(body((0, 0), d, ha, hp, tilt), 22)
    v = measure(g.scan(), g.labels).vertebra("L3")
    assert v.missing_reason is None
    for m, f in ((v.height_anterior, 0.1), (v.height_middle, 0.5), (v.height_posterior, 0.9)):
        assert m.value == pytest.approx(chord(d, ha, hp, f), abs=0.5)
        assert m.unit == "mm" and m.slice_index == 0 and len(m.lines) == 1
        assert m.lines[0].length_mm == pytest.approx(m.value)
    assert v.depth_ap.value == pytest.approx(d, abs=0.5)
    half_wedge = math.degrees(math.atan((hp - ha) / 2 / d))
    assert v.superior_endplate_angle.value == pytest.approx(tilt + half_wedge, abs=1.0)
    assert v.inferior_endplate_angle.value == pytest.approx(tilt - half_wedge, abs=1.0)
    assert v.wedge_ratio.value == pytest.approx(chord(d, ha, hp, 0.1) / chord(d, ha, hp, 0.9), abs=0.03)
    # lone body: height loss against its own Hp: 1 - 19 / 27 = 30 %, grade 2
    assert v.height_loss.value == pytest.approx(100 * (1 - 19 / 27), abs=2.0)
    assert v.genant_grade.value == 2


def test_lines_are_in_ras_on_the_measured_slice():
    g = Grid(rot_deg=10.0, slices=3)
    g.paint(body((0, 0), 34, 26, 26, 5.0), 22)
    scan = g.scan()
    v = measure(scan, g.labels).vertebra("L3")
    assert v.slice_index == 1
    line = v.height_middle.lines[0]
    for point in (line.start_mm, line.end_mm):
        k, i, j = scan.mm_to_voxel(np.array(point))
        assert k == pytest.approx(1.0) and 0 < i < g.shape[1] and 0 < j < g.shape[2]
        assert g.labels[1, int(round(i)), int(round(j))] in (0, 22)
    assert math.dist(line.start_mm, line.end_mm) == pytest.approx(v.height_middle.value)


def test_biconcave_body_grade():
    g = Grid()
    g.paint(body((0, 0), 34, 26, 26, dent=4.0), 22)
    v = measure(g.scan(), g.labels).vertebra("L3")
    assert v.height_middle.value == pytest.approx(18.0, abs=0.5)
    assert v.height_anterior.value == pytest.approx(26.0, abs=0.5)
    assert v.biconcavity.value == pytest.approx(18 / 26, abs=0.03)
    assert v.height_loss.value == pytest.approx(100 * (1 - 18 / 26), abs=2.0)
    assert v.genant_grade.value == 2


def _stack(g: Grid, slip_mm=0.0, disc_mm=10.0, tilt=0.0, discs=False, canal_mm=None, h=26.0, d=34.0):
    """L3 over L4 (over L5), straight spine turned by ``tilt``; L3 translated ``slip_mm`` anteriorly."""
    t = math.radians(tilt)
    e = np.array([math.cos(t), -math.sin(t)])  # posterior along the endplates
    n = np.array([math.sin(t), math.cos(t)])  # inferior
    centres = {22: -(h + disc_mm) * n - slip_mm * e, 23: np.zeros(2), 24: (h + disc_mm) * n}
    if canal_mm is not None:  # painted first: a retrolisthesed body covers it
        front = d / 2 + 2.0
        poly = [-80 * n + front * e, -80 * n + (front + canal_mm) * e, 80 * n + (front + canal_mm) * e, 80 * n + front * e]
        g.paint(np.array(poly), 100)
    for label, c in centres.items():
        g.paint(body(c, d, h, h, tilt), label)
    if discs:
        for upper, lower in ((22, 23), (23, 24)):
            cu, cl = centres[upper], centres[lower]
            poly = [cu + (-d / 2) * e + h / 2 * n, cu + d / 2 * e + h / 2 * n, cl + d / 2 * e - h / 2 * n, cl - d / 2 * e - h / 2 * n]
            g.paint(np.array(poly), 100 + upper)
            for label in (upper, lower):  # bodies keep their edges
                g.paint(body(centres[label], d, h, h, tilt), label)
    return centres


@pytest.mark.parametrize("discs", [False, True])
@pytest.mark.parametrize("slip_mm,grade", [(0.0, 0), (6.0, 1), (12.0, 2), (-5.0, 1)])
def test_slip_disc_heights_and_canal(slip_mm, grade, discs):
    g = Grid(rows=360, cols=260, row_mm=0.5, col_mm=0.55, rot_deg=-12.0)
    _stack(g, slip_mm=slip_mm, disc_mm=10.0, tilt=9.0, discs=discs, canal_mm=11.5)
    m = measure(g.scan(), g.labels)
    seg = m.disc("L3/L4")
    assert seg.source == ("disc mask" if discs else "vertebral bodies")
    assert seg.slip_mm.value == pytest.approx(slip_mm, abs=0.5)
    assert seg.slip_percent.value == pytest.approx(100 * slip_mm / 34.0, abs=2.0)
    assert seg.meyerding_grade.value == grade
    assert seg.height_middle.value == pytest.approx(10.0, abs=0.5)
    assert m.disc("L4/L5").height_anterior.value == pytest.approx(10.0, abs=0.5)
    assert m.disc("L4/L5").meyerding_grade.value == 0
    assert m.disc("L4/L5").disc_height_index.value == pytest.approx(10 / 26, abs=0.03)
    for v in m.vertebrae:
        if v.name == "L3" and slip_mm < 0:  # the retrolisthesed body narrows the canal behind it
            assert v.canal_ap.value == pytest.approx(11.5 - 3.0, abs=0.5)
            continue
        assert v.canal_ap.value == pytest.approx(11.5, abs=0.5)
        assert v.canal_stenosis == "relative"
    assert m.disc("L4/L5").canal_ap.value == pytest.approx(11.5, abs=0.6)


@pytest.mark.parametrize("gap_mm,plausible", [(22.0, True), (40.0, False)])
def test_implausibly_tall_disc_is_not_measured(gap_mm, plausible):
    """A 40 mm gap between two bodies labelled as neighbours means a body in between was missed."""
    g = Grid(rows=360, cols=260, row_mm=0.5, col_mm=0.5)
    _stack(g, disc_mm=gap_mm, h=26.0)
    seg = measure(g.scan(), g.labels).disc("L3/L4")
    assert seg.height_middle.ok is plausible and seg.slip_percent.ok is plausible
    if plausible:
        assert seg.height_middle.value == pytest.approx(gap_mm, abs=0.5)
    else:
        assert "implausible disc height 40 mm" in seg.height_middle.missing_reason


@pytest.mark.parametrize("s1_mm", [12.0, 26.0, 34.0])
def test_slip_needs_a_full_lower_endplate(s1_mm):
    """A sacrum segmented only in part (S1 endplate 12 or 26 mm under a 34 mm L5) gives no slip instead of a
    wrong percentage; a whole one (34 mm, aligned) gives a slip of about 0."""
    g = Grid(rows=360, cols=260, row_mm=0.5, col_mm=0.5)
    g.paint(body(np.array([0.0, -30.0]), 34.0, 26.0, 26.0), 24)  # L5
    g.paint(body(np.array([(s1_mm - 34.0) / 2, 0.0]), s1_mm, 14.0, 14.0), 26)  # S1 flush with L5's anterior wall
    seg = measure(g.scan(), g.labels).disc("L5/S1")
    if s1_mm < 34.0:
        assert not seg.slip_percent.ok and "only partly segmented" in seg.slip_percent.missing_reason
        assert not seg.meyerding_grade.ok
    else:
        assert seg.slip_percent.ok and abs(seg.slip_percent.value) < 3.0 and seg.meyerding_grade.value == 0


def test_lordosis_from_l1_and_s1_and_fallback():
    g = Grid(rows=700, cols=420, row_mm=0.6, col_mm=0.6)
    # L1 tilted -15 deg (posterior end down), S1 +30 deg: lordosis 45 deg
    g.paint(body((-20, -100), 32, 25, 25, -15.0), 20)
    g.paint(body((0, 0), 34, 27, 27, 5.0), 22)
    g.paint(body((20, 100), 36, 28, 28, 30.0), 26)
    m = measure(g.scan(), g.labels)
    assert m.lordosis_method == "L1-S1"
    assert m.lordosis_deg == pytest.approx(45.0, abs=1.0)
    assert m.lordosis.unit == "deg" and len(m.lordosis.lines) == 2
    g.labels[g.labels == 26] = 24  # now L5 inferior endplate (at +30 deg) stands in
    m = measure(g.scan(), g.labels)
    assert m.lordosis_method.startswith("L1-L5")
    assert m.lordosis_deg == pytest.approx(45.0, abs=1.0)


def test_flipped_storage_gives_the_same_numbers():
    g = Grid(rot_deg=5.0, slices=3)
    g.paint(body((0, 0), 34, 22, 27, 7.0), 22)
    ref = measure(g.scan(), g.labels).vertebra("L3")
    # store the same volume flipped and permuted (e.g. RAS order), canonicalise again
    import nibabel.orientations as nio

    transform = nio.ornt_transform(nio.io_orientation(g.affine), nio.axcodes2ornt(("R", "A", "S")))
    stored = nio.apply_orientation(g.labels, transform)
    stored_affine = g.affine @ nio.inv_ornt_aff(transform, g.labels.shape)
    scan = Scan.from_array(stored.astype(np.float32), stored_affine)
    labels, _ = to_canonical(stored, stored_affine)
    v = measure(scan, labels).vertebra("L3")
    for a, b in zip(ref.measures(), v.measures()):
        assert (a.value is None) == (b.value is None)
        if a.value is not None:
            assert b.value == pytest.approx(a.value, abs=1e-6)


# ---------------------------------------------------------------- missing with a reason, never a wrong number


def test_body_touching_the_border_is_missing():
    g = Grid()
    g.paint(body((0, -58), 34, 26, 26), 21)  # cut by the top edge
    g.paint(body((0, 0), 34, 26, 26), 22)
    m = measure(g.scan(), g.labels)
    cut = m.vertebra("L2")
    assert cut.height_anterior.value is None and "border" in cut.missing_reason
    assert m.vertebra("L3").missing_reason is None
    assert m.disc("L2/L3").slip_percent.value is None
    assert "L2 not measured" in m.disc("L2/L3").slip_percent.missing_reason


def test_fused_bodies_are_missing():
    g = Grid(rows=300)
    g.paint(body((0, -13), 34, 26, 26), 22)
    g.paint(body((0, 13), 34, 26, 26), 23)  # no disc space at all
    m = measure(g.scan(), g.labels)
    for name in ("L3", "L4"):
        assert m.vertebra(name).height_middle.value is None
        assert "fused" in m.vertebra(name).missing_reason
    assert m.disc("L3/L4").height_middle.value is None


def test_too_small_and_split_labels_are_missing():
    g = Grid()
    g.paint(body((0, -40), 5, 4, 4), 21)
    g.paint(body((-10, 30), 14, 20, 20), 23)
    g.paint(body((10, 30), 14, 20, 20), 23)
    m = measure(g.scan(), g.labels)
    assert "too small" in m.vertebra("L2").missing_reason
    assert "split" in m.vertebra("L4").missing_reason


def test_bad_label_maps_raise():
    g = Grid()
    with pytest.raises(InputError):
        measure(g.scan(), g.labels[:, :10])
    with pytest.raises(InputError):
        measure(g.scan(), g.labels)  # nothing to measure
    with pytest.raises(InputError):
        measure(g.scan(), g.labels.astype(float) + 0.5)


def test_rows_for_csv():
    g = Grid(rows=360, cols=260)
    _stack(g)
    m = measure(g.scan(), g.labels)
    rows = m.to_rows()
    assert [r["vertebra"] for r in rows] == ["L3", "L4", "L5"]
    assert all(set(r) == set(CSV_COLUMNS) for r in rows)
    assert rows[0]["disc"] == "L3/L4" and isinstance(rows[0]["disc_height_middle_mm"], float)
    assert rows[-1]["disc"] == "" and rows[-1]["height_middle_mm"] != ""
    assert rows[0]["canal_ap_mm"] == "" and "canal" not in rows[0]["missing_reason"]  # no canal label: not a failure
    d = m.to_dict()
    assert d["vertebrae"][0]["height_middle"]["unit"] == "mm"


def test_qc_png(tmp_path):
    from lumbarkit.report.qc_measure import draw_measurements

    g = Grid(rows=360, cols=260)
    _stack(g, slip_mm=6.0, canal_mm=12.0)
    scan = g.scan()
    m = measure(scan, g.labels)
    out = draw_measurements(scan, m, tmp_path / "qc.png", labels=g.labels)
    import imageio.v3 as iio

    image = iio.imread(out)
    assert image.ndim == 3 and image.shape[0] > 500


# ---------------------------------------------------------------- synthetic phantom (lumbarkit.phantom)


def _expected_genant(truth, name):
    v = truth.vertebrae[name]
    names = list(truth.vertebrae)
    i = names.index(name)
    refs = [truth.vertebrae[n].posterior_height_mm for n in names[max(i - 1, 0) : i + 2] if n not in (name, "S1")]
    ref = max([v.posterior_height_mm] + ([float(np.mean(refs))] if refs else []))
    loss = 100 * (1 - min(v.anterior_height_mm, v.middle_height_mm, v.posterior_height_mm) / ref)
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
        if v.name != "S1":
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
    _stack(g, slip_mm=6.0, canal_mm=12.0)
    write_nifti(np.random.default_rng(0).random(g.shape).astype(np.float32), g.affine, tmp_path / "img.nii.gz")
    write_nifti(g.labels.astype(np.int16), g.affine, tmp_path / "lab.nii.gz")
    code, out, err = _run_cli(monkeypatch, capsys, "measure", tmp_path / "img.nii.gz", "--labels", tmp_path / "lab.nii.gz", "-o", tmp_path / "out")
    assert code == 0, err
    with open(tmp_path / "out" / "vertebrae.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["vertebra"] for r in rows] == ["L3", "L4", "L5"]
    assert float(rows[0]["height_middle_mm"]) == pytest.approx(26.0, abs=0.5)
    assert rows[0]["meyerding_grade"] == "1" and rows[0]["canal_stenosis"] == "relative"
    assert (tmp_path / "out" / "qc_measurements.png").stat().st_size > 10_000
    assert (tmp_path / "out" / "measurements.json").exists()
    assert "L3" in out


def test_cli_measure_png_and_grid_mismatch(tmp_path, monkeypatch, capsys):
    import imageio.v3 as iio

    g = Grid(rows=360, cols=260, row_mm=0.6, col_mm=0.6)
    _stack(g)
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
    write_nifti(np.zeros(g.shape, dtype=np.float32), g.affine, tmp_path / "img.nii.gz")
    code, _, err = _run_cli(monkeypatch, capsys, "measure", tmp_path / "img.nii.gz", "-o", tmp_path / "out")
    assert code == 2
    assert err.count("\n") == 1 and "automatic segmentation is not available" in err and "--labels" in err
    assert not (tmp_path / "out").exists()
