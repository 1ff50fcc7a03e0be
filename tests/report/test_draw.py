"""The PIL drawing of qc.png and the hotspot PNGs, against matplotlib and skimage as independent references."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stages"))
from measure_shapes import Grid, stack_bodies  # noqa: E402 (tests/stages/ helper)


def test_jet_is_matplotlibs_jet():
    from matplotlib import colormaps

    from lumbarkit.report.draw import jet

    index = np.arange(256)  # matplotlib's jet is a table of 256 colours, entry i at i / 255
    assert np.abs(jet(index / 255) - colormaps["jet"](index)[:, :3]).max() < 1e-6


def test_qc_png_draws_each_line_where_it_was_measured(tmp_path):
    """The depth line of every measured body (cyan) passes through the output pixel its RAS endpoints map to."""
    import imageio.v3 as iio

    from lumbarkit.report.qc_measure import BAND_PX, COLOURS, HEIGHT_PX, draw_measurements
    from lumbarkit.stages.s3_measure import measure

    g = Grid(rows=360, cols=260, row_mm=0.5, col_mm=0.6)
    stack_bodies(g, slip_mm=6.0, canal_mm=12.0)
    scan = g.scan()
    m = measure(scan, g.labels)
    image = iio.imread(draw_measurements(scan, m, tmp_path / "qc.png", labels=g.labels))
    assert image.shape[0] == HEIGHT_PX + BAND_PX
    sy = HEIGHT_PX / scan.shape[1]
    sx = image.shape[1] / scan.shape[2]
    assert abs(sx / sy - 0.6 / 0.5) < 0.01  # the picture keeps the anatomy's proportions in mm
    cyan = np.array([int(COLOURS["depth_ap"][i : i + 2], 16) for i in (1, 3, 5)])
    checked = 0
    for v in m.vertebrae:
        if not v.depth_ap.ok:
            continue
        ln = v.depth_ap.lines[0]
        mid = scan.mm_to_voxel((np.asarray(ln.start_mm) + np.asarray(ln.end_mm)) / 2)
        x, y = int((mid[2] + 0.5) * sx), int((mid[1] + 0.5) * sy) + BAND_PX
        patch = image[y - 2 : y + 3, x - 2 : x + 3, :3].reshape(-1, 3).astype(int)
        assert (np.abs(patch - cyan).sum(axis=1) < 30).any(), v.name
        checked += 1
    assert checked >= 2


def test_hotspot_overlay_colours_the_hot_region_only(tmp_path):
    import imageio.v3 as iio

    from lumbarkit.report.hotspot_png import SCALE, TITLE_PX, overlay_png

    crop = np.full((64, 128), 0.5, dtype=np.float32)
    heat = np.zeros_like(crop)
    heat[20:40, 50:90] = 1.0
    img = iio.imread(overlay_png(crop, heat, tmp_path / "h.png", title="L4/L5 pfirrmann")).astype(int)
    assert img.shape[:2] == (64 * SCALE + TITLE_PX, 128 * SCALE)
    hot = img[TITLE_PX + 30 * SCALE, 70 * SCALE, :3]
    cold = img[TITLE_PX + 5 * SCALE, 10 * SCALE, :3]
    assert abs(cold[0] - 128) <= 1 and cold[0] == cold[1] == cold[2]  # untouched grey
    assert hot[0] - hot[2] > 60 and hot[1] == hot[2]  # jet(1), dark red (0.5, 0, 0), over grey at opacity 0.6
    assert (img[:TITLE_PX] < 128).any()  # the title is written
