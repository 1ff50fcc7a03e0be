"""Stage 4 measurements: exact rasterised shapes, the synthetic phantom, real ground-truth masks, CLI.

Binary masks locate an edge only to about half a pixel, so the 0.5 mm / 1 degree checks use
in-plane spacings of 0.45-0.6 mm (typical of lumbar T2 MRI); coarser grids get a tolerance of
one pixel.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lumbarkit.errors import InputError
from lumbarkit.scan import Scan, to_canonical
from measure_shapes import Grid, body, chord, stack_bodies  # noqa: E402 (tests/stages/ helper)
from lumbarkit.stages.s3_measure import (
    CSV_COLUMNS,
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
    assert meyerding_grade(-30) == 0  # Meyerding grades anterior slips; retrolisthesis is reported in mm (issue 13)


def test_canal_flags_need_a_narrow_sac_and_a_focal_narrowing():
    assert canal_stenosis(7.9, 0.49) == "absolute"
    assert (canal_stenosis(8.0, 0.49), canal_stenosis(9.9, 0.66)) == ("relative", "relative")
    assert (canal_stenosis(10.0, 0.3), canal_stenosis(6.0, 0.9), canal_stenosis(7.9, 0.67)) == ("none", "none", "none")


def test_a_focal_compression_at_a_disc_is_stenosis_and_a_uniform_sac_is_not():
    g = Grid(rows=360, cols=260, row_mm=0.5, col_mm=0.5)
    centres = stack_bodies(g, disc_mm=10.0, discs=True, canal_mm=12.0)
    front = 34.0 / 2 + 2.0
    mid = (centres[22] + centres[23]) / 2  # the L3/L4 disc level
    g.paint(np.array([mid + (front - 1, -3), mid + (front + 7, -3), mid + (front + 7, 3), mid + (front - 1, 3)]), 0)
    m = measure(g.scan(), g.labels)
    hit, free = m.disc("L3/L4"), m.disc("L4/L5")
    assert hit.canal_ap.value == pytest.approx(5.0, abs=0.6) and hit.canal_ratio.value == pytest.approx(5 / 12, abs=0.06)
    assert hit.canal_stenosis == "absolute"
    assert free.canal_ap.value == pytest.approx(12.0, abs=0.6) and free.canal_stenosis == "none"
    assert all(v.canal_stenosis is None for v in m.vertebrae)  # stenosis is a finding at the discs


# ---------------------------------------------------------------- exact rasterised shapes (no phantom module)


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


@pytest.mark.parametrize("discs", [False, True])
@pytest.mark.parametrize("slip_mm,grade", [(0.0, 0), (6.0, 1), (12.0, 2), (-5.0, 0)])
def test_slip_disc_heights_and_canal(slip_mm, grade, discs):
    g = Grid(rows=360, cols=260, row_mm=0.5, col_mm=0.55, rot_deg=-12.0)
    stack_bodies(g, slip_mm=slip_mm, disc_mm=10.0, tilt=9.0, discs=discs, canal_mm=11.5)
    m = measure(g.scan(), g.labels)
    seg = m.disc("L3/L4")
    assert seg.source == ("disc mask" if discs else "vertebral bodies")
    assert seg.slip_mm.value == pytest.approx(slip_mm, abs=0.5)
    assert seg.slip_percent.value == pytest.approx(100 * slip_mm / 34.0, abs=2.0)
    assert seg.meyerding_grade.value == grade
    assert seg.retrolisthesis.value == pytest.approx(max(0.0, -slip_mm), abs=0.5)  # mm, never a Meyerding grade
    assert seg.height_middle.value == pytest.approx(10.0, abs=0.5)
    assert m.disc("L4/L5").height_anterior.value == pytest.approx(10.0, abs=0.5)
    assert m.disc("L4/L5").meyerding_grade.value == 0
    assert m.disc("L4/L5").disc_height_index.value == pytest.approx(10 / 26, abs=0.03)
    for v in m.vertebrae:
        if v.name == "L3" and slip_mm < 0:  # the retrolisthesed body narrows the canal behind it
            assert v.canal_ap.value == pytest.approx(11.5 - 3.0, abs=0.5)
            continue
        assert v.canal_ap.value == pytest.approx(11.5, abs=0.5)
        assert v.canal_stenosis is None  # flagged at discs only
    assert m.disc("L4/L5").canal_ap.value == pytest.approx(11.5, abs=0.6)
    assert m.disc("L4/L5").canal_ratio.value == pytest.approx(1.0, abs=0.06) and m.disc("L4/L5").canal_stenosis == "none"


@pytest.mark.parametrize("gap_mm,plausible", [(22.0, True), (40.0, False)])
def test_implausibly_tall_disc_is_not_measured(gap_mm, plausible):
    """A 40 mm gap between two bodies labelled as neighbours means a body in between was missed."""
    g = Grid(rows=360, cols=260, row_mm=0.5, col_mm=0.5)
    stack_bodies(g, disc_mm=gap_mm, h=26.0)
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


def test_slip_needs_a_lower_endplate_not_longer_than_bone():
    """An S1 mask running 18 mm past L5's posterior wall (the sacrum segmented into the canal) gives no slip: on the
    302 ground-truth levels the lower endplate is never more than 1.28 times the upper one."""
    g = Grid(rows=360, cols=260, row_mm=0.5, col_mm=0.5)
    g.paint(body(np.array([0.0, -30.0]), 34.0, 26.0, 26.0), 24)  # L5
    g.paint(body(np.array([9.0, 0.0]), 52.0, 14.0, 14.0), 26)  # S1 flush anteriorly, 52 mm deep
    seg = measure(g.scan(), g.labels).disc("L5/S1")
    assert not seg.slip_percent.ok and not seg.meyerding_grade.ok and not seg.retrolisthesis.ok
    assert "runs beyond the bone" in seg.slip_percent.missing_reason


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
    stack_bodies(g)
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
    stack_bodies(g, slip_mm=6.0, canal_mm=12.0)
    scan = g.scan()
    m = measure(scan, g.labels)
    out = draw_measurements(scan, m, tmp_path / "qc.png", labels=g.labels)
    import imageio.v3 as iio

    image = iio.imread(out)
    assert image.ndim == 3 and image.shape[0] > 500


def test_values_outside_their_physiological_range_are_missing_with_the_reason():
    """A 'body' 14 mm deep (a partial segmentation: real lumbar bodies are 30-45 mm) gives no depth, no heights and
    no Genant grade; a normal one next to it is measured."""
    g = Grid(rows=360, cols=260)
    g.paint(body((0, -30), 14, 26, 26), 22)
    g.paint(body((0, 12), 34, 26, 26), 23)
    m = measure(g.scan(), g.labels)
    thin, normal = m.vertebra("L3"), m.vertebra("L4")
    assert not thin.depth_ap.ok and "implausible depth_ap 14" in thin.depth_ap.missing_reason
    assert not thin.height_middle.ok and "depends on implausible depth_ap" in thin.height_middle.missing_reason
    assert not thin.genant_grade.ok
    assert normal.depth_ap.value == pytest.approx(34.0, abs=0.6) and normal.height_middle.ok


@pytest.mark.parametrize("n", [2, 3, 7])
def test_line_fit_is_skimages_total_least_squares(n):
    from skimage.measure import LineModelND

    from lumbarkit.stages.s3_measure.geometry import _fit_line

    pts = np.random.default_rng(n).normal(size=(n, 2)) * [10, 1] + [3, -2]
    origin, direction = _fit_line(list(pts))
    ref = LineModelND.from_estimate(pts)
    assert np.array_equal(origin, ref.origin)
    assert abs(abs(direction @ ref.direction) - 1) < 1e-12
    assert _fit_line([pts[0]]) is None
